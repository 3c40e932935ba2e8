"""How tests get a backend: one factory per backend name, used by every parametrized suite.

Backends that need a server (PostgreSQL, Redis) are added here by their issues. Where the server is
unreachable their tests skip with the reason; with ``CI`` set in the environment they fail
instead, so that a green CI run means every backend was really exercised.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from jobqueue.backends.base import Backend
from jobqueue.backends.memory import MemoryBackend
from jobqueue.backends.sqlite import SQLiteBackend
from jobqueue.clock import Clock

BackendFactory = Callable[[Path, Clock], Backend]

FACTORIES: dict[str, BackendFactory] = {
    "memory": lambda tmp, clock: MemoryBackend(clock=clock),
    "sqlite": lambda tmp, clock: SQLiteBackend(tmp / "jobs.db", clock=clock),
}

ALL_BACKENDS = list(FACTORIES)

#: Backends that several processes can share, by the URL each process opens, for the subprocess
#: tests (worker faults, serve). Each gives a URL of a fresh, isolated store under ``tmp`` and a
#: function that removes that store afterwards (a no-op for files under ``tmp``).
StoreURL = tuple[str, Callable[[], None]]
SHARED_STORES: dict[str, Callable[[Path], StoreURL]] = {
    "sqlite": lambda tmp: (f"sqlite:///{tmp / 'shared.db'}", lambda: None),
}


def skip_or_fail(reason: str) -> None:
    """Skip a test whose server is missing, except under CI, where a skipped backend test is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"CI requires this test to run: {reason}", pytrace=False)
    pytest.skip(reason)


async def open_backend(name: str, tmp_path: Path, clock: Clock) -> Backend:
    backend = FACTORIES[name](tmp_path, clock)
    await backend.open()
    return backend
