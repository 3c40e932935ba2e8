"""``create_app``: the HTTP API over one :class:`~jobqueue.app.JobQueue`.

The original's contract first (``POST /jobs``, ``GET /jobs/{id}``, ``GET /dlq``,
``POST /dlq/{id}/retry``, ``GET /metrics``), then what it lacks. Every error answers
``{"error": "..."}``, never FastAPI's 422 shape. All state lives on ``app.state.jobqueue``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from jobqueue.api.auth import BrowserGuardMiddleware
from jobqueue.api.dashboard import add_dashboard
from jobqueue.api.docs import add_docs
from jobqueue.api.fastpath import ApiApp, Endpoint, ErrorHandler, HotRoutes
from jobqueue.api.limits import BodyLimitMiddleware
from jobqueue.api.metrics import ApiCounters
from jobqueue.api.responses import ApiError, error_response
from jobqueue.api.routes import control, dlq, insight, jobs, schedules, system
from jobqueue.api.schemas import BatchSubmission, JobSubmission
from jobqueue.api.session import SessionAccess, Sessions
from jobqueue.api.state import ApiConfig, ApiState, get_state
from jobqueue.app import JobQueue
from jobqueue.errors import BackendError, BackendUnavailable, InvalidTransition, JobNotFound, QueueFull, ValidationError
from jobqueue.status import WorkerStatus
from jobqueue.version import __version__

#: Something else that lives as long as the app, inside its lifespan (in-process workers).
Lifespan = Callable[[], AbstractAsyncContextManager[None]]

log = logging.getLogger("jobqueue.api")


def create_app(
    queue: JobQueue,
    *,
    workers: WorkerStatus | None = None,
    lifespan: Lifespan | None = None,
    token: str | None = None,
    max_body_bytes: int = 1 << 20,
    max_batch: int = 1000,
    retry_after: int = 1,
    ready_timeout: float = 2.0,
    stall_after: float = 30.0,
    shed_window: float = 0.05,
    allowed_hosts: Sequence[str] = (),
    dashboard: bool = True,
) -> FastAPI:
    """Build the API for ``queue``.

    The app's ASGI lifespan opens the queue at startup and closes it at shutdown. ``workers``
    (read only) is the status of workers running in this process, shown by ``/metrics`` and
    watched by ``/ready``; ``lifespan`` runs inside the app's (after the queue opens, before it
    closes), for whatever else lives as long as the app, such as those workers.
    :func:`jobqueue.serving.create_app_with_workers` composes both for ``jobqueue serve``; without
    them the API only submits and reads (``jobqueue api``), and workers run elsewhere.

    ``token``: every route except ``/health`` requires ``Authorization: Bearer <token>``. Without
    one, requests from web pages are refused (see :class:`~jobqueue.api.auth.BrowserGuardMiddleware`)
    and so are ``Host`` names other than loopback ones and ``allowed_hosts`` (``"*"``: any).
    ``max_body_bytes``: larger bodies get 413, checked while they stream in. ``max_batch``: most
    jobs per ``POST /jobs/batch``. ``retry_after``: seconds in ``Retry-After`` on a 503.
    ``ready_timeout`` and ``stall_after``: see ``GET /ready``. ``shed_window``: see
    :attr:`ApiConfig.shed_window` (refusals under a flood answered without a store call).
    ``dashboard``: serve the dashboard at ``/ui`` (:mod:`jobqueue.api.dashboard`); a browser signs
    in with the token, if there is one (:mod:`jobqueue.api.session`).
    """
    config = ApiConfig(token, max_body_bytes, max_batch, retry_after, ready_timeout, stall_after, shed_window)
    app = ApiApp(
        title="jobqueue",
        summary="A durable job queue: the original JobQueue's HTTP contract, and more.",
        version=__version__,
        lifespan=_lifespan_with(lifespan, sample=dashboard),
        docs_url=None,  # served by add_docs, with its own assets
        redoc_url=None,  # ReDoc exists only on a CDN
    )
    add_docs(app)
    sessions = Sessions(token)
    if dashboard:
        add_dashboard(app, sessions, token)
    app.state.jobqueue = ApiState(queue, config, workers)
    # Routes are added to the app itself, not through included routers: each included router
    # adds a matching layer that costs more per request than parsing and storing a job.
    for module in (jobs, insight, dlq, schedules, system, control):
        module.add_routes(app)
    handlers = _error_handlers()
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    # Added innermost first: timing sees every request, auth runs before any body is read.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)
    app.add_middleware(SessionAccess, sessions=sessions, token=token)
    if token is None:
        app.add_middleware(BrowserGuardMiddleware, allowed_hosts=allowed_hosts)
    app.add_middleware(TimingMiddleware, counters=app.state.jobqueue.counters)
    # The same chain again for the submit routes, which skip FastAPI's own stack (see fastpath).
    hot = _hot_routes(app)
    chain: ASGIApp = BodyLimitMiddleware(HotRoutes(hot, handlers), max_body_bytes)
    chain = SessionAccess(chain, sessions, token)
    if token is None:
        chain = BrowserGuardMiddleware(chain, allowed_hosts)
    app.set_fast_chain(frozenset(hot), TimingMiddleware(chain, app.state.jobqueue.counters))
    app.openapi = lambda: _openapi(app, token is not None)  # type: ignore[method-assign]
    return app


def _lifespan_with(inner: Lifespan | None, *, sample: bool) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state: ApiState = app.state.jobqueue
        await state.queue.open()
        if sample:  # the dashboard's charts
            state.pulse.start()
        try:
            if inner is None:
                yield
            else:
                async with inner():
                    yield
        finally:
            await state.pulse.stop()
            await state.queue.close()

    return lifespan


class TimingMiddleware:
    """Times every request into ``jobqueue_http_request_duration_seconds`` (by method and route)."""

    def __init__(self, app: ASGIApp, counters: ApiCounters) -> None:
        self.app = app
        self.counters = counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            # The route's template, never the raw path: job ids would make one series per job.
            path = getattr(route, "path", "unmatched")
            self.counters.observe_request(scope["method"], path, time.perf_counter() - started)


def _field_of(loc: Sequence[Any]) -> str:
    """``("query", "limit")`` -> ``"limit"``; nested body locations joined with dots."""
    parts = [str(p) for p in loc if p not in ("query", "path", "body", "header")]
    return ".".join(parts) or "request"


def _hot_routes(app: FastAPI) -> dict[tuple[str, str], tuple[object, Endpoint]]:
    """The submit routes and their endpoints, served beside FastAPI's stack (see :mod:`.fastpath`)."""
    hot = {("POST", "/jobs"): jobs.submit, ("POST", "/jobs/batch"): jobs.submit_batch}
    routes: dict[tuple[str, str], tuple[object, Endpoint]] = {}
    for route in app.routes:
        for method in getattr(route, "methods", None) or ():
            endpoint = hot.get((method, getattr(route, "path", "")))
            if endpoint is not None:
                routes[(method, route.path)] = (route, endpoint)  # type: ignore[attr-defined]
    return routes


