"""Steering from the API: a queue's limits, and actions on many jobs (cancel, DLQ replay and purge).

Bodies are parsed by hand, as submissions are (:mod:`jobqueue.api.schemas`), so that every bad
value is a 400 naming its field; the pydantic models here only describe them in ``/docs``. A bulk
action with no filter must say ``"all": true``: an empty body that purged the whole DLQ would be
one typo away from a bad day.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from jobqueue.api.responses import json_response
from jobqueue.api.routes.jobs import ERRORS
from jobqueue.api.routes.system import QueueName, queue_view
from jobqueue.api.schemas import load_body
from jobqueue.api.state import get_state
from jobqueue.bulk import CANCELLABLE, JobFilter
from jobqueue.errors import ValidationError
from jobqueue.job import JobState
from jobqueue.limits import QueueLimits

_FILTER_FIELDS = frozenset({"queue", "task", "error", "finished_after", "finished_before", "all"})


class LimitsBody(BaseModel):
    """A queue's limits; a field left out (or null) is no limit of that kind."""

    model_config = ConfigDict(extra="forbid")

    rate: str | None = Field(None, description='Jobs started per period, all workers: "100/s", "1000/h", "5/10s".')
    burst: int | None = Field(None, ge=1, description="Jobs that may start at once (default: the rate's count).")
    concurrency: int | None = Field(None, ge=1, description="Jobs of the queue running at once, across all workers.")
    key_rate: str | None = Field(None, description="The same rate, for each rate_key of the queue's jobs.")
    key_burst: int | None = Field(None, ge=1)
    key_concurrency: int | None = Field(None, ge=1, description="Jobs of one rate_key running at once.")


class FilterBody(BaseModel):
    """Which jobs to act on: every field given must match. With none, ``all`` must be true."""

    model_config = ConfigDict(extra="forbid")

    queue: str | None = None
    task: str | None = None
    error: str | None = Field(None, description="A piece of the last error, ignoring case.")
    finished_after: str | float | None = Field(None, description="ISO 8601 or POSIX seconds (inclusive).")
    finished_before: str | float | None = Field(None, description="ISO 8601 or POSIX seconds (exclusive).")
    all: bool = Field(False, description="Act on every job (required when no filter is given).")


class CancelFilterBody(FilterBody):
    state: str | None = Field(None, description="Only jobs in this state (one that can be cancelled).")


#: The bodies these routes take, added to the OpenAPI document's schemas.
BODIES: tuple[type[BaseModel], ...] = (LimitsBody, FilterBody, CancelFilterBody)


