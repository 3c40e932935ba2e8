"""Dashboard sessions: a browser signs in once with the API token and then carries a cookie.

The cookie is ``HttpOnly`` (page scripts cannot read it) and ``SameSite=Strict`` (no other site's
page can make the browser send it), and it is signed, not stored: any API process that knows the
token accepts it, and a new token ends every session. A request it authenticates that changes
state must also carry the session's CSRF token in ``X-CSRF-Token``: the page reads it from its own
HTML, which another site cannot. Clients that send ``Authorization: Bearer`` are not affected.

Without a token the API answers loopback only (:class:`~jobqueue.api.auth.BrowserGuardMiddleware`);
the dashboard still gets a session, keyed by a secret of this process, so its requests carry a
CSRF token alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from jobqueue.api.auth import PUBLIC_PATHS, BearerAuthMiddleware
from jobqueue.api.responses import error_response

COOKIE = "jobqueue_session"
CSRF_HEADER = b"x-csrf-token"
#: How long a sign-in lasts.
SESSION_SECONDS = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths any browser may load before signing in: the sign-in page and the dashboard's own files.
LOGIN_PATH = "/ui/login"
ASSETS_PREFIX = "/ui/assets/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Sessions:
    """Issues and checks signed session cookies and their CSRF tokens."""

    def __init__(self, token: str | None) -> None:
        secret = token.encode() if token else secrets.token_bytes(32)
        self._key = hmac.new(secret, b"jobqueue dashboard sessions v1", hashlib.sha256).digest()

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def issue(self, now: float | None = None) -> str:
        """A new session's cookie value: ``expiry.nonce.signature``."""
        expires = int((time.time() if now is None else now) + SESSION_SECONDS)
        body = f"{expires}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._sign(body)}"

    def check(self, cookie: str, now: float | None = None) -> str | None:
        """The session's nonce if ``cookie`` is one this key signed and it has not expired."""
        if not cookie.isascii():  # compare_digest refuses non-ASCII text: no session, not a 500
            return None
        body, _, signature = cookie.rpartition(".")
        expires, _, nonce = body.partition(".")
        if not nonce or not hmac.compare_digest(signature, self._sign(body)):
            return None
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        return nonce

    def csrf_token(self, nonce: str) -> str:
        return self._sign(f"csrf.{nonce}")

    def cookie_header(self, value: str, path: str, secure: bool, max_age: int = SESSION_SECONDS) -> str:
        flags = "; Secure" if secure else ""
        return f"{COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{flags}"


def session_nonce(scope: Scope, sessions: Sessions) -> str | None:
    """The nonce of the valid session cookie the request carries, or ``None``."""
    for name, value in scope["headers"]:
        if name == b"cookie" and (nonce := _nonce_in(value, sessions)) is not None:
            return nonce
    return None


def _nonce_in(header: bytes, sessions: Sessions) -> str | None:
    """Parsed by hand: a malformed cookie of another app on the same host must not hide ours
    (``SimpleCookie`` stops at the first one it cannot read)."""
    prefix = COOKIE.encode() + b"="
    for part in header.split(b";"):
        part = part.strip()
        if part.startswith(prefix) and (nonce := sessions.check(part[len(prefix) :].decode("latin-1"))) is not None:
            return nonce
    return None


def relative_path(scope: Scope) -> str:
    """The path inside this app, when it is mounted under a prefix of another."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class SessionAccess:
    """ASGI middleware: who may call, by bearer token or by dashboard session.

    With a token: the bearer token, or a valid session cookie (plus the CSRF token on a request that
    changes state); a page of the dashboard asked for without either is sent to the sign-in page.
    Without one: anyone the browser guard let through, but a request carrying a session cookie
    that changes state must carry its CSRF token.
    """

    def __init__(self, app: ASGIApp, sessions: Sessions, token: str | None) -> None:
        self.app = app
        self.sessions = sessions
        self.bearer = None if token is None else BearerAuthMiddleware(app, token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One pass over the headers: most requests are clients' (a bearer token, or no cookie on
        # loopback), which this lets through at once.
        cookie: bytes | None = None
        authorized = False
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie = value if cookie is None else cookie + b"; " + value
            elif name == b"authorization":
                # A bearer token to check; another scheme (a proxy's Basic auth) is no client of ours.
                authorized = value[:7].lower() == b"bearer "
        if self.bearer is None:
            if cookie is None or scope["method"] in SAFE_METHODS:
                await self.app(scope, receive, send)
            else:
                await self._with_session(_nonce_in(cookie, self.sessions), scope, receive, send)
            return
        path = relative_path(scope)
        if authorized or path in PUBLIC_PATHS or path == LOGIN_PATH or path.startswith(ASSETS_PREFIX):
            await (self.bearer if authorized else self.app)(scope, receive, send)
        elif cookie is not None and (nonce := _nonce_in(cookie, self.sessions)) is not None:
            await self._with_session(nonce, scope, receive, send)
        elif path == "/ui" or path.startswith("/ui/"):
            await RedirectResponse(scope.get("root_path", "") + LOGIN_PATH, 303)(scope, receive, send)
        else:
            await self.bearer(scope, receive, send)  # answers 401

    async def _with_session(self, nonce: str | None, scope: Scope, receive: Receive, send: Send) -> None:
        """A request with the session ``nonce`` (``None``: none valid): one that changes state needs
        the session's CSRF token."""
        if nonce is not None and scope["method"] not in SAFE_METHODS and not self._csrf_ok(scope, nonce):
            await error_response(403, "missing or invalid CSRF token: reload the page")(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _csrf_ok(self, scope: Scope, nonce: str) -> bool:
        expected = self.sessions.csrf_token(nonce).encode()
        return any(name == CSRF_HEADER and hmac.compare_digest(value, expected) for name, value in scope["headers"])
