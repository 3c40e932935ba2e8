"""``jobqueue demo``: the original JobQueue's demo, over the HTTP API.

As ``go run main.go`` did: the API on a port, workers whose handler takes 50-300 ms and fails
about 30 % of attempts, then over HTTP: seed 15 jobs with random priorities, show a duplicate
idempotency key refused (409), flood the queue until it pushes back (503) and say how many were
refused, then show live statistics until Ctrl-C, which shuts down gracefully. The API is the full
one, so ``curl`` works against it while the demo runs.

Attempts match the original's: its ``max_retries: 3`` allowed 3 attempts in all, which is our
``max_retries=2`` (retries after the first attempt); its flood jobs had 2 attempts (ours: 1 retry).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from jobqueue.api.auth import check_bind
from jobqueue.api.server import bind, run, serve
from jobqueue.app import JobQueue
from jobqueue.cli.commands import stats_view
from jobqueue.serving import create_app_with_workers
from jobqueue.worker import Worker, WorkerConfig

SEEDS = 15
#: Seconds between refreshes of the live statistics.
REFRESH = 2.0


def demo_queue(url: str, capacity: int, failure_rate: float, rng: random.Random) -> JobQueue:
    """The demo's app: one default handler that sleeps 50-300 ms and fails ``failure_rate`` of attempts."""
    queue = JobQueue(url, capacity=capacity)

    @queue.default_handler
    async def process(payload: Any) -> dict[str, Any]:
        await asyncio.sleep(rng.uniform(0.05, 0.3))
        if rng.random() < failure_rate:
            raise RuntimeError("transient error: downstream service unavailable")
        return {"processed": payload}

    return queue


@contextmanager
def _store(url: str | None) -> Iterator[str]:
    """The backend URL: the one given, or a throw-away SQLite file (the embedded default)."""
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="jobqueue-demo-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'demo.db'}"


class Scenario:
    """The scripted part of the demo, run against the API at ``base_url``."""

    def __init__(self, client: httpx.AsyncClient, console: Console, rng: random.Random, capacity: int) -> None:
        self.client, self.console, self.rng, self.capacity = client, console, rng, capacity

    async def run(self) -> None:
        """The three steps, in the original's order."""
        await self.seed()
        await self.duplicate()
        await self.flood()

    async def seed(self) -> None:
        """15 jobs with random priorities and keys ``order-0`` .. ``order-14``."""
        codes = []
        for n in range(SEEDS):
            body = {"payload": f"task-{n}-data", "idempotency_key": f"order-{n}",
                    "priority": self.rng.randint(0, 9), "max_retries": 2}  # fmt: skip
            codes.append((await self.client.post("/jobs", json=body)).status_code)
        self.console.print(f"1. seeded {codes.count(202)} jobs with random priorities (POST /jobs -> 202)")
        if held := codes.count(409):
            # A store kept from an earlier run (--backend): its keys are still held.
            self.console.print(f"   {held} keys were already held by an earlier run on this store (409)")

    async def duplicate(self) -> None:
        """Submit with the key ``order-0`` again: the answer is 409 with the first job."""
        body = {"payload": "duplicate-task", "idempotency_key": "order-0", "priority": 5}
        answer = await self.client.post("/jobs", json=body)
        if answer.status_code == 409:
            holder = answer.json()
            self.console.print(f"2. duplicate key 'order-0' refused (409): it is job {holder['job_id']}, "
                               f"{holder['state']}")  # fmt: skip
        else:
            self.console.print(f"2. duplicate key 'order-0': unexpected answer {answer.status_code}")

    async def flood(self) -> None:
        """Submit ``capacity + 100`` jobs at once (200 at the default capacity, as the original)."""
        total = self.capacity + 100
        gate = asyncio.Semaphore(50)

        async def one(n: int) -> int:
            async with gate:
                body = {"payload": f"flood-{n}", "priority": self.rng.randint(0, 4), "max_retries": 1}
                return (await self.client.post("/jobs", json=body)).status_code

        codes = await asyncio.gather(*(one(n) for n in range(total)))
        accepted, refused = codes.count(202), codes.count(503)
        self.console.print(f"3. flooded the queue with {total} jobs: {accepted} accepted, then {refused} refused "
                           f"with 503 'queue full' (capacity {self.capacity})")  # fmt: skip


