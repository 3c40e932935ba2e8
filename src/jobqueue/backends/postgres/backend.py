"""``postgresql://user@host:port/db``: many workers on many machines sharing one queue.

asyncpg with two connection pools; every statement is a named query of ``queries.sql``, prepared
once per connection (asyncpg's statement cache) and run as a single statement, so each operation is
one round trip and one implicit transaction.

- Claims use ``FOR UPDATE SKIP LOCKED`` over the partial index of waiting jobs: workers never wait
  for each other, and a claim costs the same with a thousand or a million waiting jobs.
- Idempotency, capacity and insert are one statement. A capped queue is serialised by a
  transaction-scoped advisory lock taken inside it (``lock_waiting``), which then reads the
  queue's waiting count with a fresh snapshot: every producer sees every job committed before it,
  so capacity is exact across any number of producers. Keys are reserved with ``INSERT ... ON
  CONFLICT``, which decides on the latest row: two producers of one key get one job.
- Every time (due, lease, key expiry) is the server's ``now()``: worker clocks may be skewed.
- Durability (``durability=``), as for SQLite: ``"full"`` (default) commits enqueue, replay and
  cancel with the server's ``synchronous_commit`` and worker updates (claim, heartbeat, complete,
  fail, release) with ``synchronous_commit=off``: a server crash can lose the last fraction of a
  second of those, which the lease then re-runs (at-least-once holds); an accepted job is never
  lost. ``"strict"`` commits everything synchronously; ``"normal"`` nothing (accepted jobs may be
  lost in a server crash, never in a client crash).
- Transactional enqueue: :meth:`PostgresBackend.enqueue_in` stores jobs inside the caller's own
  transaction, so that they exist only if it commits.
- Periodic schedules (``schedules.py``): a tick is spent and its job enqueued in one transaction.
- Dependencies (``dependencies.py``): a parent's end releases its children in the same statement.
- Paused queues (``queues.py``): stored in the database, checked inside the claim statement.
- Rate and concurrency limits (``limits.py``): a claim of a limited queue locks the queue's
  limits row first; the claim of queues without limits is what it was.
- What the dashboard reads (``insight.py``): a failure records its attempt in the statement
  that fails it; the arrival counter is the jobs' identity sequence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import asyncpg

from jobqueue.backends.base import Capabilities
from jobqueue.backends.params import ClaimParams, Completion, Failure, Lease, PruneParams
from jobqueue.backends.postgres.dependencies import PostgresDependencies, lock_order
from jobqueue.backends.postgres.driver import (
    DRIVER_ERRORS,
    Runner,
    client_keepalive,
    create_pool,
    fetch_on,
    keepalive_settings,
    translate,
)
from jobqueue.backends.postgres.enqueue import enqueue_rounds
from jobqueue.backends.postgres.insight import PostgresInsight, fail_columns
from jobqueue.backends.postgres.limits import PostgresLimits
from jobqueue.backends.postgres.notify import Announcer, Listener
from jobqueue.backends.postgres.queues import PostgresQueues
from jobqueue.backends.postgres.rows import job_of
from jobqueue.backends.postgres.running import PostgresRunningJobs
from jobqueue.backends.postgres.schedules import PostgresSchedules
from jobqueue.backends.postgres.sql import (
    DEFAULT_SCHEMA,
    Connection,
    Queries,
    latest_version,
    migrate,
    schema_version,
)
from jobqueue.backends.wakeup import Wakeup
from jobqueue.clock import Clock
from jobqueue.errors import ConfigurationError, InvalidTransition, JobNotFound, QueueFull
from jobqueue.job import Job, NewJob, RegisteredTask
from jobqueue.outcomes import Accepted, EnqueueOutcome, PruneResult, Stats, StatsBuilder

log = logging.getLogger("jobqueue.postgres")

Durability = Literal["full", "strict", "normal"]
#: Finished jobs deleted per prune statement: short transactions, however large the backlog.
PRUNE_BATCH = 5_000


class PostgresBackend(
    PostgresSchedules, PostgresDependencies, PostgresQueues, PostgresLimits, PostgresRunningJobs, PostgresInsight
):
    """The PostgreSQL backend on the database ``dsn`` names, in schema ``schema``.

    ``clock`` is for tests only: it replaces the server's clock in every statement. ``migrate``:
    create or upgrade the schema on :meth:`open` (else it must be current: ``jobqueue migrate``).
    ``pool_size``: connections per pool (there are two, plus one listening connection).
    ``statement_timeout``: seconds a statement may take before it fails as unavailable (503), so
    that callers are answered during a network partition or a stuck lock instead of hanging.
    """

    name = "postgres"
    capabilities = Capabilities(shared=True, durable=True, cross_process_wakeup=True, server_clock=True)

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        clock: Clock | None = None,
        durability: Durability = "full",
        migrate: bool = True,
        pool_size: int = 5,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
    ) -> None:
        if durability not in ("full", "strict", "normal"):
            raise ConfigurationError(f"durability must be 'full', 'strict' or 'normal', not {durability!r}")
        if pool_size < 1:
            raise ConfigurationError("pool_size must be at least 1")
        if not statement_timeout > 0:
            raise ConfigurationError("statement_timeout must be more than 0 seconds")
        self.dsn = dsn
        self.q = Queries(schema)
        self.schema = schema
        self.clock = clock
        self.durability = durability
        self.migrate = migrate
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self._accept: Runner | None = None  # enqueue, replay, cancel: commits an acceptance waits for
        self._work: Runner | None = None  # everything else
        self._opening: asyncio.Task[None] | None = None
        self._enqueuing = 0  # enqueue calls in flight in this process
        self._wakeup = Wakeup()
        self._listener = Listener(self._connect_listener, self.q.channel, self._wakeup)
        self._announcer = Announcer(self._send_notify)

    def _now(self) -> float | None:
        return None if self.clock is None else self.clock.time()

    # ---- lifecycle ------------------------------------------------------------------------

    async def _create_pool(self, synchronous_commit: str | None) -> asyncpg.Pool:
        return await create_pool(
            self.dsn, self.pool_size, self.connect_timeout, self.statement_timeout, synchronous_commit
        )

    async def _connect_listener(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn, timeout=self.connect_timeout, command_timeout=self.statement_timeout,
            server_settings={"application_name": "jobqueue-listen", **keepalive_settings(self.statement_timeout)},
        )  # fmt: skip
        client_keepalive(conn, self.statement_timeout)
        return conn

    async def _open(self) -> None:
        # Many first calls may arrive at once (an API's first burst): one of them connects.
        if self._work is not None:
            return
        if self._opening is None or self._opening.done():
            self._opening = asyncio.get_running_loop().create_task(self._connect())
        await asyncio.shield(self._opening)

    async def _connect(self) -> None:
        accept = await self._create_pool("off" if self.durability == "normal" else None)
        try:
            work = await self._create_pool(None if self.durability == "strict" else "off")
        except BaseException:
            accept.terminate()
            raise
        try:
            async with accept.acquire() as conn:
                await self._prepare_schema(conn)
        except BaseException:
            accept.terminate()
            work.terminate()
            raise
        self._accept, self._work = Runner(accept), Runner(work)
        self._listener = Listener(self._connect_listener, self.q.channel, self._wakeup)  # a closed one stays closed
        await self._listener.start()

    async def _prepare_schema(self, conn: Connection) -> None:
        try:
            if self.migrate:
                before, after = await migrate(conn, self.q)
                if before != after:
                    log.info("postgres.migrated schema=%s from=%d to=%d", self.schema, before, after)
                return
            version = await schema_version(conn, self.q)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        if version != latest_version():
            raise ConfigurationError(
                f"schema {self.schema!r} is at version {version}, this jobqueue needs {latest_version()}: "
                "run `jobqueue migrate` (or open with migrate=true)"
            )

    async def run_migrations(self) -> tuple[int, int]:
        """Create or upgrade the schema now, on a connection of its own (``jobqueue migrate``);
        returns the versions before and after. Works whether or not the backend is open."""
        try:
            conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        try:
            return await migrate(conn, self.q)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        finally:
            await conn.close()

    async def _close(self) -> None:
        await self._announcer.close()
        accept, work = self._accept, self._work
        self._accept = self._work = None
        await self._listener.close()
        for runner in (accept, work):
            if runner is not None:
                try:
                    await asyncio.wait_for(runner.pool.close(), 5.0)
                except DRIVER_ERRORS:  # includes TimeoutError
                    runner.pool.terminate()
        self._wakeup.wake()

    def _runners(self) -> tuple[Runner, Runner]:
        assert self._accept is not None and self._work is not None, "opened: see BackendBase"
        return self._accept, self._work

    async def _run(self, name: str, *args: Any, accept: bool = False) -> list[asyncpg.Record]:
        runner = self._runners()[0 if accept else 1]
        params = (self._now(), *args) if name in self.q.takes_now else args
        rows, _ = await runner.fetch(self.q[name], params)
        return rows

    def _work_available(self, queues: set[str]) -> None:
        """Wake claimers: in this process at once, on other machines by NOTIFY."""
        if queues:
            self._wakeup.wake()
            self._announcer.announce(queues)

    async def _send_notify(self, payload: str) -> None:
        await self._run("notify", self.q.channel, payload)

    # ---- enqueue --------------------------------------------------------------------------

    async def _enqueue(self, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None) -> list[EnqueueOutcome]:
        accept, _ = self._runners()
        # A lone enqueue notifies in its own transaction (delivered at commit: no extra round trip
        # before a worker hears of it). Concurrent ones leave it to the announcer, since commits
        # that notify are serialised by the server and would lose group commit.
        alone = self._enqueuing == 0
        self._enqueuing += 1
        try:
            outcomes = await self._enqueue_on(accept, jobs, capacity, self.q.channel if alone else None)
        finally:
            self._enqueuing -= 1
        # Delayed jobs too: a waiting worker shortens its wait to their due time.
        queues = {o.job.queue for o in outcomes if type(o) is Accepted}
        if not alone:
            self._work_available(queues)
        elif queues:
            self._wakeup.wake()  # waiters in this process; other processes heard the NOTIFY
        return outcomes

    async def enqueue_in(
        self, connection: asyncpg.Connection, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None = None
    ) -> list[EnqueueOutcome]:
        """Enqueue inside the caller's open transaction on ``connection`` (an asyncpg connection).

        The jobs become visible, and workers are notified, only when that transaction commits; if
        it rolls back they never existed. Outcomes are as for :meth:`enqueue`, but "accepted" means
        "accepted if you commit". Capped queues stay locked for other producers until then, and the
        parents of jobs with ``depends_on`` for their workers' completions.
        """
        if not jobs:
            return []
        return await self._enqueue_on(connection, jobs, capacity, self.q.channel)

    async def _enqueue_on(
        self,
        target: Runner | asyncpg.Connection,
        jobs: Sequence[NewJob],
        capacity: Mapping[str, int] | None,
        channel: str | None,
    ) -> list[EnqueueOutcome]:
        async def execute(statement: str, args: tuple[Any, ...]) -> tuple[list[asyncpg.Record], bool]:
            if isinstance(target, Runner):
                return await target.fetch(self.q[statement], args)
            return await fetch_on(target, self.q[statement], args), False

        return await enqueue_rounds(jobs, capacity, execute, self._now, channel)

    # ---- worker operations ----------------------------------------------------------------

    async def _claim(self, params: ClaimParams) -> list[Job]:
        queues = list(dict.fromkeys(params.queues))
        rows = await self._run("claim", queues, params.limit, params.worker_id, float(params.lease))
        return [job_of(row) for row in rows]

    async def _complete(self, completions: Sequence[Completion], results: list[bytes]) -> list[bool]:
        ids = [c.lease.job_id for c in completions]
        args = lock_order(ids, [c.lease.token for c in completions], [r.decode() for r in results])
        done = await self._finish_parents("complete_parents", await self._run("complete", *args), args)
        return [c.lease.job_id in done for c in completions]

    async def _fail(self, failures: Sequence[Failure]) -> list[bool]:
        args = fail_columns(failures)
        rows = await self._run("fail", *args)
        done = await self._finish_parents("fail_parents", rows, args)
        # Every retry, due now or later: a waiting worker shortens its wait to its due time.
        retried = {f.lease.job_id for f in failures if f.retry_delay is not None}
        self._work_available({row[1] for row in rows if row[0] in retried})
        return [f.lease.job_id in done for f in failures]

    async def _heartbeat(self, leases: Sequence[Lease], lease: float) -> list[bool]:
        rows = await self._run("heartbeat", [r.job_id for r in leases], [r.token for r in leases], float(lease))
        held = {row[0] for row in rows}
        return [r.job_id in held for r in leases]

    async def _release(self, leases: Sequence[Lease]) -> list[bool]:
        rows = await self._run("release", [r.job_id for r in leases], [r.token for r in leases])
        self._work_available({row[1] for row in rows})
        released = {row[0] for row in rows}
        return [r.job_id in released for r in leases]

    async def _expired_leases(self, limit: int) -> list[Job]:
        return [job_of(row) for row in await self._run("expired_leases", limit)]

    # ---- reading and administration -------------------------------------------------------

    async def _get(self, job_id: str) -> Job | None:
        rows = await self._run("get_job", job_id)
        return job_of(rows[0]) if rows else None

    async def _replay_dead(self, job_id: str, capacity: int | None) -> Job:
        rows = await self._run("replay", job_id, capacity, accept=True)
        if not rows:
            raise JobNotFound(job_id)
        outcome = rows[0][0]
        if outcome == "done":
            job = job_of(rows[0], 1)
            self._work_available({job.queue})
            return job
        if outcome == "full":
            current = await self._get(job_id)
            raise QueueFull(current.queue if current else "?", capacity or 0)
        raise InvalidTransition(job_id, outcome, "replay")

    async def _cancel(self, job_id: str) -> Job:
        rows = await self._run("cancel", job_id, accept=True)
        if not rows:
            raise JobNotFound(job_id)
        if rows[0][0] == "done":
            self._work_available(set(rows[0][-1] or ()))  # the queues of children it released
            return job_of(rows[0], 1)
        raise InvalidTransition(job_id, rows[0][0], "cancel")

    async def _stats(self) -> Stats:
        builder = StatsBuilder()
        keys = 0
        for queue, state, n in await self._run("stats"):
            if queue is None:
                keys = n
            else:
                builder.add(queue, state, n)
        return builder.build(keys)

    async def _wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        """Woken by NOTIFY from any producer (and at once by this process's own enqueues); while
        the listening connection is down, only by those and by the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await self._listener.ensure():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            retry_in = self._listener.retry_in()
            step = remaining if retry_in is None else min(remaining, retry_in + 0.001)
            if await self._wakeup.wait(step):
                return True

    async def _check_writes(self) -> None:
        await self._run("check_writes", accept=True)

    async def _register_tasks(self, tasks: Sequence[RegisteredTask]) -> None:
        await self._run("register_tasks", [t.name for t in tasks], [t.to_json() for t in tasks])

    async def _registered_tasks(self) -> list[RegisteredTask]:
        return [RegisteredTask.from_json(name, defaults) for name, defaults in await self._run("registered_tasks")]

    async def _prune(self, params: PruneParams) -> PruneResult:
        jobs = keys = 0
        while True:
            ((deleted, expired),) = await self._run(
                "prune", params.completed_before, params.dead_before, params.cancelled_before, PRUNE_BATCH
            )
            jobs += deleted
            keys += expired
            if deleted < PRUNE_BATCH:
                return PruneResult(jobs=jobs, keys=keys)
