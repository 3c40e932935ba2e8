"""Request parsing and the shapes the OpenAPI document shows.

Submissions are parsed by hand from the JSON body (orjson), not by FastAPI's body models: the
error must be a 400 ``{"error": "<field>: <message>"}`` as the original answers, and the job's
own validation (:class:`~jobqueue.job.NewJob`) already names the field. The pydantic models
below only describe the bodies in ``/docs``; they are not used to validate.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from jobqueue.app import PLAIN_OPTIONS, JobQueue
from jobqueue.errors import ValidationError
from jobqueue.job import (
    DEFAULT_TASK,
    MAX_KEY_LENGTH,
    MAX_PARENTS,
    MAX_PRIORITY,
    MAX_RETRIES_LIMIT,
    MAX_TIMEOUT,
    MIN_PRIORITY,
    NewJob,
)

#: Fields a submission may carry besides ``payload`` and ``task``, passed on to ``JobQueue.new_job``.
OPTIONS = frozenset(
    {"queue", "priority", "max_retries", "idempotency_key", "delay", "run_at", "timeout", "depends_on",
     "on_parent_failure", "rate_key"}
)  # fmt: skip
FIELDS = frozenset({"payload", "task", *OPTIONS})
#: The last second of year 9999: a later time cannot be shown as a date, so a job due after it could
#: never be read back (``GET /jobs/{id}`` renders times in ISO 8601).
MAX_TIME = 253_402_300_799.0


def load_body(body: bytes) -> Any:
    """The request's JSON value; ``ValidationError("body", ...)`` when it is not JSON."""
    if not body:
        raise ValidationError("body", "a JSON object is required")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"invalid JSON ({exc})") from None


def parse_submission(queue: JobQueue, data: Any, prefix: str = "", defaults: TaskDefaults | None = None) -> NewJob:
    """Validate one submission and build its job; errors name the field (``prefix`` + name).

    A field given as ``null`` counts as absent (except ``payload``, which must not be null), and
    an empty ``idempotency_key`` means no key: the original treats ``""`` as "no key", and a client
    written for it may send one. ``defaults`` caches each task's defaults across a batch.
    """
    try:
        if not isinstance(data, dict):
            raise ValidationError("body", "must be a JSON object")
        if not FIELDS.issuperset(data):
            unknown = min(data.keys() - FIELDS)
            raise ValidationError(unknown, f"unknown field (allowed: {', '.join(sorted(FIELDS))})")
        if "payload" not in data:
            raise ValidationError("payload", "is required")
        task = data.get("task")
        if task is None:
            task = DEFAULT_TASK
        elif not isinstance(task, str):
            raise ValidationError("task", "must be a string")
        overrides = {name: value for name, value in data.items() if value is not None and name in OPTIONS}
        if overrides.get("idempotency_key") == "":
            del overrides["idempotency_key"]
        if "run_at" in overrides or "delay" in overrides:
            _check_time(overrides)
        cached = None if defaults is None else defaults.of(queue, task)
        if cached is None:
            return queue.new_job(task, data["payload"], **overrides)
        fields = cached.copy()
        fields.update(overrides)
        return NewJob(data["payload"], task=task, **fields)
    except ValidationError as exc:
        if prefix:
            raise ValidationError(f"{prefix}{exc.field}", exc.message) from None
        raise


def _check_time(overrides: dict[str, Any]) -> None:
    run_at, delay = overrides.get("run_at"), overrides.get("delay")
    if isinstance(run_at, int | float) and not isinstance(run_at, bool) and run_at > MAX_TIME:
        raise ValidationError("run_at", f"must be at most {MAX_TIME:.0f} (the end of year 9999)")
    if isinstance(delay, int | float) and not isinstance(delay, bool) and delay > MAX_TIME - time.time():
        raise ValidationError("delay", "must end before the end of year 9999")


class TaskDefaults:
    """Each task's job defaults, resolved by ``JobQueue.new_job`` itself and kept.

    Building a job through ``new_job`` costs half again as much as the job's own validation. The
    defaults of a task are worked out once and reused as long as the same options are in force
    for that name (the app's task, or the store's registration) and the queue's ``key_ttl`` is
    unchanged. Names nobody registered share one entry (they all get the plain defaults), so clients sending
    made-up task names cannot grow this cache.
    """

    def __init__(self) -> None:
        self._by_task: dict[str | None, tuple[object, float, dict[str, Any]]] = {}

    def of(self, queue: JobQueue, task: str) -> dict[str, Any] | None:
        """The task's defaults, or ``None`` when they depend on the payload (a ``rate_key``)."""
        options = queue.task_options(task)
        if options.rate_key is not None:
            return None
        key = task if options is not PLAIN_OPTIONS else None
        cached = self._by_task.get(key)
        if cached is not None and cached[0] is options and cached[1] == queue.key_ttl:
            return cached[2]
        template = queue.new_job(task, 0)
        fields = {name: getattr(template, name) for name in ("queue", "priority", "max_retries", "timeout", "key_ttl")}
        self._by_task[key] = (options, queue.key_ttl, fields)
        return fields