def _hints(base_url: str) -> str:
    return (
        f"The API is at {base_url} (OpenAPI: {base_url}/docs; dashboard: {base_url}/ui). Try, while this runs:\n"
        f"  curl -X POST {base_url}/jobs -H 'Content-Type: application/json' \\\n"
        """    -d '{"payload": "process-order-42", "idempotency_key": "order-42", "priority": 5}'\n"""
        f"  curl {base_url}/metrics      curl {base_url}/dlq      curl {base_url}/queues"
    )


async def _live_stats(
    client: httpx.AsyncClient, console: Console, duration: float | None, last: dict[str, Any]
) -> None:
    """Show ``GET /metrics`` every few seconds, for ``duration`` seconds (``None``: until Ctrl-C)."""
    started = time.monotonic()

    async def render() -> Group:
        metrics = (await client.get("/metrics")).json()
        last.update(metrics)
        elapsed = time.monotonic() - started
        footer = "Ctrl-C stops the demo (gracefully)" if duration is None else f"{elapsed:.0f} s"
        return Group(stats_view(metrics, "live statistics (GET /metrics)"), Text(footer, style="dim"))

    if duration == 0:
        console.print(await render())
        return
    with Live(await render(), console=console, refresh_per_second=4, auto_refresh=False) as live:
        while duration is None or time.monotonic() - started < duration:
            await asyncio.sleep(REFRESH if duration is None else min(REFRESH, duration))
            live.update(await render(), refresh=True)
    if not console.is_terminal:
        console.line()  # Live leaves its last line open when it is not drawing on a terminal


async def _main(
    queue: JobQueue, port: int, workers: int, rng: random.Random, duration: float | None, console: Console, failing: str
) -> dict[str, Any]:
    check_bind("127.0.0.1", None)
    sock = bind("127.0.0.1", port)
    worker = Worker(queue, WorkerConfig(concurrency=workers, grace=5.0))
    app = create_app_with_workers(queue, [worker])
    capacity = queue.capacity if isinstance(queue.capacity, int) else 0
    last: dict[str, Any] = {}

    async def scenario(base_url: str) -> None:
        console.print(_hints(base_url), soft_wrap=True, highlight=False)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            await Scenario(client, console, rng, capacity).run()
            await _live_stats(client, console, duration, last)

    await queue.open()
    backend = queue.backend_name
    console.print(f"[bold]jobqueue demo[/]: {workers} workers, capacity {capacity} waiting jobs, {backend} store; "
                  f"about {failing} of attempts fail and are retried with backoff")  # fmt: skip
    await serve(app, sock, on_started=scenario)
    return last


def main(
    url: str | None,
    *,
    port: int = 8080,
    workers: int = 5,
    capacity: int = 100,
    failure_rate: float = 0.3,
    seed: int | None = None,
    duration: float | None = None,
    console_factory: Callable[[], Console] = Console,
) -> None:
    """Run the demo; ``duration`` seconds of live statistics (``None``: until Ctrl-C, 0: print once)."""
    console = console_factory()
    rng = random.Random(seed)
    with _store(url) as store_url:
        queue = demo_queue(store_url, capacity, failure_rate, rng)
        last = run(_main(queue, port, workers, rng, duration, console, f"{failure_rate:.0%}"))
    if last:
        totals = last["totals"]
        console.print(f"demo stopped: {totals['completed']} completed, {last['dlq_size']} dead-lettered, "
                      f"{totals['rejected']} refused for capacity")  # fmt: skip
