"""The original JobQueue's demo as a scripted scenario on the storage core.

Seeds 15 jobs with random priorities, shows a duplicate idempotency key refused, floods the queue
until it pushes back, then processes everything with simulated failures (about 30 % of attempts)
so that retries and the dead-letter queue can be seen, and prints the statistics.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from jobqueue.backends import create_backend
from jobqueue.backends.base import (
    Accepted,
    Backend,
    ClaimParams,
    Completion,
    Duplicate,
    Failure,
    Lease,
    ListParams,
    Rejected,
)
from jobqueue.job import JobState, NewJob
from jobqueue.retry import RetryPolicy, retry_delay_after_failure

QUEUE = "default"
# Short delays so that the demo's retries play out in seconds, not minutes.
DEMO_POLICY = RetryPolicy(base=0.05, max_delay=0.4)


async def run_demo(url: str | None, capacity: int, failure_rate: float, seed: int | None, console: Console) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="jobqueue-demo-") as tmp:
        backend = create_backend(url or f"sqlite:///{Path(tmp) / 'demo.db'}")
        await backend.open()
        try:
            console.print(f"[bold]jobqueue demo[/] on [cyan]{backend.name}[/] (capacity {capacity} waiting jobs)")
            await _seed_and_flood(backend, capacity, rng, console)
            await _process(backend, failure_rate, rng, console)
            await _print_stats(backend, console)
        finally:
            await backend.close()


async def _seed_and_flood(backend: Backend, capacity: int, rng: random.Random, console: Console) -> None:
    limits = {QUEUE: capacity}
    seeds = [NewJob(f"process-order-{n}", idempotency_key=f"order-{n}", priority=rng.randint(1, 10)) for n in range(15)]
    accepted = sum(isinstance(o, Accepted) for o in await backend.enqueue(seeds, limits))
    console.print(f"1. seeded {accepted} jobs with random priorities")

    (dup,) = await backend.enqueue([NewJob("process-order-0 again", idempotency_key="order-0")], limits)
    if isinstance(dup, Duplicate):
        console.print(f"2. duplicate key 'order-0' refused: it is job {dup.job.id} ({dup.job.state})")

    flood_accepted = refused = 0
    n = 0
    while refused < 10:
        (outcome,) = await backend.enqueue([NewJob(f"flood-{n}", priority=rng.randint(1, 10))], limits)
        n += 1
        if isinstance(outcome, Rejected):
            refused += 1
        else:
            flood_accepted += 1
    console.print(f"3. flooded the queue: {flood_accepted} accepted, then {refused} refused with 'queue full'")


async def _process(backend: Backend, failure_rate: float, rng: random.Random, console: Console) -> None:
    console.print(f"4. processing; about {failure_rate:.0%} of attempts fail and are retried with backoff")
    worker = "demo-worker"
    while True:
        jobs = await backend.claim(ClaimParams([QUEUE], worker, limit=10))
        if not jobs:
            waiting = (await backend.stats()).queues[QUEUE].waiting
            if waiting == 0:
                return
            await backend.wait_for_work([QUEUE], 0.05)
            continue
        completions, failures = [], []
        for job in jobs:
            lease = Lease(job.id, job.lease_token)
            if rng.random() < failure_rate:
                delay = retry_delay_after_failure(job.retry_count, job.max_retries, DEMO_POLICY, rng)
                failures.append(Failure(lease, "simulated failure", delay))
            else:
                completions.append(Completion(lease, {"processed": job.payload}))
        await backend.complete(completions)
        await backend.fail(failures)


async def _print_stats(backend: Backend, console: Console) -> None:
    stats = await backend.stats()
    table = Table(title="queue statistics")
    table.add_column("queue")
    for state in JobState:
        table.add_column(state.value, justify="right")
    for queue, queue_stats in stats.queues.items():
        table.add_row(queue, *(str(queue_stats.counts[state]) for state in JobState))
    console.print(table)
    dead = await backend.list_jobs(ListParams(state=JobState.DEAD_LETTERED, limit=5))
    console.print(f"idempotency keys held: {stats.idempotency_keys}")
    for job in dead.jobs:
        console.print(f"  dead-lettered {job.id} after {job.retry_count} attempts: {job.error}")


def main(url: str | None, capacity: int, failure_rate: float, seed: int | None) -> None:
    asyncio.run(run_demo(url, capacity, failure_rate, seed, Console()))
