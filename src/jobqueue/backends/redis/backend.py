"""``redis://host:port/db`` (and ``rediss://`` for TLS): the fast shared backend.

One hash per job, a sorted set per queue of due waiting jobs (by priority, then arrival), one per
queue of jobs due later, one of leases by expiry; every change that touches several keys is one
Lua script (``lua/``), so each operation is atomic and one round trip. The key layout is in
``lua/common.lua``; jobs with parents (``depends_on``) are linked and released by the same
scripts (``lua/dependencies.lua``, :mod:`~jobqueue.backends.redis.dependencies`); queue limits are
checked and spent by the claim script itself (``lua/limiter.lua``, :mod:`~jobqueue.backends.redis.queues`).

- Time: leases and due times use the Redis server's clock (``TIME`` inside the scripts), so worker
  clocks may be skewed. A test that injects a :class:`~jobqueue.clock.Clock` passes its time instead.
- Keys live under ``{prefix}:``. The braces make the prefix a Redis Cluster hash tag: every key of
  one namespace is in one slot, which the scripts need (idempotency keys are global, jobs are
  addressed by id alone, and a claim may span queues). Separate applications use separate prefixes.
- Safety: :meth:`RedisBackend.open` refuses a server whose ``maxmemory-policy`` evicts keys
  without a TTL (``allkeys-*``): jobs would vanish silently. Durability of an accepted job is the
  server's: see ``docs/redis.md`` (AOF with ``appendfsync always`` or ``everysec``).
- Retention: the scripts that finish jobs also delete, a few at a time, jobs finished longer ago
  than :class:`Retention` says, and enqueues forget idempotency keys expired more than
  ``key_grace`` ago, so memory stays flat under steady load with no extra service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from jobqueue.backends.base import Capabilities
from jobqueue.backends.core import BackendBase
from jobqueue.backends.params import ClaimParams, Completion, Failure, Lease, ListParams, PruneParams, Tick
from jobqueue.backends.redis.admin import JobAdministration
from jobqueue.backends.redis.codec import (
    JOB_FIELDS,
    add_jobs,
    job_of,
    outcomes_of,
    schedule_args,
    schedule_of,
    translate,
)
from jobqueue.backends.redis.dependencies import add_links, heavy_parts, linked_outcomes
from jobqueue.backends.redis.insight import KEEP_ERRORS, RedisInsight, traceback_arg
from jobqueue.backends.redis.queues import QueueSettings
from jobqueue.backends.redis.scripts import Scripts
from jobqueue.backends.redis.wake import WakeListener
from jobqueue.backends.redis.wire import Address, Arg, RedisReplyError, Wire
from jobqueue.backends.wakeup import Wakeup
from jobqueue.clock import Clock
from jobqueue.errors import (
    BackendError,
    ConfigurationError,
    InvalidTransition,
    JobNotFound,
    QueueFull,
)
from jobqueue.job import Job, NewJob, RegisteredTask
from jobqueue.outcomes import EnqueueOutcome, Page, PruneResult, Stats, StatsBuilder, StoredSchedule
from jobqueue.retention import Retention

log = logging.getLogger("jobqueue.redis")

DEFAULT_PREFIX = "jobqueue"
#: ``maxmemory-policy`` values that may evict keys without a TTL, which all of ours are.
EVICTING_POLICIES = frozenset({"allkeys-lru", "allkeys-lfu", "allkeys-random"})
#: Most jobs (and keys) one prune script deletes before handing back to the event loop and Redis.
PRUNE_CHUNK = 1000
#: Most jobs one enqueue script stores: a larger batch is sent as several scripts.
ENQUEUE_CHUNK = 1000
#: Most jobs one get_many script reads; more are read by several, pipelined.
READ_CHUNK = 1000


def _seconds(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class RedisBackend(QueueSettings, JobAdministration, RedisInsight, BackendBase):
    """The Redis backend. ``url`` as for :func:`~jobqueue.backends.create_backend`.

    ``prefix`` namespaces the keys (``{prefix}:...``); ``retention`` says how long finished jobs
    stay (its ``interval`` is unused: the scripts prune as they finish jobs); ``key_grace`` is
    how long an expired idempotency key is kept before an enqueue forgets it (``prune`` forgets
    it at once); ``command_timeout`` bounds the wait for any one reply; ``clock`` replaces the
    server's clock (tests only).
    """

    name = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        clock: Clock | None = None,
        prefix: str = DEFAULT_PREFIX,
        retention: Retention | None = None,
        key_grace: float = 3600.0,
        connect_timeout: float = 5.0,
        command_timeout: float = 10.0,
    ) -> None:
        if not prefix or any(c in prefix for c in "{}"):
            raise ConfigurationError("the Redis key prefix must be non-empty and contain no braces")
        self.url = url
        self.address = Address.from_url(url)
        self.clock = clock
        self.prefix = prefix
        self.namespace = "{" + prefix + "}:"
        self.retention = retention or Retention()
        self.key_grace = key_grace
        self.capabilities = Capabilities(
            shared=True, durable=True, cross_process_wakeup=True, server_clock=clock is None
        )
        self._wire = Wire(self.address, connect_timeout=connect_timeout, command_timeout=command_timeout)
        self._scripts = Scripts(self._wire, self.namespace)
        self._wakeup = Wakeup()
        self._listener = WakeListener(self.address, self.namespace, self._wakeup, connect_timeout=connect_timeout)
        self._retain = (
            _seconds(self.retention.completed),
            _seconds(self.retention.dead_lettered),
            _seconds(self.retention.cancelled),
        )
        self._key_grace = _seconds(key_grace)

    # ---- lifecycle ------------------------------------------------------------------------

    async def _open(self) -> None:
        """Connect, check the server's eviction policy, and load the scripts."""
        try:
            memory = await self._wire.call("INFO", "memory")
            persistence = await self._wire.call("INFO", "persistence")
        except RedisReplyError as exc:  # INFO denied (ACLs of a managed service): say so, go on
            log.warning("redis.unchecked server=%s: cannot read INFO (%s); make sure maxmemory-policy is "
                        "noeviction", self.address, exc)  # fmt: skip
            memory = persistence = b""
        policy = _info_field(memory, "maxmemory_policy")
        if policy in EVICTING_POLICIES:
            self._wire.close()
            raise ConfigurationError(
                f"Redis at {self.address} has maxmemory-policy {policy}: it would silently evict jobs "
                "when memory runs out. Set `maxmemory-policy noeviction` (then a full Redis refuses "
                "new jobs instead of losing accepted ones)."
            )
        if persistence and _info_field(persistence, "aof_enabled") != "1":
            log.info("redis.not_durable server=%s: AOF is off; accepted jobs do not survive a Redis restart "
                     "(see docs/redis.md)", self.address)  # fmt: skip
        try:
            await self._scripts.load()
        except RedisReplyError as exc:
            raise translate(exc) from exc

    async def _close(self) -> None:
        await self._listener.close()
        self._wire.close()
        self._wakeup.wake()

    async def drop(self) -> int:
        """Delete every key of this backend's namespace (all its jobs); returns how many. For tests
        and teardown: it is not atomic, so run it while nothing else uses the namespace."""
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.namespace) + "*"
        deleted, cursor = 0, b"0"
        while True:
            cursor, keys = await self._call("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            if keys:
                deleted += await self._call("UNLINK", *keys)
            if cursor == b"0":
                return deleted

    # ---- plumbing -------------------------------------------------------------------------

    def _now(self) -> str:
        """The ``now`` argument of a script: '' makes the script read the server's clock."""
        return "" if self.clock is None else repr(self.clock.time())

    async def _call(self, *args: Arg) -> Any:
        try:
            return await self._wire.call(*args)
        except RedisReplyError as exc:
            raise translate(exc) from exc

    async def _run(self, script: str, *args: Arg) -> Any:
        try:
            return await self._scripts.run(script, *args)
        except RedisReplyError as exc:
            raise translate(exc) from exc

    # ---- enqueue --------------------------------------------------------------------------

    async def _enqueue(self, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None) -> list[EnqueueOutcome]:
        if len(jobs) <= ENQUEUE_CHUNK:
            outcomes, accepted = await self._enqueue_part(jobs, capacity)
        else:
            # A large batch goes as several scripts, one after the other, so that none holds
            # Redis for long; each job is still atomic, and later jobs still see earlier ones.
            outcomes, accepted = [], False
            for start in range(0, len(jobs), ENQUEUE_CHUNK):
                part, some = await self._enqueue_part(jobs[start : start + ENQUEUE_CHUNK], capacity)
                outcomes += part
                accepted = accepted or some
        if accepted:
            self._wakeup.wake()  # waiters in this process; other processes hear the PUBLISH
        return outcomes

    async def _enqueue_part(
        self, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None
    ) -> tuple[list[EnqueueOutcome], bool]:
        args: list[Arg] = [self._now(), self._key_grace]
        linked = add_jobs(args, jobs, capacity)
        if not linked:
            return outcomes_of(jobs, await self._run("enqueue", *args), capacity)
        parts = heavy_parts(jobs)
        if parts is not None:  # many parents in all: one script per part, in order
            outcomes: list[EnqueueOutcome] = []
            accepted = False
            for part in parts:
                some, any_accepted = await self._enqueue_part(part, capacity)
                outcomes += some
                accepted = accepted or any_accepted
            return outcomes, accepted
        add_links(args, linked)
        return linked_outcomes(jobs, await self._run("enqueue_linked", *args), capacity)

    # ---- worker operations ----------------------------------------------------------------

    async def _claim(self, params: ClaimParams) -> list[Job]:
        queues = list(dict.fromkeys(params.queues))
        rows = await self._run("claim", self._now(), repr(float(params.lease)), params.worker_id,
                               str(params.limit), *queues)  # fmt: skip
        return [job_of(row) for row in rows]

    async def _complete(self, completions: Sequence[Completion], results: list[bytes]) -> list[bool]:
        args: list[Arg] = [self._now(), *self._retain]
        for c, result in zip(completions, results, strict=True):
            args += (c.lease.job_id, str(c.lease.token), result)
        flags = await self._run("complete", *args)
        if len(flags) > len(completions):  # children released or a slot freed: waiters here, as after an enqueue
            del flags[-1]
            self._wakeup.wake()
        return [flag == 1 for flag in flags]

    async def _fail(self, failures: Sequence[Failure]) -> list[bool]:
        args: list[Arg] = [self._now(), *self._retain, KEEP_ERRORS]
        for f in failures:
            args += (f.lease.job_id, str(f.lease.token), f.error, _seconds(f.retry_delay), "1" if f.if_expired else "0",
                     traceback_arg(f.traceback))  # fmt: skip
        done = [flag == 1 for flag in await self._run("fail", *args)]
        self._wakeup.wake()
        return done

    async def _heartbeat(self, leases: Sequence[Lease], lease: float) -> list[bool]:
        args: list[Arg] = [self._now(), repr(float(lease))]
        for ref in leases:
            args += (ref.job_id, str(ref.token))
        return [flag == 1 for flag in await self._run("heartbeat", *args)]

    async def _release(self, leases: Sequence[Lease]) -> list[bool]:
        args: list[Arg] = [self._now()]
        for ref in leases:
            args += (ref.job_id, str(ref.token))
        released = [flag == 1 for flag in await self._run("release", *args)]
        if any(released):
            self._wakeup.wake()
        return released

    async def _expired_leases(self, limit: int) -> list[Job]:
        rows = await self._run("expired", self._now(), str(limit))
        return [job_of(row) for row in rows]

    # ---- reading and administration -------------------------------------------------------

    async def _get(self, job_id: str) -> Job | None:
        row = await self._call("HMGET", f"{self.namespace}job:{job_id}", *JOB_FIELDS)
        return None if row[0] is None else job_of(row)

    async def _get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        if len(job_ids) <= READ_CHUNK:
            rows = await self._run("get_many", *job_ids)
        else:
            chunks = [job_ids[i : i + READ_CHUNK] for i in range(0, len(job_ids), READ_CHUNK)]
            rows = [row for part in await asyncio.gather(*(self._run("get_many", *c) for c in chunks)) for row in part]
        return [None if row[0] is None else job_of(row) for row in rows]

    async def _children(self, job_id: str, limit: int) -> list[str]:
        ids = await self._call("ZRANGEBYLEX", f"{self.namespace}children:{job_id}", "-", "+", "LIMIT", 0, limit)
        return [child.decode() for child in ids]

    async def _list_jobs(self, params: ListParams) -> Page:
        state = "" if params.state is None else params.state.value
        reply = await self._run(
            "list", params.cursor or "", str(params.limit), state, params.queue or "", params.task or ""
        )
        jobs = [job_of(row) for row in reply[1:]]
        return Page(jobs, jobs[-1].id if reply[0] == 1 and jobs else None)

    async def _replay_dead(self, job_id: str, capacity: int | None) -> Job:
        reply = await self._run("replay", self._now(), job_id, "" if capacity is None else str(capacity))
        if reply[0] == b"FULL":
            raise QueueFull(reply[1].decode(), capacity or 0)
        job = self._checked(reply, job_id, "replay")
        self._wakeup.wake()
        return job

    async def _cancel(self, job_id: str) -> Job:
        reply = await self._run("cancel", self._now(), job_id, self._retain[2], self._retain[1])
        job = self._checked(reply, job_id, "cancel")
        if len(reply) > 2:  # children released (they ran anyway), or a concurrency slot freed
            self._wakeup.wake()
        return job

    @staticmethod
    def _checked(reply: list[Any], job_id: str, operation: str) -> Job:
        """The job of an ``{'OK', fields}`` reply, or the error the reply names."""
        status = reply[0]
        if status == b"NOTFOUND":
            raise JobNotFound(job_id)
        if status == b"STATE":
            raise InvalidTransition(job_id, reply[1].decode(), operation)
        if status == b"OK":
            return job_of(reply[1])
        raise BackendError(f"unexpected reply from the {operation} script: {reply!r}")

    async def _stats(self) -> Stats:
        keys, flat = await self._run("stats")
        builder = StatsBuilder()
        for i in range(0, len(flat), 2):
            queue, _, state = flat[i].decode().rpartition("|")
            builder.add(queue, state, int(flat[i + 1]))
        return builder.build(int(keys))

    async def _wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        """Woken by the wake channel (pub/sub) within a millisecond of new work anywhere."""
        if await self._listener.listen(queues, timeout):
            return True  # just subscribed: work published before that would be missed
        return await self._wakeup.wait(timeout)

    async def _due_in(self, queues: Sequence[str]) -> float | None:
        due_in = float(await self._run("next_due", self._now(), *dict.fromkeys(queues)))
        return None if due_in < 0 else due_in

    async def _check_writes(self) -> None:
        await self._run("probe", self._now())

    async def _register_tasks(self, tasks: Sequence[RegisteredTask]) -> None:
        await self._run("tasks", "put", *(item for t in tasks for item in (t.name, t.to_json())))

    async def _registered_tasks(self) -> list[RegisteredTask]:
        flat = await self._run("tasks", "all")
        tasks = [RegisteredTask.from_json(flat[i].decode(), flat[i + 1]) for i in range(0, len(flat), 2)]
        return sorted(tasks, key=lambda task: task.name)

    # ---- periodic schedules (lua/schedules.lua, lua/fire.lua) -------------------------------

    async def _register_schedules(self, schedules: Sequence[StoredSchedule]) -> None:
        await self._run("schedules", "put", *schedule_args(schedules))

    async def _schedules(self) -> list[StoredSchedule]:
        flat = await self._run("schedules", "all")
        return [schedule_of(flat[i].decode(), flat[i + 1]) for i in range(0, len(flat), 2)]

    async def _pause_schedule(self, name: str, paused: bool) -> StoredSchedule | None:
        fields = await self._run("schedules", "pause", name, "1" if paused else "0")
        return None if fields is None else schedule_of(name, fields)

    async def _fire(self, tick: Tick, capacity: int | None) -> EnqueueOutcome | None:
        """One script checks the schedule, stores the job as :meth:`_enqueue` does and records
        the tick: however many schedulers fire it, on however many connections, one job comes."""
        jobs = (tick.job,)
        limits = None if capacity is None else {tick.job.queue: capacity}
        args: list[Arg] = [self._now(), self._key_grace, tick.schedule, repr(float(tick.at))]
        add_jobs(args, jobs, limits)
        reply = await self._run("fire", *args)
        if reply is None:
            return None
        (outcome,), accepted = outcomes_of(jobs, reply, limits)
        if accepted:
            self._wakeup.wake()  # as after an enqueue: waiters here; other processes hear the PUBLISH
        return outcome

    async def _prune(self, params: PruneParams) -> PruneResult:
        jobs = keys = 0
        cutoffs = (_seconds(params.completed_before), _seconds(params.dead_before), _seconds(params.cancelled_before))
        while True:
            deleted_jobs, deleted_keys, more = await self._run("prune", self._now(), *cutoffs, str(PRUNE_CHUNK))
            jobs += deleted_jobs
            keys += deleted_keys
            if not more:
                return PruneResult(jobs=jobs, keys=keys)


def _info_field(info: bytes, name: str) -> str | None:
    for line in info.decode(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return None
