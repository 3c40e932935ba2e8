"""schema.sql (how a fresh database is made) and the numbered migrations (how an old one is brought up
to date) must describe the same database; and opening a database must never harm it."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from jobqueue.backends import ListParams
from jobqueue.backends.sqlite import SQLiteBackend
from jobqueue.backends.sqlite.connection import _statements, apply_schema
from jobqueue.backends.sqlite.sql import migrations
from jobqueue.clock import FakeClock
from jobqueue.errors import ConfigurationError
from jobqueue.job import JobState, NewJob
from jobqueue.outcomes import Accepted

SchemaRow = tuple[str, str, str, str | None]

LATEST = migrations()[-1][0]


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


def normalize(sql: str | None) -> str | None:
    """SQL text without comments and with whitespace collapsed, so that layout cannot differ."""
    if sql is None:  # autoindexes have no SQL
        return None
    sql = re.sub(r"--[^\n]*", "", sql)
    sql = re.sub(r"\s+", " ", sql)
    sql = re.sub(r"\s*([(),;])\s*", r"\1", sql)
    return sql.strip()


def schema_of(conn: sqlite3.Connection) -> tuple[list[SchemaRow], int]:
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return [(type_, name, table, normalize(sql)) for type_, name, table, sql in rows], version


def columns_of(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every table's columns (name, type, not null, default, primary key) as SQLite understands them."""
    tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {table: conn.execute(f"PRAGMA table_xinfo({table})").fetchall() for table in tables}


def apply_migrations(conn: sqlite3.Connection, up_to: int) -> None:
    """Bring a database to version ``up_to`` one migration at a time, as an upgrade would."""
    for number, script in migrations():
        if number > up_to:
            break
        conn.execute("BEGIN")
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")


def create_from_schema(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    apply_schema(conn)
    conn.execute("COMMIT")


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    numbers = [number for number, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))


def test_schema_sql_and_migrations_build_the_same_database(tmp_path: Path) -> None:
    with connect(tmp_path / "fresh.db") as fresh, connect(tmp_path / "migrated.db") as migrated:
        assert schema_of(fresh) == ([], 0)
        create_from_schema(fresh)
        apply_migrations(migrated, LATEST)

        fresh_schema, fresh_version = schema_of(fresh)
        migrated_schema, migrated_version = schema_of(migrated)
        assert fresh_version == migrated_version == LATEST
        assert {row[1] for row in fresh_schema} >= {"jobs", "idempotency_keys", "queue_counts"}
        assert fresh_schema == migrated_schema
        assert columns_of(fresh) == columns_of(migrated)


def test_apply_schema_upgrades_every_older_version_to_the_same_database(tmp_path: Path) -> None:
    """apply_schema's own migration path (a database already at some version) ends where schema.sql does."""
    with connect(tmp_path / "fresh.db") as fresh:
        create_from_schema(fresh)
        expected = schema_of(fresh)
    for start in range(1, LATEST):  # empty while there is one migration; guards the ones to come
        with connect(tmp_path / f"from-{start}.db") as old:
            apply_migrations(old, start)
            create_from_schema(old)
            assert schema_of(old) == expected, f"upgrading from version {start}"


def test_apply_schema_on_a_current_database_changes_nothing(tmp_path: Path) -> None:
    with connect(tmp_path / "jobs.db") as conn:
        create_from_schema(conn)
        before = schema_of(conn)
        create_from_schema(conn)
        assert schema_of(conn) == before


def test_a_database_newer_than_this_jobqueue_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
        with pytest.raises(ConfigurationError, match="newer"):
            apply_schema(conn)


async def test_opening_a_newer_database_raises_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with connect(path) as conn:
        conn.execute("CREATE TABLE something_new (x INTEGER)")
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
        before = schema_of(conn)
    threads_before = set(threading.enumerate())

    backend = SQLiteBackend(path, clock=FakeClock())
    with pytest.raises(ConfigurationError, match="newer"):
        await backend.open()

    leaked = [t for t in set(threading.enumerate()) - threads_before if t.name.startswith("jobqueue-sqlite")]
    assert not leaked, f"a failed open left threads running: {leaked}"
    with connect(path) as conn:
        assert schema_of(conn) == before
    with pytest.raises(ConfigurationError, match="not open"):
        await backend.get("anything")


async def test_reopening_an_existing_database_keeps_schema_and_data(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    clock = FakeClock()
    first = SQLiteBackend(path, clock=clock)
    await first.open()
    await first.open()  # open is idempotent on an open backend
    (outcome,) = await first.enqueue([NewJob(payload={"kept": True}, queue="q", idempotency_key="k")])
    assert isinstance(outcome, Accepted)
    job_id = outcome.job.id
    await first.close()
    with connect(path) as conn:
        schema_before = schema_of(conn)

    second = SQLiteBackend(path, clock=clock)
    await second.open()
    try:
        job = await second.get(job_id)
        assert job is not None
        assert job.state is JobState.PENDING
        assert job.payload == {"kept": True}
        page = await second.list_jobs(ListParams())
        assert [j.id for j in page.jobs] == [job_id]
        stats = await second.stats()
        assert stats.queues["q"].counts[JobState.PENDING] == 1
        assert stats.idempotency_keys == 1
    finally:
        await second.close()
    with connect(path) as conn:
        assert schema_of(conn) == schema_before
