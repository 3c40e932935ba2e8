from __future__ import annotations

import asyncio

import pytest

from jobqueue.clock import FakeClock, SystemClock, to_datetime


async def test_fake_clock_sleep_returns_when_advanced_past_deadline() -> None:
    clock = FakeClock(start=100.0)
    sleeper = asyncio.ensure_future(clock.sleep(10))
    clock.advance(9)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(1)
    await asyncio.wait_for(sleeper, 1)
    assert clock.time() == 110.0 and clock.monotonic() == 10.0


def test_fake_clock_cannot_go_back() -> None:
    with pytest.raises(ValueError):
        FakeClock().advance(-1)


async def test_system_clock() -> None:
    clock = SystemClock()
    before = clock.monotonic()
    await clock.sleep(0)
    assert clock.monotonic() >= before and clock.time() > 1.7e9


def test_to_datetime() -> None:
    assert to_datetime(None) is None
    dt = to_datetime(0.0)
    assert dt is not None and dt.isoformat() == "1970-01-01T00:00:00+00:00"
