"""``/ui``: the dashboard, served by the API itself from files in the package (no CDN, no build).

The page is a shell (``static/index.html``) and plain ES modules that call the API's own routes
(``/jobs``, ``/queues``, ``/dlq``, ...) and two of its own: ``/ui/api/overview`` (every queue and
worker, read once a second however many tabs ask) and ``/ui/api/pulse`` (the chart points). Every
page answers with a Content-Security-Policy that allows scripts from this server only, and the
scripts put values into the page as text, never as markup.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import html
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobqueue.api.docs import WholeFiles
from jobqueue.api.responses import json_response
from jobqueue.api.routes.insight import worker_view
from jobqueue.api.routes.system import queue_view
from jobqueue.api.session import LOGIN_PATH, SESSION_SECONDS, Sessions, session_nonce
from jobqueue.api.state import ApiState, get_state
from jobqueue.version import __version__

STATIC = Path(str(resources.files("jobqueue.api") / "static"))
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
#: On the static files: revalidated by ETag (a new version shows at once) rather than not stored.
ASSET_HEADERS = [(k.lower().encode(), v.encode()) for k, v in {**SECURITY_HEADERS, "Cache-Control": "no-cache"}.items()]
#: The longest sign-in form accepted (a token and its field name).
MAX_LOGIN_BODY = 4096
#: How long one reading of the overview serves every tab that asks.
OVERVIEW_TTL = 1.0


class SecureAssets:
    """The dashboard's static files, with the same security headers as its pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers += [
                    (k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"
                ]
                headers.append((b"cache-control", b"no-cache"))  # revalidated by ETag: a new version shows at once
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


@functools.cache
def _template(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _page(name: str, **values: str) -> str:
    text = _template(name)
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
    return text


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _set_cookie(
    response: Response, request: Request, sessions: Sessions, value: str, max_age: int = SESSION_SECONDS
) -> None:
    """The session cookie, for this app's path (a prefix when mounted), Secure over HTTPS."""
    secure = request.url.scheme == "https"
    header = sessions.cookie_header(value, _root(request) or "/", secure, max_age)
    response.headers.append("set-cookie", header)


class Overview:
    """The overview as last read, shared by every tab for :data:`OVERVIEW_TTL` seconds."""

    def __init__(self) -> None:
        self._value: dict[str, Any] | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, state: ApiState, fresh: bool = False) -> dict[str, Any]:
        """``fresh``: read again now (the page asks so after an action of its own)."""
        async with self._lock:
            if fresh or self._value is None or time.monotonic() - self._read_at >= OVERVIEW_TTL:
                snapshot, workers, schedules = await asyncio.gather(
                    state.snapshot(), state.queue.workers(), state.queue.schedule_states()
                )
                self._value = {
                    "backend": state.queue.backend_name,
                    "version": __version__,
                    # Queues of jobs, settings, or a live worker: an empty queue a worker serves is one too.
                    "queues": [
                        queue_view(snapshot, name)
                        for name in sorted(set(snapshot.queue_names()).union(*(w.queues for w in workers)))
                    ],
                    "workers": [worker_view(w) for w in workers],
                    "schedules": [s.to_dict() for s in schedules],
                    "keys": snapshot.stats.idempotency_keys,
                }
                self._read_at = time.monotonic()
            return self._value


def add_dashboard(app: FastAPI, sessions: Sessions, token: str | None) -> None:
    """Serve the dashboard at ``/ui`` on ``app``."""
    overview = Overview()

    async def shell(request: Request) -> Response:
        nonce = session_nonce(request.scope, sessions)
        response = HTMLResponse("", headers=SECURITY_HEADERS)
        if nonce is None:  # without a token: a session for the page's CSRF token (with one, signed in)
            cookie = sessions.issue()
            nonce = sessions.check(cookie)
            assert nonce is not None
            _set_cookie(response, request, sessions, cookie)
        body = _page("index.html", base=_root(request), csrf=sessions.csrf_token(nonce), signed=str(token is not None))
        response.body = body.encode()
        response.headers["content-length"] = str(len(response.body))
        return response

    async def login_page(request: Request) -> Response:
        if token is None:
            return RedirectResponse(_root(request) + "/ui", 303)
        return HTMLResponse(_page("login.html", base=_root(request), message=""), headers=SECURITY_HEADERS)

    async def login(request: Request) -> Response:
        if token is None:
            return RedirectResponse(_root(request) + "/ui", 303)
        body = await request.body()
        given = parse_qs(body[:MAX_LOGIN_BODY].decode("utf-8", "replace")).get("token", [""])[0]
        if not hmac.compare_digest(given.encode(), token.encode()):
            page = _page("login.html", base=_root(request), message="That is not this server's token.")
            return HTMLResponse(page, 401, headers=SECURITY_HEADERS)
        response = RedirectResponse(_root(request) + "/ui", 303, headers=SECURITY_HEADERS)
        _set_cookie(response, request, sessions, sessions.issue())
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse(_root(request) + LOGIN_PATH, 303, headers=SECURITY_HEADERS)
        _set_cookie(response, request, sessions, "", max_age=0)
        return response

    async def overview_data(request: Request, fresh: bool = False) -> Response:
        return json_response(await overview.get(get_state(request), fresh))

    async def pulse(request: Request, after: Annotated[int, Query(ge=0)] = 0) -> Response:
        pulse = get_state(request).pulse
        pulse.start()  # started by the app's lifespan; mounted without it, by the first tab
        points = pulse.after(after)
        body = {
            "epoch": pulse.epoch,
            "interval": pulse.interval,
            "window": pulse.points.maxlen,
            "points": [p.to_json() for p in points],
        }
        return json_response(body)

    app.mount("/ui/assets", SecureAssets(WholeFiles(StaticFiles(directory=str(STATIC)))), name="ui-assets")
    for path, endpoint, method in (
        ("/ui", shell, "GET"),
        (LOGIN_PATH, login_page, "GET"),
        (LOGIN_PATH, login, "POST"),
        ("/ui/logout", logout, "POST"),
        ("/ui/api/overview", overview_data, "GET"),
        ("/ui/api/pulse", pulse, "GET"),
    ):
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False)