def _error_handlers() -> dict[type[Exception], ErrorHandler]:
    """How each exception a route may raise is answered (always ``{"error"}``)."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def validation(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RequestValidationError):
            first = exc.errors()[0]
            return error_response(400, f"{_field_of(first.get('loc', ()))}: {first.get('msg', 'invalid')}")
        return error_response(400, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail), exc.headers)

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, str(exc))

    async def conflict(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidTransition)
        return error_response(409, str(exc), job_id=exc.job_id, state=exc.state)

    async def unavailable(request: Request, exc: Exception) -> Response:
        return error_response(503, str(exc), get_state(request).retry_after)

    async def backend_error(request: Request, exc: Exception) -> Response:
        log.error("store error on %s %r: %s", request.method, request.url.path, exc)  # %r: see fastpath
        return error_response(500, "storage error")

    async def crash(request: Request, exc: Exception) -> Response:
        # Starlette logs the traceback and re-raises after this answer is sent.
        return error_response(500, "internal server error")

    return {
        ApiError: api_error,
        RequestValidationError: validation,
        ValidationError: validation,
        HTTPException: http_error,
        JobNotFound: not_found,
        InvalidTransition: conflict,
        QueueFull: unavailable,
        BackendUnavailable: unavailable,
        BackendError: backend_error,
        Exception: crash,
    }


def _openapi(app: FastAPI, secured: bool) -> dict[str, Any]:
    """FastAPI's document, plus the submission schemas (their routes parse bodies by hand) and auth."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        models: tuple[type[BaseModel], ...] = (JobSubmission, BatchSubmission, *control.BODIES)
        for model in models:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        # FastAPI documents its own 422 shape; this API answers 400 {"error"} instead.
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        if secured:
            schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema
