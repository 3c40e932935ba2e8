"""``jobqueue serve`` and ``jobqueue api``: build the app for a queue and serve it until a signal."""

from __future__ import annotations

import sys
from typing import Any

from jobqueue.api.app import create_app
from jobqueue.api.auth import check_bind
from jobqueue.api.server import bind, run, serve, url_of
from jobqueue.app import JobQueue
from jobqueue.worker import Worker, WorkerConfig


def echo_app() -> JobQueue:
    """The app ``jobqueue serve`` runs without APP: its default handler returns the payload.

    Enough to try the API (a job completes with its payload as result); a real deployment names
    its own app, whose tasks do the work.
    """
    queue = JobQueue()

    @queue.default_handler
    def echo(payload: Any) -> Any:
        return payload

    return queue


def serve_queue(
    queue: JobQueue,
    *,
    host: str,
    port: int,
    token: str | None,
    workers: int,
    queues: tuple[str, ...] = ("default",),
    max_body_bytes: int = 1 << 20,
    log_level: str = "warning",
    lease: float = 30.0,
) -> None:
    """Serve the API for ``queue`` (and ``workers`` job slots in this process) until SIGINT/SIGTERM.

    Raises :class:`~jobqueue.errors.ConfigurationError` before serving when the address is not
    allowed (non-loopback without a token) or cannot be bound, and the backend's own errors when
    the store cannot be opened.
    """
    check_bind(host, token)
    sock = bind(host, port)
    in_process = [Worker(queue, WorkerConfig(queues=queues, concurrency=workers, lease=lease))] if workers else []
    app = create_app(queue, workers=in_process, token=token, max_body_bytes=max_body_bytes)

    async def main() -> None:
        await queue.open()  # fail here, with the store's own message, rather than inside the lifespan
        role = f"{workers} worker slots on queues {','.join(queues)}" if workers else "no workers (API only)"
        auth = "bearer token required" if token else "no token (loopback only)"
        print(f"jobqueue API on {url_of(sock)} (docs: /docs), backend {queue.url}, {role}, {auth}",
              file=sys.stderr, flush=True)  # fmt: skip
        await serve(app, sock, log_level=log_level.lower())

    try:
        run(main())
    finally:
        sock.close()
