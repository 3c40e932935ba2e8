"""New jobs and schedules as script arguments, what the scripts answer read back as jobs,
outcomes and schedules, and Redis error replies in jobqueue's terms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from jobqueue.backends.redis.wire import Arg, RedisReplyError
from jobqueue.errors import BackendError, BackendUnavailable
from jobqueue.job import DEFAULT_KEY_TTL, Job, JobState, NewJob, load_json
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, Rejected, StoredSchedule

#: Order of the job hash fields the scripts return (``JOB_FIELDS`` in ``lua/common.lua``).
JOB_FIELDS = (
    "spec", "queue", "task", "state", "retry_count", "created_at", "run_at", "started_at",
    "finished_at", "last_attempt", "next_retry_at", "error", "result", "lease_expires_at",
    "worker_id", "lease_token", "parents", "rate_key",
)  # fmt: skip
#: Redis errors that mean "not now" rather than "wrong": answered as BackendUnavailable (503).
TRANSIENT_ERRORS = frozenset({"OOM", "LOADING", "BUSY", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN"})
_STATES = {s.value.encode(): s for s in JobState}
#: The delays and key TTLs most jobs have, formatted once.
_SECONDS = {value: repr(value) for value in (0.0, DEFAULT_KEY_TTL)}


def add_jobs(args: list[Arg], jobs: Sequence[NewJob], capacity: Mapping[str, int] | None) -> list[tuple[int, NewJob]]:
    """Append the 11 arguments per job that ``lua/store_jobs.lua`` reads (enqueue and fire).

    Returns the jobs with parents, each with the script's (1-based) index of its first argument:
    the caller sends them to ``enqueue_linked`` (:mod:`~jobqueue.backends.redis.dependencies`).
    """
    # This loop runs once per job: attribute reads and calls are kept few.
    limits = capacity or {}
    seconds = _SECONDS
    linked: list[tuple[int, NewJob]] = []
    for new in jobs:
        if new.depends_on:
            linked.append((len(args) + 1, new))
        # The job's "spec" field (lua/common.lua): [id, priority, max_retries, idempotency_key,
        # timeout, payload], the payload's JSON spliced in rather than parsed and dumped again.
        head = orjson.dumps([new.id, new.priority, new.max_retries, new.idempotency_key, new.timeout])
        ttl, delay, limit = new.key_ttl, new.delay, limits.get(new.queue)
        args += (
            new.id, new.queue, new.task, head[:-1] + b"," + new.payload_json + b"]", new.priority,
            new.idempotency_key or "", seconds.get(ttl) or repr(ttl),
            "" if new.run_at is None else repr(new.run_at), seconds.get(delay) or repr(delay),
            "" if limit is None else limit, new.rate_key or "",
        )  # fmt: skip
    return linked


def outcomes_of(
    jobs: Sequence[NewJob], reply: Sequence[Any], capacity: Mapping[str, int] | None
) -> tuple[list[EnqueueOutcome], bool]:
    """The outcome of each job from ``store_jobs``'s reply, and whether any was accepted."""
    now = float(reply[0])
    outcomes: list[EnqueueOutcome] = []
    accepted = False
    pending, scheduled, loads = JobState.PENDING, JobState.SCHEDULED, orjson.loads
    for new, result in zip(jobs, reply[1:], strict=True):
        if result == 1:
            due = now + new.delay if new.run_at is None else new.run_at
            job = Job(
                new.id, new.queue, new.task, loads(new.payload_json), new.priority,
                scheduled if due > now else pending, 0, new.max_retries, new.idempotency_key, now, due,
                None, None, None, None, None, None, new.timeout, rate_key=new.rate_key,
            )  # fmt: skip
            outcomes.append(Accepted(job))
            accepted = True
        elif result == 0:
            assert capacity is not None
            outcomes.append(Rejected(new.queue, capacity[new.queue]))
        else:
            outcomes.append(Duplicate(job_of(result)))
    return outcomes, accepted


def schedule_args(schedules: Sequence[StoredSchedule]) -> list[Arg]:
    """The 5 arguments per schedule of ``lua/schedules.lua``'s "put"."""
    args: list[Arg] = []
    for s in schedules:
        last_tick = "" if s.last_tick is None else repr(float(s.last_tick))
        args += (s.name, s.spec, "1" if s.paused else "0", last_tick, s.last_job_id or "")
    return args


def schedule_of(name: str, fields: Sequence[bytes | None]) -> StoredSchedule:
    """A schedule from its hash's spec, paused, last_tick and last_job_id (``lua/schedules.lua``).
    ``last_tick`` is stored as the text of a float's repr, so it reads back as that float."""
    spec, paused, last_tick, last_job_id = fields
    assert spec is not None
    return StoredSchedule(
        name,
        spec.decode(),
        paused == b"1",
        None if last_tick is None else float(last_tick),
        None if last_job_id is None else last_job_id.decode(),
    )


def job_of(v: Sequence[Any]) -> Job:
    """A job from the fields of ``JOB_FIELDS`` order, as bytes (None where absent; an absent
    retry_count or lease_token is 0: enqueue does not write them; a job without parents has no
    parents field). The lease fields of a job that is not PROCESSING are left over from its last
    attempt and read as None. Inlined: it runs per job."""
    (spec, queue, task, state, retries, created, run_at, started, finished, last, next_retry, error, result,
     expires, worker, token, parents, rate_key) = v  # fmt: skip
    id_, priority, max_retries, key, timeout, payload = load_json(spec)
    if state != b"PROCESSING":
        expires = worker = None
    return Job(
        id_, queue.decode(), task.decode(), payload, priority, _STATES[state],
        0 if retries is None else int(retries), max_retries, key, float(created), float(run_at),
        None if started is None else float(started), None if finished is None else float(finished),
        None if last is None else float(last), None if next_retry is None else float(next_retry),
        None if error is None else error.decode(), None if result is None else load_json(result), timeout,
        None if expires is None else float(expires), None if worker is None else worker.decode(),
        0 if token is None else int(token), () if parents is None else tuple(load_json(parents)),
        rate_key=None if rate_key is None else rate_key.decode(),
    )  # fmt: skip


def translate(exc: RedisReplyError) -> BackendError:
    """A Redis error reply as jobqueue's: transient conditions are BackendUnavailable (retry later)."""
    if exc.code in TRANSIENT_ERRORS:
        return BackendUnavailable(f"Redis cannot take this now: {exc}")
    return BackendError(f"Redis error: {exc}")
