"""Fixtures shared by the integration tests: several PostgreSQL backends on one fresh schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from jobqueue.backends.postgres import PostgresBackend
from tests.backends import drop_postgres_schema, require_postgres, unique_schema


@pytest.fixture
async def shared() -> AsyncIterator[Callable[..., PostgresBackend]]:
    """Makes backends (each with pools of its own, as processes have) on one fresh schema; closes
    them and drops the schema afterwards. Options go to ``PostgresBackend`` (``dsn`` too)."""
    url, schema = require_postgres(), unique_schema()
    made: list[PostgresBackend] = []

    def make(**options: object) -> PostgresBackend:
        backend = PostgresBackend(options.pop("dsn", url), schema=schema, pool_size=2, **options)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    try:
        yield make
    finally:
        for backend in made:
            await backend.close()
        await asyncio.to_thread(drop_postgres_schema, schema)
