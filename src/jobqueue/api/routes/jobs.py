"""``/jobs``: submit (one or a batch), read, list, cancel.

``POST /jobs`` is the hot path: the body is parsed with orjson and validated by the job model in
one pass, the job goes to the store in one call (which commits it together with other requests'
jobs: group commit), and the answer is written with orjson. No FastAPI body model is involved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from starlette.responses import Response

from jobqueue.api.responses import ApiError, error_response, job_view, json_response
from jobqueue.api.schemas import (
    AcceptedBody,
    BatchBody,
    DuplicateBody,
    ErrorBody,
    JobBody,
    PageBody,
    batch_schema,
    load_body,
    parse_batch,
    parse_submission,
    submission_schema,
)
from jobqueue.api.shedding import Admission
from jobqueue.api.state import ApiState, get_state
from jobqueue.errors import InvalidTransition, JobNotFound
from jobqueue.flows import missing_parent_message
from jobqueue.insight import created_between
from jobqueue.job import Job, JobState, NewJob
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, MissingParent, Rejected

#: The children ``GET /jobs/{id}`` lists (the first, oldest first); a fan-out can have many more.
MAX_CHILDREN_SHOWN = 1000
#: A job id in a path: UUIDs are 36 characters; anything much longer is no id of ours.
JobId = Annotated[str, Path(max_length=64, description="The job's id (a UUIDv7).")]

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid request; the error names the field."},
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token."},
    413: {"model": ErrorBody, "description": "Body larger than the limit."},
}


def _full_message(outcome: Rejected) -> str:
    return f"queue {outcome.queue!r} is full (capacity {outcome.capacity}); try again later"


def _duplicate_body(job: Job) -> dict[str, Any]:
    return {"error": "duplicate idempotency key", "job_id": job.id, "state": job.state.value, "result": job.result}


def _count(state: ApiState, outcomes: list[EnqueueOutcome]) -> None:
    counters = state.counters
    for outcome in outcomes:
        kind = type(outcome)
        if kind is Accepted:
            counters.enqueued += 1
        elif kind is Duplicate:
            counters.duplicates += 1
        elif kind is Rejected:
            counters.rejected += 1


def _missing_parent_in_batch(outcome: MissingParent, jobs: list[NewJob]) -> str:
    """Why a job of a batch was refused for its parent: one not stored, or one of the batch that was not."""
    position = next((i for i, job in enumerate(jobs) if job.id == outcome.parent), None)
    if position is None:
        return f"depends_on: {missing_parent_message(outcome)}"
    return f"depends_on: jobs[{position}] was not stored (see its outcome), so this job was not either"


def unknown_task_warning(task: str) -> str:
    return (f"no worker has registered task {task!r}: the job waits in its queue, and a worker without "
            "its handler fails its attempts (then the DLQ, from which it can be replayed)")  # fmt: skip


async def submit(request: Request) -> Response:
    """Enqueue one job: 202 with its id and a ``Location``; 409 with the job holding the key; 503 when full."""
    state = get_state(request)
    body = load_body(await request.body())
    if state.queue.stored_tasks.stale():  # the task defaults workers registered, every few seconds
        await state.queue.refresh_tasks()
    job = parse_submission(state.queue, body, defaults=state.defaults)
    admission = state.shedder.admit(job.queue, job.idempotency_key is not None)
    if admission is Admission.REFUSE:
        state.counters.rejected += 1
        return error_response(503, f"queue {job.queue!r} is full; try again later", state.retry_after, queue=job.queue)
    full = None
    try:
        outcomes = await state.queue.enqueue_many([job])
        outcome = outcomes[0]
        full = type(outcome) is Rejected if type(outcome) is not Duplicate else None
    finally:
        state.shedder.settle(job.queue, admission, full)
    _count(state, outcomes)
    if type(outcome) is Accepted:
        job_id = outcome.job.id
        answer: dict[str, str] = {"job_id": job_id, "status": "accepted"}
        if not state.queue.knows_task(job.task):
            answer["warning"] = unknown_task_warning(job.task)
        return json_response(answer, 202, {"Location": f"/jobs/{job_id}"})
    if isinstance(outcome, Duplicate):
        return json_response(_duplicate_body(outcome.job), 409, {"Location": f"/jobs/{outcome.job.id}"})
    if isinstance(outcome, MissingParent):
        raise ApiError(400, f"depends_on: {missing_parent_message(outcome)}", job_id=outcome.parent)
    assert isinstance(outcome, Rejected)
    return error_response(503, _full_message(outcome), state.retry_after, queue=outcome.queue)


async def submit_batch(request: Request) -> Response:
    """Enqueue up to ``max_batch`` jobs in one store call; one outcome per job, in order.

    Every job is validated first: one invalid job fails the whole request (400, nothing stored).
    Otherwise the answer is 200 with ``accepted`` / ``duplicate`` / ``rejected`` / ``invalid`` per
    job (each job is checked on its own against its key, its queue's capacity and its parents), and
    ``Retry-After`` when some were rejected. A job's ``depends_on`` may name an earlier job of the
    batch by its position (an integer).
    """
    state = get_state(request)
    body = load_body(await request.body())
    if state.queue.stored_tasks.stale():
        await state.queue.refresh_tasks()
    jobs = parse_batch(state.queue, body, state.config.max_batch, state.defaults)
    outcomes = await state.queue.enqueue_many(jobs)
    _count(state, outcomes)
    results: list[dict[str, Any]] = []
    tally = {"accepted": 0, "duplicates": 0, "rejected": 0, "invalid": 0}
    for outcome in outcomes:
        if isinstance(outcome, Accepted):
            results.append({"status": "accepted", "job_id": outcome.job.id})
            tally["accepted"] += 1
        elif isinstance(outcome, Duplicate):
            results.append({"status": "duplicate", "job_id": outcome.job.id, "state": outcome.job.state.value})
            tally["duplicates"] += 1
        elif isinstance(outcome, MissingParent):
            results.append({"status": "invalid", "error": _missing_parent_in_batch(outcome, jobs)})
            tally["invalid"] += 1
        else:
            results.append({"status": "rejected", "error": _full_message(outcome)})
            tally["rejected"] += 1
    body = {**tally, "results": results}
    return json_response(body, 200, state.retry_after if tally["rejected"] else None)


async def list_jobs(
    request: Request,
    state: JobState | None = None,
    queue: Annotated[str | None, Query(max_length=128)] = None,
    task: Annotated[str | None, Query(max_length=128)] = None,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    created_after: Annotated[datetime | None, Query(description="ISO 8601 (UTC unless it says)")] = None,
    created_before: Annotated[datetime | None, Query(description="ISO 8601 (UTC unless it says)")] = None,
    idempotency_key: Annotated[str | None, Query(max_length=1024, description="The job holding this key")] = None,
) -> Response:
    """Jobs matching the filters, oldest first, one page at a time; with ``idempotency_key``, the
    job that holds it (a page of one, or of none)."""
    jobqueue = get_state(request).queue
    after, before = _timestamp(created_after), _timestamp(created_before)
    if idempotency_key is not None:
        found = await jobqueue.find_by_key(idempotency_key)
        matches = found is not None and _matches(found, state, queue, task) and created_between(found, after, before)
        return json_response({"jobs": [job_view(found)] if matches and found else [], "next_cursor": None})
    page = await jobqueue.list_jobs(state, queue, task, cursor, limit, created_after=after, created_before=before)
    return json_response({"jobs": [job_view(j) for j in page.jobs], "next_cursor": page.next_cursor})


def _matches(job: Job, state: JobState | None, queue: str | None, task: str | None) -> bool:
    return (state is None or job.state is state) and queue in (None, job.queue) and task in (None, job.task)


def _timestamp(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


async def get_job(request: Request, job_id: JobId) -> Response:
    """The job, with its state, attempts, last error and result, its parents and its children."""
    queue = get_state(request).queue
    job = await queue.get(job_id)
    if job is None:
        raise ApiError(404, "job not found", job_id=job_id)
    return json_response({**job_view(job), "children": await queue.children(job_id, MAX_CHILDREN_SHOWN)})


async def cancel_job(
    request: Request,
    job_id: JobId,
    children: Annotated[bool, Query(description="Cancel its waiting descendants too.")] = False,
) -> Response:
    """Cancel a waiting or running job; a running one is stopped by its worker within about half a
    second and never retried. A finished one cannot be (409)."""
    try:
        job = await get_state(request).queue.cancel(job_id, with_children=children)
    except JobNotFound:
        raise ApiError(404, "job not found", job_id=job_id) from None
    except InvalidTransition as exc:
        raise ApiError(409, str(exc), job_id=job_id, state=exc.state) from None
    return json_response(job_view(job))


def add_routes(app: FastAPI) -> None:
    """Register the jobs routes on ``app``."""
    tags: list[str | Enum] = ["jobs"]
    not_found: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such job."}}
    app.post(
        "/jobs",
        status_code=202,
        summary="Submit a job",
        response_model=AcceptedBody,
        openapi_extra=submission_schema(),
        responses={
            **ERRORS,
            409: {"model": DuplicateBody, "description": "A live job holds the idempotency key: that job."},
            503: {"model": ErrorBody, "description": "The queue is full (see Retry-After)."},
        },
        tags=tags,
    )(submit)
    app.post(
        "/jobs/batch",
        summary="Submit many jobs",
        response_model=BatchBody,
        openapi_extra=batch_schema(),
        responses=ERRORS,
        tags=tags,
    )(submit_batch)
    app.get("/jobs", summary="List jobs", response_model=PageBody, responses=ERRORS, tags=tags)(list_jobs)
    app.get(
        "/jobs/{job_id}", summary="Get a job", response_model=JobBody, responses={**ERRORS, **not_found}, tags=tags
    )(get_job)
    app.post(
        "/jobs/{job_id}/cancel",
        summary="Cancel a job (waiting or running)",
        response_model=JobBody,
        responses={
            **ERRORS,
            **not_found,
            409: {"model": ErrorBody, "description": "The job has finished."},
        },
        tags=tags,
    )(cancel_job)
