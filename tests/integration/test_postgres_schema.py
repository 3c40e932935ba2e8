"""PostgreSQL: schema.sql (how a fresh schema is made) and the numbered migrations (how an old one is
brought up to date) must describe the same database; migrating is safe to repeat and to race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from jobqueue.backends import ClaimParams, Completion, Lease, create_backend
from jobqueue.backends.postgres import PostgresBackend
from jobqueue.backends.postgres.sql import Queries, latest_version, migrate, migrations, schema_version
from jobqueue.errors import ConfigurationError
from jobqueue.job import JobState, NewJob
from jobqueue.limits import QueueLimits
from jobqueue.outcomes import Accepted
from tests.backends import drop_postgres_schema, require_postgres, unique_schema

LATEST = latest_version()


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(require_postgres())
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def schemas() -> Iterator[list[str]]:
    """Fresh schema names are added here; every one is dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        drop_postgres_schema(name)


def new_schema(schemas: list[str]) -> str:
    name = unique_schema()
    schemas.append(name)
    return name


async def describe(conn: asyncpg.Connection, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Tables, columns, indexes, constraints and functions of a schema, with its name blanked out."""

    def blank(rows: list[asyncpg.Record]) -> list[tuple[Any, ...]]:
        return sorted(tuple(str(v).replace(f'"{schema}"', "S").replace(schema, "S") for v in r) for r in rows)

    return {
        "columns": blank(
            await conn.fetch(
                "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default,"
                " is_identity FROM information_schema.columns WHERE table_schema = $1",
                schema,
            )
        ),
        "indexes": blank(await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1", schema)),
        "constraints": blank(
            await conn.fetch(
                "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
                " JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1",
                schema,
            )
        ),
        "functions": blank(
            await conn.fetch(
                "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1",
                schema,
            )
        ),
    }


async def apply_migrations(conn: asyncpg.Connection, schema: str, up_to: int) -> None:
    """Bring a schema to version ``up_to`` one migration at a time, as an upgrade would."""
    q = Queries(schema)
    for number, script in migrations():
        if number > up_to:
            break
        async with conn.transaction():
            await conn.execute(q["create_schema"])
            await conn.execute(q["set_search_path"])
            await conn.execute(script)
            await conn.execute(q["set_version"], number)


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    numbers = [number for number, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))


async def test_schema_sql_and_migrations_build_the_same_database(conn: asyncpg.Connection, schemas: list[str]) -> None:
    fresh, migrated = new_schema(schemas), new_schema(schemas)
    assert await migrate(conn, Queries(fresh)) == (0, LATEST)
    await apply_migrations(conn, migrated, LATEST)
    expected = await describe(conn, fresh)
    assert {row[0] for row in expected["columns"]} >= {"jobs", "idempotency_keys", "queue_counts"}
    assert expected == await describe(conn, migrated)
    assert await schema_version(conn, Queries(migrated)) == LATEST


async def test_migrate_upgrades_every_older_version_to_the_same_database(
    conn: asyncpg.Connection, schemas: list[str]
) -> None:
    fresh = new_schema(schemas)
    await migrate(conn, Queries(fresh))
    expected = await describe(conn, fresh)
    for start in range(1, LATEST):  # empty while there is one migration; guards the ones to come
        old = new_schema(schemas)
        await apply_migrations(conn, old, start)
        assert await migrate(conn, Queries(old)) == (start, LATEST)
        assert await describe(conn, old) == expected, f"upgrading from version {start}"


async def test_migrate_twice_and_concurrently_changes_nothing(conn: asyncpg.Connection, schemas: list[str]) -> None:
    schema = new_schema(schemas)
    url = require_postgres()
    connections = [await asyncpg.connect(url) for _ in range(4)]
    try:
        # Four workers starting together on a fresh database: one creates, the others wait and see.
        results = await asyncio.gather(*(migrate(c, Queries(schema)) for c in connections))
    finally:
        for c in connections:
            await c.close()
    assert sorted(results) == [(0, LATEST)] + [(LATEST, LATEST)] * 3
    before = await describe(conn, schema)
    assert await migrate(conn, Queries(schema)) == (LATEST, LATEST)
    assert await describe(conn, schema) == before


async def test_a_schema_newer_than_this_jobqueue_is_refused(conn: asyncpg.Connection, schemas: list[str]) -> None:
    schema = new_schema(schemas)
    q = Queries(schema)
    await migrate(conn, q)
    await conn.execute(q["set_version"], LATEST + 1)
    with pytest.raises(ConfigurationError, match="newer"):
        await migrate(conn, q)


async def test_open_without_migrate_needs_a_current_schema(schemas: list[str]) -> None:
    schema = new_schema(schemas)
    backend = create_backend(f"{require_postgres()}?schema={schema}&migrate=false")
    assert isinstance(backend, PostgresBackend) and backend.migrate is False
    with pytest.raises(ConfigurationError, match="jobqueue migrate"):
        await backend.open()
    await backend.close()
    migrated = PostgresBackend(require_postgres(), schema=schema)
    await migrated.open()
    await migrated.close()
    backend = create_backend(f"{require_postgres()}?schema={schema}&migrate=false")
    await backend.open()
    assert await backend.get("nothing") is None
    await backend.close()


def test_url_options() -> None:
    backend = create_backend("postgresql://u@h:5433/db?schema=app_two&durability=strict&pool_size=3&sslmode=disable")
    assert isinstance(backend, PostgresBackend)
    assert (backend.schema, backend.durability, backend.pool_size) == ("app_two", "strict", 3)
    assert backend.dsn == "postgresql://u@h:5433/db?sslmode=disable"
    for bad in ("schema=Bad-Name", "durability=sometimes", "migrate=maybe", "pool_size=x"):
        with pytest.raises(ConfigurationError):
            create_backend(f"postgresql://u@h/db?{bad}")


def test_migrate_command(schemas: list[str], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from jobqueue.cli import app

    runner = CliRunner()
    url = f"{require_postgres()}?schema={new_schema(schemas)}"
    first = runner.invoke(app, ["migrate", "--backend", url])
    assert first.exit_code == 0, first.output
    assert f"at version {LATEST} (migrated from version 0)" in first.output
    again = runner.invoke(app, ["migrate", "--backend", url])
    assert again.exit_code == 0 and "already current" in again.output
    sqlite = runner.invoke(app, ["migrate", "--backend", f"sqlite:///{tmp_path / 'x.db'}"])
    assert sqlite.exit_code == 0 and "nothing to migrate" in sqlite.output
    down = runner.invoke(app, ["migrate", "--backend", "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1"])
    assert down.exit_code == 3 and "unavailable" in down.output


async def test_jobs_stored_before_dependencies_take_children_after_the_upgrade(
    conn: asyncpg.Connection, schemas: list[str]
) -> None:
    schema = new_schema(schemas)
    await apply_migrations(conn, schema, 5)
    await conn.execute(
        f'INSERT INTO "{schema}".jobs (id, queue, task, payload, priority, state, max_retries, created_at, run_at)'
        " VALUES ('old', 'default', 'default', '1', 0, 'PENDING', 3, 0, 0)"
    )
    await conn.execute(f"INSERT INTO \"{schema}\".queue_counts VALUES ('default', 'PENDING', 0, 1)")
    backend = PostgresBackend(require_postgres(), schema=schema)
    await backend.open()  # migrates
    try:
        (outcome,) = await backend.enqueue([NewJob("child", depends_on=["old"])], {"default": 2})
        assert isinstance(outcome, Accepted) and outcome.job.state is JobState.BLOCKED
        (old,) = await backend.claim(ClaimParams(["default"], "w", 10))
        assert old.id == "old" and old.parents == ()
        assert await backend.complete([Completion(Lease("old", old.lease_token))]) == [True]
        released = await backend.get(outcome.job.id)
        assert released is not None and released.state is JobState.PENDING and released.parents == ("old",)
    finally:
        await backend.close()


async def test_jobs_stored_before_limits_are_claimed_under_them_after_the_upgrade(
    conn: asyncpg.Connection, schemas: list[str]
) -> None:
    schema = new_schema(schemas)
    await apply_migrations(conn, schema, 7)
    for n in range(3):
        await conn.execute(
            f'INSERT INTO "{schema}".jobs (id, queue, task, payload, priority, state, max_retries, created_at, run_at)'
            f" VALUES ('old{n}', 'default', 'default', '1', 0, 'PENDING', 3, 0, 0)"
        )
    await conn.execute(f"INSERT INTO \"{schema}\".queue_counts VALUES ('default', 'PENDING', 0, 3)")
    backend = PostgresBackend(require_postgres(), schema=schema)
    await backend.open()  # migrates
    try:
        await backend.set_queue_limits("default", QueueLimits(concurrency=2, key_concurrency=1))
        claimed = await backend.claim(ClaimParams(["default"], "w", 10))
        assert [job.id for job in claimed] == ["old0", "old1"] and claimed[0].rate_key is None
        (keyed,) = await backend.enqueue([NewJob("new", rate_key="tenant")])
        assert isinstance(keyed, Accepted) and keyed.job.rate_key == "tenant"
        stored = await backend.get(keyed.job.id)
        assert stored is not None and stored.rate_key == "tenant"
    finally:
        await backend.close()
