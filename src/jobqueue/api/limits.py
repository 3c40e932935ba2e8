"""The request body limit, enforced while the body streams in.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a body
without one (chunked) is counted as it arrives and refused as soon as it passes the limit, so a
client cannot make the server buffer more than the limit (Starlette alone would read it all).
A body within its declared length needs no counting: the server delivers no more than that.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobqueue.api.responses import error_response


class BodyTooLarge(Exception):
    """The request body passed the limit while it was being read."""


class BodyLimitMiddleware:
    """ASGI middleware answering 413 ``{"error"}`` to bodies over ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared == -1:
            await error_response(400, "Content-Length: not a number")(scope, receive, send)
            return
        if declared is not None:
            if declared > limit:
                await self._too_large(scope, receive, send)
            else:
                # The server frames the body by its Content-Length (HTTP/1.1 and HTTP/2 both
                # refuse a body that disagrees with it), so nothing more needs counting.
                await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:  # a route that streamed its answer before reading the body: nothing to fix
                raise
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Connection: close, because the rest of the body is never read.
        response = error_response(
            413, f"request body is larger than the limit of {self.max_body_bytes} bytes", {"Connection": "close"}
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length; ``None`` when absent, -1 when it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None
