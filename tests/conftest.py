from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobqueue.backends import Backend
from jobqueue.clock import FakeClock
from tests.backends import ALL_BACKENDS, open_backend


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=ALL_BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Backend]:
    """Each backend in turn, opened on a fresh store and driven by the fake clock."""
    opened = await open_backend(request.param, tmp_path, clock)
    try:
        yield opened
    finally:
        await opened.close()
