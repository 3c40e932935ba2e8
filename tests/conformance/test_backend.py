"""The conformance suite (:mod:`jobqueue.testing`) against every backend of this repository.

Each test runs once per backend in ``tests.backends.ALL_BACKENDS`` through the ``backend`` fixture
of ``tests/conftest.py``, with a :class:`~jobqueue.clock.FakeClock` so that leases, delays and key
TTLs are driven by the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobqueue.backends import Backend, Handoff
from jobqueue.clock import FakeClock
from jobqueue.testing import BackendSuite, HandoffSuite
from tests.backends import ALL_BACKENDS, open_backend


class TestBackend(BackendSuite):
    pass


#: The backends that hand new jobs to waiting workers.
HANDOFF_BACKENDS = ["sqlite"]


class TestHandoff(HandoffSuite):
    @pytest.fixture(params=HANDOFF_BACKENDS)
    async def backend(self, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Backend]:
        opened = await open_backend(request.param, tmp_path, clock)
        try:
            yield opened
        finally:
            await opened.close()


async def test_the_handoff_backends_are_those_with_the_capability(tmp_path: Path, clock: FakeClock) -> None:
    for name in ALL_BACKENDS:
        backend = await open_backend(name, tmp_path / name, clock)
        try:
            assert isinstance(backend, Handoff) == (name in HANDOFF_BACKENDS), name
        finally:
            await backend.close()
