"""Bearer-token authentication, and what protects an API without one.

With a token, every route except ``/health`` needs ``Authorization: Bearer <token>`` (the scheme
in any case, RFC 7235; the token compared in constant time). Without one the API must listen on a
loopback address only, and :class:`BrowserGuardMiddleware` keeps web pages out: a page in the
user's browser can reach loopback too, by a cross-site request or by DNS rebinding.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from jobqueue.api.responses import error_response
from jobqueue.errors import ConfigurationError

#: Paths answered without a token: liveness carries no data and probes rarely hold secrets.
PUBLIC_PATHS = frozenset({"/health"})


class BearerAuthMiddleware:
    """ASGI middleware answering 401 ``{"error"}`` unless the request carries the token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ConfigurationError("the API token must not be empty")
        self.app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        scheme, _, credentials = given.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(), self._expected):
            message = "missing bearer token" if not given else "invalid bearer token"
            response = error_response(401, message, {"WWW-Authenticate": 'Bearer realm="jobqueue"'})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve an unauthenticated API beyond this machine."""
    if not token and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to listen on {host} without a token: anyone who can reach it could submit, read and "
            "replay jobs. Set --token (or JOBQUEUE_API_TOKEN), or listen on 127.0.0.1."
        )


#: ``Sec-Fetch-Site`` values of requests a page of another site did not make.
SAME_SITE_FETCHES = frozenset({b"same-origin", b"none"})


class BrowserGuardMiddleware:
    """ASGI middleware answering 403 ``{"error"}`` to what a web page, not a client, would send.

    - a ``Host`` that is not a loopback name or address (nor one of ``allowed_hosts``): a page of a
      site whose name was made to resolve to 127.0.0.1 (DNS rebinding);
    - ``Sec-Fetch-Site`` other than same-origin or none, or an ``Origin`` whose host is not
      allowed: a request made by a page of another site (a form or ``fetch`` needs no preflight
      for ``text/plain`` bodies).

    Clients (curl, the original's, any HTTP library) send neither ``Origin`` nor ``Sec-Fetch-*``,
    and send the host they connect to, so they are not affected. ``"*"`` in ``allowed_hosts``
    turns the ``Host`` and ``Origin`` checks off (a proxy that rewrites ``Host``, say).
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] = ()) -> None:
        self.app = app
        self._any_host = "*" in allowed_hosts
        self._allowed = frozenset(h.lower().encode() for h in allowed_hosts if h != "*")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope["headers"])
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await error_response(403, refusal)(scope, receive, send)

    def _refusal(self, headers: Sequence[tuple[bytes, bytes]]) -> str | None:
        for name, value in headers:
            if name == b"host":
                if not self._host_allowed(_host_of(value)):
                    return (
                        f"Host {_printable(value)} is not this server's address: without a token the API "
                        "answers loopback names only (set --token, or --allowed-host)"
                    )
            elif name == b"sec-fetch-site":
                if value.lower() not in SAME_SITE_FETCHES:
                    return "cross-site requests are refused: call the API from a client, not a web page"
            elif name == b"origin":
                _, _, authority = value.partition(b"://")  # "null" (a sandboxed page): no authority
                if not self._host_allowed(_host_of(authority)):
                    return "cross-site requests are refused: call the API from a client, not a web page"
        return None

    def _host_allowed(self, host: bytes) -> bool:
        return self._any_host or host in self._allowed or is_loopback(host.decode("latin-1"))


def _host_of(authority: bytes) -> bytes:
    """``b"[::1]:8080"`` -> ``b"[::1]"``; ``b"Localhost:80"`` -> ``b"localhost"``."""
    authority = authority.strip().lower()
    if authority.startswith(b"["):
        return authority[: authority.find(b"]") + 1]
    return authority.partition(b":")[0]


def _printable(value: bytes) -> str:
    """A header value fit for an error message and a log line: no control characters, bounded."""
    text = value[:100].decode("latin-1")
    return repr("".join(c if c.isprintable() else "?" for c in text))
