"""The HTTP API and workers in one process (``jobqueue serve``, the original's shape).

This is the one place the API is composed with workers: the API knows only a
:class:`~jobqueue.app.JobQueue` and a read-only :class:`~jobqueue.status.WorkerStatus`, and
:class:`WorkerGroup` is both that status and what runs the workers for as long as the app is
served. :func:`serve_queue` serves it (or the API alone, for ``jobqueue api``) until a signal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from jobqueue.api.app import create_app
from jobqueue.api.auth import check_bind
from jobqueue.api.protocol import DEFAULT_LIMITS, ConnectionLimits
from jobqueue.api.server import bind, run, serve, url_of
from jobqueue.app import JobQueue
from jobqueue.status import WorkerSummary
from jobqueue.worker import Worker, WorkerConfig
from jobqueue.worker.supervisor import exit_past_stuck_threads

log = logging.getLogger("jobqueue.api")


class WorkerGroup:
    """Workers run on the API's event loop: started with the app, stopped gracefully with it."""

    def __init__(self, workers: Sequence[Worker]) -> None:
        self.workers = list(workers)
        #: The workers' tasks while :meth:`running` (a task that ended has crashed or was stopped).
        self.tasks: list[asyncio.Task[None]] = []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run every worker until the block ends, then stop claiming, let running jobs finish
        within each worker's grace, and release the rest."""
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(worker.run(), name=f"worker-{worker.id}") for worker in self.workers]
        try:
            yield
        finally:
            for worker in self.workers:
                worker.stop()
            for task in self.tasks:
                try:
                    await task
                except Exception:
                    log.exception("a worker stopped with an error")
            self.tasks = []

    def worker_summary(self) -> WorkerSummary:
        total = WorkerSummary.total(worker.status() for worker in self.workers)
        # A worker whose task has ended while the app runs has crashed: it no longer fetches.
        return dataclasses.replace(total, stopped=sum(task.done() for task in self.tasks))


def create_app_with_workers(queue: JobQueue, workers: Sequence[Worker], **options: Any) -> FastAPI:
    """The API for ``queue`` (``options`` as for :func:`jobqueue.api.create_app`) with ``workers``
    running in its process for as long as it is served."""
    group = WorkerGroup(workers)
    return create_app(queue, workers=group, lifespan=group.running, **options)


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
    limits: ConnectionLimits = DEFAULT_LIMITS,
    allowed_hosts: Sequence[str] = (),
    scheduler: bool = True,
    access_log: bool = False,
) -> None:
    """Serve the API for ``queue`` (and ``workers`` job slots in this process) until SIGINT/SIGTERM.
    With workers, ``scheduler`` fires the app's periodic schedules here too.

    Raises :class:`~jobqueue.errors.ConfigurationError` before serving when the address is not
    allowed (non-loopback without a token) or cannot be bound, and the backend's own errors when
    the store cannot be opened.
    """
    check_bind(host, token)
    sock = bind(host, port)
    config = WorkerConfig(queues=queues, concurrency=max(workers, 1), lease=lease, scheduler=scheduler)
    in_process = [Worker(queue, config)] if workers else []
    app = create_app_with_workers(
        queue, in_process, token=token, max_body_bytes=max_body_bytes, allowed_hosts=allowed_hosts
    )

    async def main() -> None:
        await queue.open()  # fail here, with the store's own message, rather than inside the lifespan
        role = f"{workers} worker slots on queues {','.join(queues)}" if workers else "no workers (API only)"
        auth = "bearer token required" if token else "no token (loopback only)"
        print(f"jobqueue API on {url_of(sock)} (docs: /docs), backend {queue.url}, {role}, {auth}",
              file=sys.stderr, flush=True)  # fmt: skip
        await serve(app, sock, log_level=log_level.lower(), limits=limits, access_log=access_log)

    try:
        run(main())
    finally:
        sock.close()
    exit_past_stuck_threads(in_process)
