"""Running named statements through asyncpg: retries that are safe, and errors in jobqueue's terms."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg

from jobqueue.errors import BackendError, BackendUnavailable, JobQueueError

log = logging.getLogger("jobqueue.postgres")

#: The connection is gone or cannot be had now: the server restarted, was shut down, terminated
#: this backend (``pg_terminate_backend``), or has no free connection slot.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
#: Anything the driver raises.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)
#: The statement was rolled back as a whole and may simply be run again.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
#: Runs of a statement that failed transiently before the error is reported.
ATTEMPTS = 3


def translate(exc: BaseException) -> JobQueueError:
    """A driver error as :class:`BackendUnavailable` (try later) or :class:`BackendError`."""
    if isinstance(exc, CONNECTION_ERRORS):
        return BackendUnavailable(f"postgresql unavailable: {exc}")
    return BackendError(f"postgresql: {exc}")


class Runner:
    """Runs statements on a pool, retrying those that failed without taking effect.

    A statement that died with its connection (the first use of a pooled connection after a server
    restart, say) or that lost a deadlock is run again on a fresh connection. A write whose commit
    may have happened before the connection dropped is safe to repeat: every write here is keyed by
    job id and lease token, and a repeated enqueue finds its own jobs already stored.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def fetch(self, query: str, args: Sequence[Any]) -> tuple[list[asyncpg.Record], bool]:
        """The rows, and whether a connection was lost (so an earlier run may have committed)."""
        lost = False
        for attempt in range(1, ATTEMPTS + 1):
            try:
                rows: list[asyncpg.Record] = await self.pool.fetch(query, *args)
                return rows, lost
            except TRANSIENT_ERRORS as exc:
                if attempt == ATTEMPTS:
                    raise translate(exc) from exc
                log.info("postgres.retry: %s", exc)
            except CONNECTION_ERRORS as exc:
                if attempt == ATTEMPTS or lost:
                    raise translate(exc) from exc
                lost = True
                log.info("postgres.reconnect: %s", exc)
                await asyncio.sleep(0)
            except asyncpg.PostgresError as exc:
                raise translate(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover


async def fetch_on(conn: asyncpg.Connection, query: str, args: Sequence[Any]) -> list[asyncpg.Record]:
    """Run a statement on the caller's own connection (inside their transaction): no retry."""
    try:
        rows: list[asyncpg.Record] = await conn.fetch(query, *args)
    except DRIVER_ERRORS as exc:
        raise translate(exc) from exc
    return rows


#: Settings of every pooled connection. Generic plans: the statements take arrays, which custom
#: plans gain nothing from, and planning the enqueue statement costs more than running it. A
#: generic plan is kept for the connection's life, so it must not depend on how big the tables
#: were when it was made: every statement here touches a few rows found by index (jobs by id,
#: waiting jobs by queue, leases by expiry), so sequential scans and hash or merge joins (which
#: read a whole table) are turned off, and a plan made on an empty table still probes the indexes
#: once there are millions of jobs. No JIT: statements are short, and the disabled plan types
#: inflate cost estimates past JIT's thresholds.
SESSION_SETTINGS = {
    "application_name": "jobqueue",
    "plan_cache_mode": "force_generic_plan",
    "enable_seqscan": "off",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "jit": "off",
}


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset when a connection goes back to the pool: asyncpg's default costs a round trip per
    operation, and these statements leave no session state (no LISTEN, SET, cursors or session
    locks; advisory locks here are transaction-scoped)."""


async def create_pool(dsn: str, size: int, timeout: float, synchronous_commit: str | None) -> asyncpg.Pool:
    """A pool of up to ``size`` connections with :data:`SESSION_SETTINGS` (and ``synchronous_commit``)."""
    settings = dict(SESSION_SETTINGS)
    if synchronous_commit is not None:
        settings["synchronous_commit"] = synchronous_commit
    try:
        pool: asyncpg.Pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=size, server_settings=settings, timeout=timeout, reset=_keep_session
        )
    except DRIVER_ERRORS as exc:
        raise translate(exc) from exc
    return pool
