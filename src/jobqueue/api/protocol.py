"""uvicorn's httptools protocol, guarded against clients that would hold the server hostage.

Stock uvicorn keeps every byte of a request head a client sends (an endless header grows the
server's memory without bound), waits forever for a head or body that never completes (slowloris),
accepts connections until the process runs out of file descriptors (then nobody is served), and
answers malformed framing in plain text. Here:

- a request head larger than ``max_head_bytes`` is answered 431 and the connection closed;
- a request (head and body) must arrive within ``request_timeout`` of its first byte, or of the
  connection's opening: else 408 and close;
- past ``max_connections``, a new connection evicts the one that has waited longest for its
  request to arrive (a connection whose request is being answered is never evicted), so that
  half-sent requests cannot lock out other clients; when every connection is busy answering, the
  new one is closed;
- a request the parser refuses (bad Content-Length, Content-Length with chunked, unknown method)
  is answered 400 in the API's ``{"error": ...}`` shape.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one client connection may hold. Times in seconds."""

    #: Largest request line and headers together (431 beyond).
    max_head_bytes: int = 64 * 1024
    #: Longest a request may take to arrive, head and body, from its first byte (408 beyond).
    request_timeout: float = 30.0
    #: Most open connections; past it the connection waiting longest for its request is closed.
    max_connections: int = 1000

    def __post_init__(self) -> None:
        if self.max_head_bytes < 1024 or self.request_timeout <= 0 or self.max_connections < 1:
            raise ValueError("max_head_bytes must be >= 1024, request_timeout > 0 and max_connections >= 1")


#: The limits when none are given.
DEFAULT_LIMITS = ConnectionLimits()


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn (``Config(http=...)``) for these limits."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})


def raw_error(status: int, reason: str, message: str) -> bytes:
    """A whole ``{"error"}`` response that closes the connection, for answers before any ASGI app."""
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: ConnectionLimits = DEFAULT_LIMITS

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(config, server_state, app_state, **kwargs)
        #: Whether the next bytes belong to a request still arriving (not one being answered).
        self._arriving = True
        self._head_bytes = 0
        self._head_done = False
        self._deadline: asyncio.TimerHandle | None = None
        #: loop.time() when the request now arriving began (its first byte, or the connection).
        self.waiting_since = 0.0

    # ---- connections --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_request_clock()
        if len(self.connections) > self.limits.max_connections:
            self._evict_one()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_request_clock()
        super().connection_lost(exc)

    def _evict_one(self) -> None:
        """Close the connection that has waited longest for its request; this one if all are busy."""
        waiting = [c for c in self.connections if isinstance(c, GuardedHttpProtocol) and c._arriving and c is not self]
        victim = min(waiting, key=lambda c: c.waiting_since) if waiting else self
        victim._refuse(503, "Service Unavailable", "too many open connections; try again")

    # ---- requests -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._arriving and self._deadline is None:
            self._start_request_clock()  # the first byte of a request on a kept-alive connection
        if self._arriving and not self._head_done:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._refuse(400, "Bad Request", f"malformed HTTP request: {_reason(exc)}")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._arriving and not self._head_done and self._head_bytes > self.limits.max_head_bytes:
            self._refuse(
                431, "Request Header Fields Too Large",
                f"request line and headers are larger than the limit of {self.limits.max_head_bytes} bytes",
            )  # fmt: skip

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stop_request_clock()
        self._arriving = False

    def on_response_complete(self) -> None:
        # Idle now (kept alive, uvicorn's keep-alive timeout runs): the next request's clock
        # starts at its first byte; for eviction, this connection waits from now.
        self._arriving, self._head_bytes, self._head_done = True, 0, False
        self.waiting_since = self.loop.time()
        super().on_response_complete()

    # ---- the request clock --------------------------------------------------------------

    def _start_request_clock(self) -> None:
        self.waiting_since = self.loop.time()
        self._deadline = self.loop.call_later(self.limits.request_timeout, self._request_timed_out)

    def _stop_request_clock(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _request_timed_out(self) -> None:
        self._deadline = None
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # the app answered before the body came: nothing more to say
            return
        self._refuse(408, "Request Timeout", f"the request did not arrive within {self.limits.request_timeout:g} s")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._stop_request_clock()
        self._arriving = False
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # an app reading this request's body sees the client gone
            self.cycle.message_event.set()
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(raw_error(status, reason, message))
        self.transport.close()


def _reason(exc: Exception) -> str:
    """httptools' message (``"Invalid method encountered"``), without trailing punctuation."""
    return str(exc).strip().rstrip(".") or type(exc).__name__
