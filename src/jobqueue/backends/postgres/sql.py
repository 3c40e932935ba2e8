"""The named statements of ``queries.sql``, ``dependencies.sql`` and ``insight.sql`` for one schema,
the schema itself and its migrations."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from jobqueue.backends.params import MAX_ATTEMPT_ERRORS
from jobqueue.backends.sqlfiles import SqlFiles
from jobqueue.errors import ConfigurationError

#: The jobs columns in the order of :class:`jobqueue.job.Job`'s fields.
JOB_COLUMNS = (
    "id", "queue", "task", "payload", "priority", "state", "retry_count", "max_retries", "idempotency_key",
    "created_at", "run_at", "started_at", "finished_at", "last_attempt", "next_retry_at", "error", "result",
    "timeout", "lease_expires_at", "worker_id", "lease_token", "parents", "rate_key",
)  # fmt: skip

#: Shards of queue_counts: enough that the connections of one host rarely share a row (claim_limited,
#: schema.sql, writes ``% 16`` too).
COUNT_SHARDS = 16
#: The column ``freed`` of the statements that end attempts (rows of ``done``): the job's queue when
#: it has a concurrency limit and its last limited claim was held back by it (a slot is free that
#: a waiting worker wants: it must hear of it), else NULL. A probe of queue_limits' primary key,
#: which holds only the queues whose limits were ever set. A claim held back in the millisecond
#: before this statement's snapshot may not be seen: its worker then starts the job at the next
#: completion or poll, whichever comes first.
FREED = (
    "CASE WHEN EXISTS (SELECT 1 FROM {schema}.queue_limits l WHERE l.queue = done.queue AND l.holds_slots"
    " AND l.slot_waited) THEN done.queue END AS freed"
)
#: The CTEs of ``fail`` and ``fail_parents`` that record each attempt they failed (a row of
#: ``done``: the job's row after the update, with the failure's error and traceback) and keep the
#: job's latest MAX_ATTEMPT_ERRORS: the statement's snapshot does not see its own insert, so the
#: rows from the MAX_ATTEMPT_ERRORS-th newest down go, found by a backward seek of at most that many
#: entries of the primary key. The worker that ``done`` cleared is read from that snapshot: it
#: holds the claim whose token matched, and nothing after a claim changes its worker.
RECORD_ERRORS = f"""recorded AS (
    INSERT INTO {{schema}}.attempt_errors (job_id, token, attempt, started_at, failed_at, error, traceback, worker_id)
    SELECT d.id, d.lease_token, d.retry_count, d.last_attempt, t.now, d.error, d.traceback, o.worker_id
    FROM done d JOIN {{schema}}.jobs o ON o.id = d.id, t
),
trimmed AS (
    DELETE FROM {{schema}}.attempt_errors e
    USING done d CROSS JOIN LATERAL (
        SELECT x.token FROM {{schema}}.attempt_errors x WHERE x.job_id = d.id
        ORDER BY x.token DESC OFFSET {MAX_ATTEMPT_ERRORS - 1} LIMIT 1
    ) AS c
    WHERE e.job_id = d.id AND e.token <= c.token
),"""
#: An injected clock's time when ``$1`` carries one, else the server's clock.
NOW = "COALESCE($1::float8, extract(epoch FROM now())::float8)"
#: The same, but the server's clock when the expression is evaluated (after the lock waits before it).
NOW_LATE = "COALESCE($1::float8, extract(epoch FROM clock_timestamp())::float8)"
#: What a schema name may look like (it is also part of the LISTEN channel's name).
SCHEMA_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,47}")
DEFAULT_SCHEMA = "jobqueue"

#: A connection of our own or one borrowed from a pool.
Connection = asyncpg.Connection | PoolConnectionProxy

FILES = SqlFiles(Path(__file__).parent)
read = FILES.read
migrations = FILES.migrations


def check_schema_name(schema: str) -> str:
    if not isinstance(schema, str) or SCHEMA_PATTERN.fullmatch(schema) is None:
        raise ConfigurationError(
            f"schema name {schema!r}: use 1-48 lower-case letters, digits and '_', not starting with a digit"
        )
    return schema


def _expand(match: re.Match[str]) -> str:
    prefix = match.group(1) or ""
    return ", ".join(prefix + column for column in JOB_COLUMNS)


#: The filters of a listing, in the order their parameters follow the cursor and the limit.
LISTING_FILTERS = ("state", "queue", "task")


def listing_name(base: str, given: tuple[str, ...]) -> str:
    """The statement of ``base`` (list_jobs, list_dead_jobs) for the filters ``given``."""
    return ":".join((base, *given))


def listing_statements(statements: dict[str, str]) -> dict[str, str]:
    """Each listing statement once per set of filters (see list_jobs in queries.sql)."""
    bases = (("list_jobs", LISTING_FILTERS), ("list_running_jobs", LISTING_FILTERS[1:]),
             ("list_dead_jobs", LISTING_FILTERS[1:]))  # fmt: skip
    for base, columns in bases:
        template = statements.pop(base)
        for mask in range(1 << len(columns)):
            given = tuple(c for i, c in enumerate(columns) if mask >> i & 1)
            filters = "".join(f" AND {column} = ${n}" for n, column in enumerate(given, start=3))
            statements[listing_name(base, given)] = template.replace("{filters}", filters)
    return statements


class Queries:
    """``{name: statement}`` for one schema, and which statements take the time as ``$1``."""

    def __init__(self, schema: str) -> None:
        self.schema = check_schema_name(schema)
        text = "\n".join(read(name) for name in ("queries.sql", "dependencies.sql", "insight.sql"))
        text = re.sub(r"\{(\w+\.)?job_columns\}", _expand, text)
        text = text.replace("{job_nulls}", ", ".join(["NULL"] * (len(JOB_COLUMNS) - 1))).replace("{freed}", FREED)
        text = text.replace("{record_errors}", RECORD_ERRORS)
        text = text.replace("{schema}", f'"{schema}"').replace("{shard}", f"(pg_backend_pid() % {COUNT_SHARDS})")
        self.statements = listing_statements(FILES.named(text))
        self.takes_now = {name for name, statement in self.statements.items() if "{now" in statement}
        for name in self.takes_now:
            self.statements[name] = self.statements[name].replace("{now}", NOW).replace("{now_late}", NOW_LATE)

    def __getitem__(self, name: str) -> str:
        return self.statements[name]

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel of this schema's workers."""
        return f"jobqueue_{self.schema}"


