"""``/dlq``: the dead-letter queue and its replay, as in the original."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import FastAPI, Query, Request
from starlette.responses import Response

from jobqueue.api.responses import ApiError, job_view, json_response
from jobqueue.api.routes.jobs import ERRORS, JobId
from jobqueue.api.schemas import DlqBody, ErrorBody, RequeuedBody
from jobqueue.api.state import get_state
from jobqueue.errors import InvalidTransition, JobNotFound, QueueFull
from jobqueue.job import JobState


async def list_dead(
    request: Request,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """``count`` (all dead-lettered jobs) and one page of them, oldest first."""
    queue = get_state(request).queue
    stats = await queue.stats()
    page = await queue.dead_letters(limit=limit, cursor=cursor)
    count = sum(q.counts[JobState.DEAD_LETTERED] for q in stats.queues.values())
    return json_response({"count": count, "jobs": [job_view(j) for j in page.jobs], "next_cursor": page.next_cursor})


async def retry_dead(request: Request, job_id: JobId) -> Response:
    """Put the job back in its queue with a fresh attempt budget."""
    state = get_state(request)
    try:
        job = await state.queue.replay(job_id)
    except JobNotFound:
        raise ApiError(404, "job not found in DLQ", job_id=job_id) from None
    except InvalidTransition as exc:
        raise ApiError(404, f"job not found in DLQ (it is {exc.state})", job_id=job_id, state=exc.state) from None
    except QueueFull as exc:
        raise ApiError(
            503, f"{exc}; the job stays in the DLQ", headers=state.retry_after, job_id=job_id, queue=exc.queue
        ) from None
    state.counters.requeued += 1
    return json_response({"status": "requeued", "job_id": job.id}, 202, {"Location": f"/jobs/{job.id}"})


def add_routes(app: FastAPI) -> None:
    """Register the dead-letter queue routes on ``app``."""
    tags: list[str | Enum] = ["dead-letter queue"]
    app.get("/dlq", summary="List dead-lettered jobs", response_model=DlqBody, responses=ERRORS, tags=tags)(list_dead)
    app.post(
        "/dlq/{job_id}/retry",
        status_code=202,
        summary="Replay a dead-lettered job",
        response_model=RequeuedBody,
        responses={
            **ERRORS,
            404: {"model": ErrorBody, "description": "No such job in the dead-letter queue."},
            503: {"model": ErrorBody, "description": "Its queue is full; the job stays in the DLQ."},
        },
        tags=tags,
    )(retry_dead)
