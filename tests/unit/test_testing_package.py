"""``jobqueue.testing`` runs in a project of its own, as a backend author outside this repository
would run it: a test module, its two fixtures, and pytest with nothing of this repository's setup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jobqueue.testing import BackendSuite

THEIR_TESTS = '''
import pytest

from jobqueue.backends import MemoryBackend
from jobqueue.clock import FakeClock
from jobqueue.testing import BackendSuite


class MyBackend(MemoryBackend):
    """A backend of their own (here one that reuses ours)."""


class TestMyBackend(BackendSuite):
    @pytest.fixture
    def clock(self):
        return FakeClock()

    @pytest.fixture
    async def backend(self, clock):
        backend = MyBackend(clock=clock)
        await backend.open()
        yield backend
        await backend.close()
'''

PYTEST_INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""


def test_a_backend_outside_this_repository_runs_the_suite(tmp_path: Path) -> None:
    (tmp_path / "test_my_backend.py").write_text(THEIR_TESTS)
    (tmp_path / "pytest.ini").write_text(PYTEST_INI)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_backend.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    tests = [name for name in dir(BackendSuite) if name.startswith("test_")]
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(tests)} passed" in done.stdout, done.stdout
