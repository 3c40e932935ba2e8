"""A direct route to the submit endpoints, beside FastAPI's stack.

Per request, FastAPI's routing, dependency solving and its own middleware layers cost about as
much as the whole submission (parse, validate, store). ``POST /jobs`` and ``POST /jobs/batch``
take no path or query parameters and no dependencies, so :class:`ApiApp` answers them through a
short chain of its own instead: the same timing, auth and body-limit middlewares the rest of the
API has, then the very endpoint functions FastAPI documents, with the app's exception handlers.
Every other request goes through FastAPI untouched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from jobqueue.api.responses import error_response

log = logging.getLogger("jobqueue.api")

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class HotRoutes:
    """The innermost ASGI app of the fast chain: calls the endpoint, maps its errors like the app does."""

    def __init__(
        self,
        routes: Mapping[tuple[str, str], tuple[object, Endpoint]],
        handlers: Mapping[type[Exception], ErrorHandler],
    ) -> None:
        self.routes = routes
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"], endpoint = self.routes[(scope["method"], scope["path"])]
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> ErrorHandler | None:
        for cls in type(exc).__mro__:
            # Exception itself is left to ApiApp, which answers 500 and logs the traceback.
            handler = self.handlers.get(cls) if cls is not Exception else None
            if handler is not None:
                return handler
        return None


class ApiApp(FastAPI):
    """FastAPI, except that the hot routes are served by a chain set with :meth:`set_fast_chain`."""

    _fast_routes: frozenset[tuple[str, str]] = frozenset()
    _fast_chain: ASGIApp | None = None

    def set_fast_chain(self, routes: frozenset[tuple[str, str]], chain: ASGIApp) -> None:
        """Serve the (method, path) pairs in ``routes`` through ``chain`` instead of FastAPI's stack."""
        self._fast_routes, self._fast_chain = routes, chain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._fast_chain is None
            or scope["type"] != "http"
            or (scope["method"], scope["path"]) not in self._fast_routes
        ):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        try:
            await self._fast_chain(scope, receive, send)
        except ClientDisconnect:
            # The client left, or was cut off, before its body arrived: there is no one to answer, and
            # a traceback here would let any client write to the log at will.
            return
        except Exception:
            log.exception("unexpected error on %s %r", scope["method"], scope["path"])  # %r: no raw control characters
            # The endpoints answer in one go, so the response has not started unless sending it
            # failed (the client left); then this answer fails too, and there is no one to tell.
            with contextlib.suppress(Exception):
                await error_response(500, "internal server error")(scope, receive, send)