def _body(schema: type[BaseModel]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


async def set_limits(request: Request, queue: QueueName) -> Response:
    """Replace the queue's limits for every worker (claims that start after this answers obey them)."""
    body = load_body(await request.body())
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    state = get_state(request)
    await state.queue.set_limits(queue, QueueLimits.from_dict({k: v for k, v in body.items() if v is not None}))
    return json_response(queue_view(await state.snapshot(), queue))


async def change_limits(request: Request, queue: QueueName) -> Response:
    """Change the limits given and keep the others: a field given ``null`` is removed, and a rate
    given without its burst drops the old burst (the new rate's default applies)."""
    body = load_body(await request.body())
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    state = get_state(request)
    current = (await state.queue.limits()).get(queue, QueueLimits()).to_dict()
    for rate, burst in (("rate", "burst"), ("key_rate", "key_burst")):
        if rate in body:
            current[burst] = None
    current.update(body)
    await state.queue.set_limits(queue, QueueLimits.from_dict({k: v for k, v in current.items() if v is not None}))
    return json_response(queue_view(await state.snapshot(), queue))


async def clear_limits(request: Request, queue: QueueName) -> Response:
    """Remove the queue's limits."""
    state = get_state(request)
    await state.queue.set_limits(queue, QueueLimits())
    return json_response(queue_view(await state.snapshot(), queue))


async def cancel_jobs(request: Request) -> Response:
    """Cancel every waiting or running job matching the filter; answers how many."""
    body = await _object(request, _FILTER_FIELDS | {"state"})
    states = CANCELLABLE
    if (state := body.pop("state", None)) is not None:
        if not isinstance(state, str) or state not in CANCELLABLE:
            raise ValidationError("state", f"must be one of {', '.join(sorted(CANCELLABLE))}")
        states = frozenset({JobState(state)})
    cancelled = await get_state(request).queue.cancel_jobs(_filter(body, narrowed=state is not None), states=states)
    return json_response({"cancelled": cancelled})


async def replay_dead(request: Request) -> Response:
    """Replay every dead-lettered job matching the filter, in batches; a full queue keeps the rest."""
    result = await get_state(request).queue.replay_dead_letters(_filter(await _object(request, _FILTER_FIELDS)))
    get_state(request).counters.requeued += result.replayed
    return json_response({"replayed": result.replayed, "stayed": result.stayed, "full_queues": result.full_queues})


async def purge_dead(request: Request) -> Response:
    """Delete every dead-lettered job matching the filter, in batches; answers how many."""
    purged = await get_state(request).queue.purge_dead_letters(_filter(await _object(request, _FILTER_FIELDS)))
    return json_response({"purged": purged})


async def _object(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    body = load_body(await request.body())
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    if unknown := body.keys() - allowed:
        raise ValidationError(min(unknown), f"unknown field (allowed: {', '.join(sorted(allowed))})")
    return {name: value for name, value in body.items() if value is not None}


def _filter(body: dict[str, Any], *, narrowed: bool = False) -> JobFilter:
    """The body's filter; ``narrowed``: the request chose its jobs some other way too (a state)."""
    everything = body.pop("all", False)
    if not isinstance(everything, bool):
        raise ValidationError("all", "must be true or false")
    for name in ("finished_after", "finished_before"):
        if isinstance(body.get(name), str):
            try:
                body[name] = datetime.fromisoformat(body[name])
            except ValueError:
                raise ValidationError(name, "must be ISO 8601 (2026-12-08T10:00:00Z) or POSIX seconds") from None
    for name in ("queue", "task", "error"):
        if name in body and not isinstance(body[name], str):
            raise ValidationError(name, "must be a string")
    chosen = JobFilter(**body)
    if chosen.is_everything and not everything and not narrowed:
        raise ValidationError("all", "give a filter, or all: true to act on every job")
    return chosen


def add_routes(app: FastAPI) -> None:
    """Register the limits and bulk-action routes on ``app``."""
    app.put(
        "/queues/{queue}/limits",
        summary="Set a queue's limits",
        responses=ERRORS,
        openapi_extra=_body(LimitsBody),
        tags=["operations"],
    )(set_limits)
    app.patch(
        "/queues/{queue}/limits",
        summary="Change some of a queue's limits",
        responses=ERRORS,
        openapi_extra=_body(LimitsBody),
        tags=["operations"],
    )(change_limits)
    app.delete("/queues/{queue}/limits", summary="Clear a queue's limits", responses=ERRORS,
               tags=["operations"])(clear_limits)  # fmt: skip
    app.post("/jobs/cancel", summary="Cancel jobs by filter", responses=ERRORS, openapi_extra=_body(CancelFilterBody),
             tags=["jobs"])(cancel_jobs)  # fmt: skip
    dlq: list[str | Enum] = ["dead-letter queue"]
    app.post("/dlq/replay", summary="Replay dead-lettered jobs by filter", responses=ERRORS,
             openapi_extra=_body(FilterBody), tags=dlq)(replay_dead)  # fmt: skip
    app.post("/dlq/purge", summary="Delete dead-lettered jobs by filter", responses=ERRORS,
             openapi_extra=_body(FilterBody), tags=dlq)(purge_dead)  # fmt: skip
