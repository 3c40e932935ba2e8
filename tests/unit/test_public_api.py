from __future__ import annotations

import jobqueue


def test_all_is_sorted_complete_and_importable() -> None:
    assert jobqueue.__all__ == sorted(jobqueue.__all__, key=lambda n: (not n.isupper(), n))
    for name in jobqueue.__all__:
        assert getattr(jobqueue, name) is not None


def test_backends_satisfy_the_protocol() -> None:
    assert isinstance(jobqueue.MemoryBackend(), jobqueue.Backend)
    assert isinstance(jobqueue.SQLiteBackend("x.db"), jobqueue.Backend)
