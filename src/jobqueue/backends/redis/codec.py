"""Job hashes read back as jobs, and Redis error replies in jobqueue's terms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobqueue.backends.redis.wire import RedisReplyError
from jobqueue.errors import BackendError, BackendUnavailable
from jobqueue.job import Job, JobState, load_json

#: Order of the job hash fields the scripts return (``JOB_FIELDS`` in ``lua/common.lua``).
JOB_FIELDS = (
    "spec", "queue", "task", "state", "retry_count", "created_at", "run_at", "started_at",
    "finished_at", "last_attempt", "next_retry_at", "error", "result", "lease_expires_at",
    "worker_id", "lease_token",
)  # fmt: skip
#: Redis errors that mean "not now" rather than "wrong": answered as BackendUnavailable (503).
TRANSIENT_ERRORS = frozenset({"OOM", "LOADING", "BUSY", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN"})
_STATES = {s.value.encode(): s for s in JobState}


def job_of(v: Sequence[Any]) -> Job:
    """A job from the fields of ``JOB_FIELDS`` order, as bytes (None where absent; an absent
    retry_count or lease_token is 0: enqueue does not write them). The lease fields of a job that
    is not PROCESSING are left over from its last attempt and read as None. Inlined: it runs per job."""
    (spec, queue, task, state, retries, created, run_at, started, finished, last, next_retry, error, result,
     expires, worker, token) = v  # fmt: skip
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
        0 if token is None else int(token),
    )  # fmt: skip


def translate(exc: RedisReplyError) -> BackendError:
    """A Redis error reply as jobqueue's: transient conditions are BackendUnavailable (retry later)."""
    if exc.code in TRANSIENT_ERRORS:
        return BackendUnavailable(f"Redis cannot take this now: {exc}")
    return BackendError(f"Redis error: {exc}")
