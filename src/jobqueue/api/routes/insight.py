"""``/workers``, ``/jobs/{id}/attempts``, ``DELETE /jobs/{id}``: who is working, what went wrong
with a job, and removing a finished one (what the dashboard shows and does, for any client)."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from jobqueue.api.responses import ApiError, json_response
from jobqueue.api.routes.jobs import ERRORS, JobId
from jobqueue.api.state import get_state
from jobqueue.clock import to_datetime
from jobqueue.job import FINISHED_STATES
from jobqueue.outcomes import AttemptError
from jobqueue.status import WorkerReport


def _iso(at: float | None) -> str | None:
    moment = to_datetime(at)
    return None if moment is None else moment.isoformat()


def worker_view(report: WorkerReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "host": report.host,
        "pid": report.pid,
        "queues": list(report.queues),
        "concurrency": report.concurrency,
        "busy": report.busy,
        "started_at": _iso(report.started_at),
        "reported_at": _iso(report.reported_at),
        "version": report.version,
        "counters": report.counters,
    }


def attempt_view(error: AttemptError) -> dict[str, Any]:
    return {
        "attempt": error.attempt,
        "started_at": _iso(error.started_at),
        "failed_at": _iso(error.failed_at),
        "error": error.error,
        "traceback": error.traceback,
        "worker_id": error.worker_id,
    }


async def list_workers(request: Request) -> Response:
    """Every live worker sharing the store (host, pid, queues, jobs running, last report, counters)."""
    reports = await get_state(request).queue.workers()
    return json_response({"workers": [worker_view(r) for r in reports]})


async def job_attempts(request: Request, job_id: JobId) -> Response:
    """The job's failed attempts, oldest first (the latest 20): error, traceback, worker, times."""
    queue = get_state(request).queue
    errors, job = await queue.attempt_errors(job_id), await queue.get(job_id)
    if job is None:
        raise ApiError(404, "job not found", job_id=job_id)
    return json_response({"job_id": job_id, "attempts": [attempt_view(e) for e in errors]})


async def delete_job(request: Request, job_id: JobId) -> Response:
    """Delete a finished job (completed, dead-lettered or cancelled); a waiting or running one is
    refused (409): cancel it first."""
    queue = get_state(request).queue
    job = await queue.get(job_id)
    if job is None:
        raise ApiError(404, "job not found", job_id=job_id)
    if job.state not in FINISHED_STATES or not (await queue.delete([job_id]))[0]:
        raise ApiError(409, f"job {job_id} is {job.state.value}: only a finished job can be deleted (cancel it first)",
                       job_id=job_id, state=job.state.value)  # fmt: skip
    return json_response({"job_id": job_id, "deleted": True})


def add_routes(app: FastAPI) -> None:
    """Register the insight routes on ``app``."""
    tags: list[str | Enum] = ["jobs"]
    not_found: dict[int | str, dict[str, Any]] = {404: {"description": "No such job."}}
    app.get("/workers", summary="Live workers", responses=ERRORS, tags=["operations"])(list_workers)
    app.get("/jobs/{job_id}/attempts", summary="A job's failed attempts", responses={**ERRORS, **not_found},
            tags=tags)(job_attempts)  # fmt: skip
    app.delete("/jobs/{job_id}", summary="Delete a finished job",
               responses={**ERRORS, **not_found, 409: {"description": "The job has not finished."}},
               tags=tags)(delete_job)  # fmt: skip
