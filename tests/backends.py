"""How tests get a backend: one factory per backend name, used by every parametrized suite.

Backends that need a server (PostgreSQL, Redis) are added here by their issues. Where the server is
unreachable their tests skip with the reason; with ``CI`` set in the environment they fail
instead, so that a green CI run means every backend was really exercised.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest

from jobqueue.backends import Backend
from jobqueue.backends.memory import MemoryBackend
from jobqueue.backends.redis import RedisBackend
from jobqueue.backends.sqlite import SQLiteBackend
from jobqueue.clock import Clock

BackendFactory = Callable[[Path, Clock], Backend]

#: The Redis server the tests use. It is shared with other test runs: every test works under a
#: key prefix of its own and deletes its keys afterwards (never FLUSHDB).
REDIS_URL = os.environ.get("JOBQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@functools.cache
def _redis_unreachable() -> str | None:
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=2):
            return None
    except OSError as exc:
        return f"no Redis at {REDIS_URL} ({exc}); set JOBQUEUE_TEST_REDIS_URL"


def require_redis() -> str:
    """The test Redis URL, or skip (fail under CI) when no server answers there."""
    reason = _redis_unreachable()
    if reason is not None:
        skip_or_fail(reason)
    return REDIS_URL


def unique_prefix() -> str:
    return f"jqtest-{uuid.uuid4().hex[:12]}"


class TestRedisBackend(RedisBackend):
    """A Redis backend under a fresh prefix whose keys are deleted when it closes."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # a test that stopped Redis must still close
            await self.drop()
        await super().close()


def _redis_factory(tmp: Path, clock: Clock) -> Backend:
    return TestRedisBackend(require_redis(), clock=clock, prefix=unique_prefix())


def drop_redis_prefix(url: str) -> None:
    """Delete the keys of the namespace that a ``?prefix=`` URL names."""

    async def drop() -> None:
        backend = RedisBackend(url.partition("?")[0], prefix=url.partition("prefix=")[2])
        try:
            await backend.drop()
        finally:
            await backend.close()

    asyncio.run(drop())


def _redis_store(tmp: Path) -> tuple[str, Callable[[], None]]:
    url = f"{require_redis()}?prefix={unique_prefix()}"
    return url, functools.partial(drop_redis_prefix, url)


#: The PostgreSQL server the tests use. Every test works in a schema of its own, dropped afterwards.
POSTGRES_URL = os.environ.get("JOBQUEUE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _probe_postgres() -> str | None:
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"no PostgreSQL at {POSTGRES_URL} ({exc}); set JOBQUEUE_TEST_POSTGRES_URL"
    return None


@functools.cache
def _postgres_unreachable() -> str | None:
    with ThreadPoolExecutor(1) as pool:  # a loop of its own: callers may be inside a running one
        return pool.submit(_probe_postgres).result()


def require_postgres() -> str:
    """The test PostgreSQL URL, or skip (fail under CI) when no server answers there."""
    reason = _postgres_unreachable()
    if reason is not None:
        skip_or_fail(reason)
    return POSTGRES_URL


def unique_schema() -> str:
    return f"jqtest_{uuid.uuid4().hex[:12]}"


def drop_postgres_schema(schema: str) -> None:
    """Drop a test schema (from sync code, in a thread of its own so any caller's loop is left alone)."""
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=10)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, drop()).result()


def _postgres_factory(tmp: Path, clock: Clock) -> Backend:
    from jobqueue.backends.postgres import PostgresBackend

    class TestPostgresBackend(PostgresBackend):
        """A backend in a fresh schema that is dropped when the backend closes."""

        async def close(self) -> None:
            await super().close()
            await asyncio.to_thread(drop_postgres_schema, self.schema)

    return TestPostgresBackend(require_postgres(), schema=unique_schema(), clock=clock, pool_size=2)


def _postgres_store(tmp: Path) -> tuple[str, Callable[[], None]]:
    schema = unique_schema()
    return f"{require_postgres()}?schema={schema}&pool_size=3", functools.partial(drop_postgres_schema, schema)


FACTORIES: dict[str, BackendFactory] = {
    "memory": lambda tmp, clock: MemoryBackend(clock=clock),
    "sqlite": lambda tmp, clock: SQLiteBackend(tmp / "jobs.db", clock=clock),
    "redis": _redis_factory,
    "postgres": _postgres_factory,
}

ALL_BACKENDS = list(FACTORIES)

#: Backends that several processes can share, by the URL each process opens, for the subprocess
#: tests (worker faults, serve). Each gives a URL of a fresh, isolated store under ``tmp`` and a
#: function that removes that store afterwards (a no-op for files under ``tmp``).
StoreURL = tuple[str, Callable[[], None]]
SHARED_STORES: dict[str, Callable[[Path], StoreURL]] = {
    "sqlite": lambda tmp: (f"sqlite:///{tmp / 'shared.db'}", lambda: None),
    "redis": _redis_store,
    "postgres": _postgres_store,
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


B = TypeVar("B", bound=Backend)


async def opened(make: Callable[[], B], n: int) -> list[B]:
    """``n`` backends from ``make`` (the ``shared`` fixture's, say), opened."""
    backends = [make() for _ in range(n)]
    for backend in backends:
        await backend.open()
    return backends