def parse_batch(queue: JobQueue, data: Any, max_batch: int, defaults: TaskDefaults | None = None) -> list[NewJob]:
    """``{"jobs": [submission, ...]}`` -> jobs; the first invalid one fails the whole batch."""
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ValidationError("jobs", "is required: a list of job submissions")
    extra = data.keys() - {"jobs"}
    if extra:
        raise ValidationError(min(extra), "unknown field (allowed: jobs)")
    items = data["jobs"]
    if not 1 <= len(items) <= max_batch:
        raise ValidationError("jobs", f"must hold 1 to {max_batch} jobs, got {len(items)}")
    defaults = defaults or TaskDefaults()
    jobs: list[NewJob] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("depends_on"), list):
            item = {**item, "depends_on": _batch_parents(item["depends_on"], jobs, f"jobs[{i}].depends_on")}
        jobs.append(parse_submission(queue, item, f"jobs[{i}].", defaults))
    return jobs


def _batch_parents(parents: list[Any], earlier: list[NewJob], field_name: str) -> list[Any]:
    """A batch member's parents: job ids, or integers naming earlier members of the batch."""
    named: list[Any] = []
    for parent in parents:
        if isinstance(parent, int) and not isinstance(parent, bool):
            if not 0 <= parent < len(earlier):
                raise ValidationError(
                    field_name, f"{parent} names no earlier job of this batch (0 to {len(earlier) - 1})"
                )
            parent = earlier[parent].id
        named.append(parent)
    return named


# ---- shapes shown in /docs -------------------------------------------------------------------


class JobSubmission(BaseModel):
    """A job to enqueue. The original's fields first, then jobqueue's own."""

    model_config = ConfigDict(extra="forbid")

    payload: Any = Field(
        description="Any JSON value except null; not an empty string; at most 1 MiB serialized.",
        json_schema_extra={"example": "process-order-42"},
    )
    idempotency_key: str | None = Field(
        None, max_length=MAX_KEY_LENGTH, description="At most one live job per key (24 h); empty means none."
    )
    priority: int | None = Field(0, ge=MIN_PRIORITY, le=MAX_PRIORITY, description="Higher runs first.")
    max_retries: int | None = Field(
        3, ge=0, le=MAX_RETRIES_LIMIT, description="Retries after the first attempt (0: no retry)."
    )
    task: str | None = Field("default", description="The registered task (handler) to run.")
    queue: str | None = Field("default", description="The queue to wait in.")
    delay: float | None = Field(None, ge=0, description="Seconds from now before the job may run.")
    run_at: float | None = Field(
        None, ge=0, le=MAX_TIME, description="POSIX time before which it does not run (not with delay)."
    )
    timeout: float | None = Field(None, gt=0, le=MAX_TIMEOUT, description="Seconds an attempt may run.")
    depends_on: list[str | int] | None = Field(
        None,
        max_length=MAX_PARENTS,
        description="Ids of jobs that must complete first (the job waits BLOCKED); in a batch, an integer "
        "names an earlier job of the same batch by its position.",
    )
    on_parent_failure: str | None = Field(
        "fail", description='"fail": dead-letter the job when a parent is; "run": run it all the same.'
    )
    rate_key: str | None = Field(
        None, max_length=MAX_KEY_LENGTH, description="The key of the queue's per-key limits (a tenant, an API host)."
    )


class BatchSubmission(BaseModel):
    """Jobs to enqueue in one request."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[JobSubmission] = Field(description="The jobs, each enqueued on its own (one outcome each).")


class ErrorBody(BaseModel):
    """Every error's shape."""

    error: str = Field(description="What went wrong; starts with the field's name when one is to blame.")


class AcceptedBody(BaseModel):
    """A job stored (202)."""

    job_id: str
    status: str = Field(description='Always "accepted".')


class DuplicateBody(BaseModel):
    """The job already holding the idempotency key (409)."""

    error: str
    job_id: str = Field(description="The job that holds the idempotency key.")
    state: str
    result: Any = None


class JobBody(BaseModel):
    """A job. Times are ISO 8601 UTC; states are upper-case names."""

    model_config = ConfigDict(extra="allow")

    id: str
    queue: str
    task: str
    payload: Any
    priority: int
    state: str
    retry_count: int
    max_retries: int
    parents: list[str] = Field(description="The jobs it waits for (depends_on), in order.")
    children: list[str] | None = Field(
        None, description="GET /jobs/{id} only: the first 1,000 jobs waiting for it, oldest first."
    )


class OutcomeBody(BaseModel):
    """What became of one job of a batch."""

    status: str = Field(
        description='"accepted", "duplicate" (job_id names the holder), "rejected" (queue full) or "invalid" '
        "(a parent does not exist)."
    )
    job_id: str | None = None
    state: str | None = None
    error: str | None = None


class BatchBody(BaseModel):
    """A batch's outcomes, in order."""

    accepted: int
    duplicates: int
    rejected: int
    invalid: int
    results: list[OutcomeBody]


class PageBody(BaseModel):
    """One page of jobs, oldest first."""

    jobs: list[JobBody]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last one.")


class DlqBody(BaseModel):
    """The dead-letter queue."""

    count: int = Field(description="Dead-lettered jobs in all.")
    jobs: list[JobBody]
    next_cursor: str | None = None


class RequeuedBody(BaseModel):
    """A dead-lettered job put back in its queue (202)."""

    status: str = Field(description='Always "requeued".')
    job_id: str


def submission_schema() -> dict[str, Any]:
    """The request-body section of the OpenAPI document for ``POST /jobs``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobSubmission"}}},
        }
    }


def batch_schema() -> dict[str, Any]:
    """The request-body section of the OpenAPI document for ``POST /jobs/batch``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchSubmission"}}},
        }
    }