def latest_version() -> int:
    return migrations()[-1][0]


async def schema_version(conn: Connection, q: Queries) -> int:
    """The version of the schema in the database: 0 when it has none."""
    if not await conn.fetchval(q["has_version_table"], f'"{q.schema}".schema_version'):
        return 0
    version = await conn.fetchval(q["get_version"])
    return int(version or 0)


async def migrate(conn: Connection, q: Queries) -> tuple[int, int]:
    """Create or upgrade the schema in one transaction; returns (version before, version after).

    A fresh schema is made from ``schema.sql``; an older one gets each newer migration in order.
    Concurrent callers (workers starting together) wait for each other on an advisory lock.
    """
    steps = migrations()
    latest = steps[-1][0]
    async with conn.transaction():
        await conn.execute(q["lock_migrations"], q.schema)
        await conn.execute(q["create_schema"])
        version = await schema_version(conn, q)
        if version > latest:
            raise ConfigurationError(
                f"schema {q.schema!r} is at version {version}, newer than this jobqueue ({latest}); upgrade jobqueue"
            )
        if version == latest:
            return version, version
        await conn.execute(q["set_search_path"])
        has_jobs = await conn.fetchval(q["has_jobs_table"], f'"{q.schema}".jobs')
        if version == 0 and not has_jobs:
            await conn.execute(read("schema.sql"))
        else:
            for number, script in steps:
                if number > version:
                    await conn.execute(script)
        await conn.execute(q["set_version"], latest)
    return version, latest
