"""Fixtures shared by the unit tests of one backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobqueue.backends import SQLiteBackend
from jobqueue.backends.redis import RedisBackend
from tests.backends import TestRedisBackend, require_redis, unique_prefix


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[SQLiteBackend, SQLiteBackend]]:
    """A producer's backend and a worker's, on one file: two processes, as far as SQLite knows."""
    async with (
        SQLiteBackend(tmp_path / "jobs.db", durability="normal") as producer,
        SQLiteBackend(tmp_path / "jobs.db", durability="normal") as worker,
    ):
        yield producer, worker


@pytest.fixture
async def redis() -> AsyncIterator[RedisBackend]:
    """A Redis backend on the server's own clock, under a key prefix of its own."""
    backend = TestRedisBackend(require_redis(), prefix=unique_prefix())
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def other(redis: RedisBackend) -> AsyncIterator[RedisBackend]:
    """A second Redis backend on the same namespace: what another process would have."""
    backend = RedisBackend(redis.url, prefix=redis.prefix)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
