from __future__ import annotations

import jobqueue
import jobqueue.backends


def test_all_is_sorted_complete_and_importable() -> None:
    for module in (jobqueue, jobqueue.backends):
        assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_the_top_level_is_the_user_api_and_the_backend_interface_lives_in_backends() -> None:
    backend_interface = {"Backend", "BackendBase", "ClaimParams", "Completion", "Failure", "Lease", "MemoryBackend"}
    assert not backend_interface & set(jobqueue.__all__)
    assert backend_interface <= set(jobqueue.backends.__all__)


def test_backends_satisfy_the_protocol() -> None:
    assert isinstance(jobqueue.backends.MemoryBackend(), jobqueue.backends.Backend)
    assert isinstance(jobqueue.backends.SQLiteBackend("x.db"), jobqueue.backends.Backend)
