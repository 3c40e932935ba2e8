"""Running named statements through asyncpg: retries that are safe, and errors in jobqueue's terms."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from jobqueue.errors import BackendError, BackendUnavailable, JobQueueError

log = logging.getLogger("jobqueue.postgres")

T = TypeVar("T")

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
#: A statement ran out of time (ours, or the server's statement_timeout): the store is unreachable
#: or stuck. Not run again: in a partition every try waits the whole timeout.
TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, asyncpg.QueryCanceledError)
#: Anything the driver raises.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)
#: The statement was rolled back as a whole and may simply be run again.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
#: Runs of a statement that failed transiently before the error is reported.
ATTEMPTS = 3


def translate(exc: BaseException) -> JobQueueError:
    """A driver error as :class:`BackendUnavailable` (try later) or :class:`BackendError`."""
    if isinstance(exc, TIMEOUT_ERRORS):
        return BackendUnavailable(f"postgresql unavailable: no answer in time ({exc or type(exc).__name__})")
    if isinstance(exc, CONNECTION_ERRORS):
        return BackendUnavailable(f"postgresql unavailable: {exc}")
    return BackendError(f"postgresql: {exc}")


def _may_run_again(exc: BaseException, attempt: int, *, reconnect: bool) -> bool:
    """Whether a run that failed with ``exc`` may go again while attempts remain: it lost a
    deadlock or a serialization race, or (``reconnect``) its connection. Never after a timeout:
    in a partition every try waits the whole timeout."""
    if attempt == ATTEMPTS or isinstance(exc, TIMEOUT_ERRORS):
        return False
    if isinstance(exc, TRANSIENT_ERRORS):
        log.info("postgres.retry: %s", exc)
        return True
    if reconnect and isinstance(exc, CONNECTION_ERRORS):
        log.info("postgres.reconnect: %s", exc)
        return True
    return False


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
                return await self._fetch_once(query, args), lost
            except DRIVER_ERRORS as exc:
                if not _may_run_again(exc, attempt, reconnect=not lost):
                    raise translate(exc) from exc
                if isinstance(exc, CONNECTION_ERRORS):
                    lost = True
                    await asyncio.sleep(0)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch_once(self, query: str, args: Sequence[Any]) -> list[asyncpg.Record]:
        conn = await self.pool.acquire()
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows
        except (TimeoutError, asyncio.CancelledError):
            # On its way back to the pool asyncpg would send a cancel request and wait for it,
            # which in a partition hangs as long again: drop the connection (the server rolls
            # back what it was doing; the pool opens another).
            conn.terminate()
            raise
        finally:
            await self.pool.release(conn)

    async def transaction(self, work: Callable[[PoolConnectionProxy], Awaitable[T]]) -> T:
        """What ``work`` answers, its statements run in one READ COMMITTED transaction on a pooled
        connection (each statement sees everything committed before it starts).

        Run again, on a fresh connection, when it lost a deadlock or its connection before the
        commit: nothing was written then. A connection lost during the commit is reported as
        unavailable, since the commit may have happened.
        """
        for attempt in range(1, ATTEMPTS + 1):
            committing = False
            try:
                conn = await self.pool.acquire()
                try:
                    async with conn.transaction(isolation="read_committed"):
                        result = await work(conn)
                        committing = True
                    return result
                except (TimeoutError, asyncio.CancelledError):
                    conn.terminate()  # as in _fetch_once: no cancel request to wait for
                    raise
                finally:
                    await self.pool.release(conn)
            except DRIVER_ERRORS as exc:
                if not _may_run_again(exc, attempt, reconnect=not committing):
                    raise translate(exc) from exc
                if isinstance(exc, CONNECTION_ERRORS):
                    await asyncio.sleep(0)
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


def keepalive_settings(timeout: float) -> dict[str, str]:
    """Server settings that make the server drop a connection whose client vanished (a partition,
    a dead host) within about ``timeout``, freeing whatever it held."""
    seconds = max(1, round(timeout / 3))
    return {
        "tcp_keepalives_idle": str(seconds),
        "tcp_keepalives_interval": str(seconds),
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": str(round(timeout * 1000)),
    }


def client_keepalive(conn: asyncpg.Connection, timeout: float) -> None:
    """The same on this side of the connection: an idle LISTEN connection learns of a partition
    from the kernel, and writes stuck in the send buffer fail after ``timeout``."""
    transport = getattr(conn, "_transport", None)  # asyncpg exposes no public way to the socket
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    seconds = max(1, round(timeout / 3))
    with contextlib.suppress(OSError, AttributeError):  # not every platform has every option
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, seconds)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, seconds)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, round(timeout * 1000))


async def create_pool(
    dsn: str, size: int, connect_timeout: float, statement_timeout: float, synchronous_commit: str | None
) -> asyncpg.Pool:
    """A pool of up to ``size`` connections with :data:`SESSION_SETTINGS` (and ``synchronous_commit``).

    The server cancels a statement after ``statement_timeout``; the client gives up a second
    later should the server not answer at all (asyncpg then also bounds its cancel request by it).
    """
    settings = dict(SESSION_SETTINGS)
    settings["statement_timeout"] = str(round(statement_timeout * 1000))
    settings.update(keepalive_settings(statement_timeout))
    if synchronous_commit is not None:
        settings["synchronous_commit"] = synchronous_commit

    async def init(conn: asyncpg.Connection) -> None:
        client_keepalive(conn, statement_timeout)

    try:
        pool: asyncpg.Pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=size, server_settings=settings, timeout=connect_timeout,
            command_timeout=statement_timeout + 1, reset=_keep_session, init=init,
        )  # fmt: skip
    except DRIVER_ERRORS as exc:
        raise translate(exc) from exc
    return pool
