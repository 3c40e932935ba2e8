"""``/schedules``: periodic schedules, their state, and steering them (pause, resume, run now)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from jobqueue.api.responses import ApiError, job_view, json_response
from jobqueue.api.routes.jobs import ERRORS
from jobqueue.api.schemas import ErrorBody, JobBody
from jobqueue.api.state import get_state
from jobqueue.errors import QueueFull, ScheduleNotFound

ScheduleName = Annotated[str, Path(max_length=128, description="The schedule's name.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such schedule."}}


class ScheduleBody(BaseModel):
    """A schedule and its stored state. Times are ISO 8601 UTC."""

    model_config = ConfigDict(extra="allow")

    name: str
    task: str
    when: str = Field(description='"*/5 * * * * (Europe/Paris)" or "every 30 s".')
    paused: bool
    last_tick: str | None = Field(description="The last tick fired (by any scheduler).")
    last_job_id: str | None = Field(description="The job that tick became (null if its queue was full).")
    next_tick: str | None = Field(description="The next tick; null while paused.")


class SchedulesBody(BaseModel):
    schedules: list[ScheduleBody]


async def list_schedules(request: Request) -> Response:
    """Every schedule the app declares or a scheduler stored, by name."""
    states = await get_state(request).queue.schedule_states()
    return json_response({"schedules": [state.to_dict() for state in states]})


async def pause_schedule(request: Request, name: ScheduleName) -> Response:
    """Stop firing its ticks, on every node, until resumed."""
    return await _set_paused(request, name, True)


async def resume_schedule(request: Request, name: ScheduleName) -> Response:
    """Fire its ticks again; those it missed follow its catch-up policy."""
    return await _set_paused(request, name, False)


async def _set_paused(request: Request, name: str, paused: bool) -> Response:
    queue = get_state(request).queue
    try:
        state = await (queue.pause_schedule(name) if paused else queue.resume_schedule(name))
    except ScheduleNotFound as exc:
        raise ApiError(404, str(exc), name=name) from None
    return json_response(state.to_dict())


async def run_schedule(request: Request, name: ScheduleName) -> Response:
    """Enqueue the schedule's job now, outside its ticks."""
    api = get_state(request)
    try:
        job = await api.queue.run_schedule_now(name)
    except ScheduleNotFound as exc:
        raise ApiError(404, str(exc), name=name) from None
    except QueueFull as exc:
        raise ApiError(503, str(exc), headers=api.retry_after, queue=exc.queue) from None
    return json_response(job_view(job), 202, {"Location": f"/jobs/{job.id}"})


def add_routes(app: FastAPI) -> None:
    """Register the schedule routes on ``app``."""
    tags: list[str | Enum] = ["schedules"]
    errors = {**ERRORS, **NOT_FOUND}
    app.get("/schedules", summary="List schedules", response_model=SchedulesBody, responses=ERRORS,
            tags=tags)(list_schedules)  # fmt: skip
    app.post("/schedules/{name}/pause", summary="Pause a schedule", response_model=ScheduleBody, responses=errors,
             tags=tags)(pause_schedule)  # fmt: skip
    app.post("/schedules/{name}/resume", summary="Resume a schedule", response_model=ScheduleBody, responses=errors,
             tags=tags)(resume_schedule)  # fmt: skip
    app.post("/schedules/{name}/run", status_code=202, summary="Run a schedule's job now", response_model=JobBody,
             responses={**errors, 503: {"model": ErrorBody, "description": "Its queue is full."}},
             tags=tags)(run_schedule)  # fmt: skip
