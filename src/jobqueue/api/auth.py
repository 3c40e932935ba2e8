"""Bearer-token authentication and the rule that keeps an open API off the network.

With a token, every route except ``/health`` needs ``Authorization: Bearer <token>``; the token is
compared in constant time. Without one the API must listen on a loopback address only.
"""

from __future__ import annotations

import hmac
import ipaddress

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
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        if not hmac.compare_digest(given, self._expected):
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
