"""``/metrics``, ``/queues``, ``/health``, ``/ready``: how the queue and this process are doing."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Request
from starlette.responses import Response

from jobqueue.api.metrics import MetricsSnapshot
from jobqueue.api.responses import error_response, json_response
from jobqueue.api.routes.jobs import ERRORS
from jobqueue.api.state import ApiState, get_state
from jobqueue.job import JobState
from jobqueue.status import WorkerSummary

#: A queue name in a path (checked as at enqueue: a bad one is a 400 naming ``queue``).
QueueName = Annotated[str, Path(max_length=128, description="The queue's name.")]
#: Media types in ``Accept`` that ask for the Prometheus exposition instead of JSON.
PROMETHEUS_TYPES = ("text/plain", "application/openmetrics-text")


def wants_prometheus(accept: str) -> bool:
    """Whether an ``Accept`` header names a Prometheus format (``*/*`` and JSON keep the original's JSON)."""
    return any(part.split(";")[0].strip() in PROMETHEUS_TYPES for part in accept.split(","))


async def metrics(request: Request, format: Literal["json", "prometheus"] | None = None) -> Response:
    """Queue depth and capacity per queue, totals, DLQ size, idempotency keys, workers; latency histograms."""
    state = get_state(request)
    snapshot, reports = await asyncio.gather(state.snapshot(), state.queue.workers())
    snapshot = dataclasses.replace(snapshot, reports=tuple(reports))
    accept = request.headers.get("accept", "")
    if format == "prometheus" or (format is None and wants_prometheus(accept)):
        body, content_type = state.exporter.render(snapshot, accept if format is None else "")
        return Response(body, media_type=content_type)
    return json_response(snapshot.to_json())


async def queues(request: Request) -> Response:
    """Every queue: depth (jobs waiting), capacity, whether it is paused, jobs by state."""
    snapshot = await get_state(request).snapshot()
    return json_response({"queues": [queue_view(snapshot, name) for name in snapshot.queue_names()]})


def queue_view(snapshot: MetricsSnapshot, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "depth": snapshot.depth(name),
        "capacity": snapshot.capacities.get(name),
        "paused": name in snapshot.paused,
        "limits": snapshot.limits_of(name),
        "states": {s.value: snapshot.count(s, name) for s in JobState},
    }


async def pause_queue(request: Request, queue: QueueName) -> Response:
    """Pause the queue for every worker: no job of it starts once this answers (running ones finish)."""
    return await _set_paused(request, queue, True)


async def resume_queue(request: Request, queue: QueueName) -> Response:
    """Resume the queue: waiting workers start its jobs at once."""
    return await _set_paused(request, queue, False)


async def _set_paused(request: Request, queue: str, paused: bool) -> Response:
    state = get_state(request)
    await (state.queue.pause(queue) if paused else state.queue.resume(queue))
    return json_response(queue_view(await state.snapshot(), queue))


async def health() -> Response:
    """200 while the process serves requests (no token needed, no store call)."""
    return json_response({"status": "ok"})


async def ready(request: Request) -> Response:
    """200 when the store answers, takes writes, and this process's workers (if any) are alive and fetching."""
    state = get_state(request)
    try:
        async with asyncio.timeout(state.config.ready_timeout):
            stats, paused, limits = await asyncio.gather(
                state.queue.stats(), state.queue.paused_queues(), state.queue.limits()
            )
            # A store can answer reads and refuse writes (Redis at maxmemory, a read-only server).
            await state.queue.check_writes()
    except Exception as exc:  # any failure to answer means: do not send traffic here
        reason = "no answer in time" if isinstance(exc, TimeoutError) else str(exc)
        return error_response(503, f"store unreachable: {reason}", state.retry_after, backend=state.queue.backend_name)
    summary = state.worker_summary()
    # A paused or limited queue's pending jobs may wait on purpose: workers that leave them there
    # are not stalled.
    held = set(paused) | set(limits)
    pending = {q: s.counts[JobState.PENDING] for q, s in stats.queues.items() if q not in held}
    problem = _worker_problem(state, summary, pending)
    body: dict[str, Any] = {"backend": state.queue.backend_name, "workers": summary.slots, "workers_busy": summary.busy}
    if problem:
        return error_response(503, problem, state.retry_after, **body)
    return json_response({"status": "ready", **body})


def _worker_problem(state: ApiState, workers: WorkerSummary, pending: dict[str, int]) -> str | None:
    """Why the in-process workers are not doing their job, or ``None``."""
    if not workers.workers:
        return None  # an API alone: workers run elsewhere and are watched there
    if workers.stopped:
        return f"{workers.stopped} of {workers.workers} workers stopped"
    # Stalled: jobs pending, a slot free, and no claim since an earlier probe saw the same. Two
    # probes are needed, so that a job enqueued a moment ago is never mistaken for a stall.
    claimed = workers.metrics.claimed
    waiting = sum(pending.get(q, 0) for q in workers.queues)
    now = time.monotonic()
    if claimed != state.last_claimed or not waiting or not workers.has_free_slot:
        state.last_claimed, state.stalled_since = claimed, None
        return None
    if state.stalled_since is None:
        state.stalled_since = now
    elif now - state.stalled_since >= state.config.stall_after:
        return f"workers have claimed no job for {now - state.stalled_since:.0f} s while {waiting} are pending"
    return None


def add_routes(app: FastAPI) -> None:
    """Register the operations routes on ``app``."""
    tags: list[str | Enum] = ["operations"]
    formats: dict[str, Any] = {"application/json": {}, "text/plain": {}, "application/openmetrics-text": {}}
    described = "JSON by default; Prometheus text when Accept names text/plain or OpenMetrics, or ?format=prometheus."
    app.get(
        "/metrics",
        summary="Metrics (JSON or Prometheus)",
        responses={**ERRORS, 200: {"description": described, "content": formats}},
        tags=tags,
    )(metrics)
    app.get("/queues", summary="Queues", responses=ERRORS, tags=tags)(queues)
    app.post("/queues/{queue}/pause", summary="Pause a queue", responses=ERRORS, tags=tags)(pause_queue)
    app.post("/queues/{queue}/resume", summary="Resume a queue", responses=ERRORS, tags=tags)(resume_queue)
    app.get("/health", summary="Liveness", tags=tags)(health)
    not_ready: dict[int | str, dict[str, Any]] = {503: {"description": "Not ready; the error says why."}}
    app.get("/ready", summary="Readiness", responses={**ERRORS, **not_ready}, tags=tags)(ready)
