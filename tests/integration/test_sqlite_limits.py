"""SQLite's queue limits across processes: workers each on a thread, an event loop and a backend of
their own (other processes, as far as SQLite knows) claim from one file while another backend
enqueues, so that some jobs are handed to waiting workers and others claimed. Together they never
run more than the limits allow, and the rate's tokens are shared: a clock that stands still
gives out the burst, no more, however many claim."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from jobqueue.backends import ClaimParams, Completion, Lease
from jobqueue.backends.sqlite import SQLiteBackend
from jobqueue.clock import Clock, FakeClock
from jobqueue.job import Job, JobState, NewJob
from jobqueue.limits import QueueLimits, Rate
from jobqueue.outcomes import Accepted

KEYS = ["a", "b", "c", "d", "e", None]


@dataclass
class Running:
    """The jobs workers hold, as they see them: always within what the store counts PROCESSING
    (added once a claim returns, removed before the complete), so within its limits too."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: dict[str, Job] = field(default_factory=dict)
    most: int = 0
    most_by_key: Counter[str] = field(default_factory=Counter)
    started: list[str] = field(default_factory=list)

    def add(self, jobs: list[Job]) -> None:
        with self.lock:
            for job in jobs:
                assert job.id not in self.jobs
                self.jobs[job.id] = job
                self.started.append(job.id)
            self.most = max(self.most, len(self.jobs))
            for key, n in Counter(j.rate_key for j in self.jobs.values() if j.rate_key is not None).items():
                self.most_by_key[key] = max(self.most_by_key[key], n)

    def remove(self, jobs: list[Job]) -> None:
        with self.lock:
            for job in jobs:
                del self.jobs[job.id]


def worker(db: Path, name: str, running: Running, stop: threading.Event, errors: list[BaseException]) -> None:
    async def loop() -> None:
        async with SQLiteBackend(db, durability="normal") as backend:
            params = ClaimParams(["default"], name, 2, 30.0)
            held: list[Job] = []
            while not stop.is_set():
                jobs = await backend.claim_or_wait(params)
                running.add(jobs)
                # The jobs of the claim before are done only now: each worker holds up to two
                # claims' worth, so that the limits, not the speed of a no-op, bound the running.
                running.remove(held)
                assert all(await backend.complete([Completion(Lease(j.id, j.lease_token)) for j in held]))
                held = jobs
                if not jobs:
                    await backend.wait_for_work(["default"], 0.02)
            running.remove(held)
            await backend.complete([Completion(Lease(j.id, j.lease_token)) for j in held])
            await backend.forget_worker(name)

    try:
        asyncio.run(loop())
    except BaseException as exc:
        errors.append(exc)


async def test_workers_of_many_processes_never_run_more_than_the_limits_together(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    total = 600
    async with SQLiteBackend(db, durability="normal") as producer:
        await producer.set_queue_limits("default", QueueLimits(concurrency=4, key_concurrency=1))
        running, stop = Running(), threading.Event()
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=worker, args=(db, f"w{n}", running, stop, errors), name=f"limits-w{n}")
            for n in range(4)
        ]
        for thread in threads:
            thread.start()
        handed = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        try:
            # Every worker waits for work before the first job comes: the first ones are handed.
            while (
                await producer._read(lambda conn: conn.execute("SELECT count(*) FROM waiting_workers").fetchone()[0])
                < 4
            ):
                assert loop.time() < deadline and not errors, errors
                await producer.wait_for_work(["default"], 0.01)
            for start in range(0, total, 5):  # a trickle, so that workers wait and are handed jobs
                outcomes = await producer.enqueue(
                    [NewJob(n, rate_key=KEYS[n % len(KEYS)]) for n in range(start, start + 5)]
                )
                handed += sum(1 for o in outcomes if isinstance(o, Accepted) and o.job.worker_id is not None)
            while len(running.started) < total and not errors:
                assert loop.time() < deadline, f"{len(running.started)} of {total} jobs started"
                await producer.wait_for_work(["default"], 0.05)
        finally:
            stop.set()
            for thread in threads:
                await asyncio.to_thread(thread.join, 30)
        assert not errors, errors
        assert len(running.started) == len(set(running.started)) == total
        assert running.most <= 4
        assert max(running.most_by_key.values()) == 1
        assert handed > 0  # some went the hand-off's way, and kept to the limits too
        assert (await producer.stats()).queues["default"].counts[JobState.COMPLETED] == total


async def test_claims_of_many_processes_share_the_tokens_of_a_rate(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    clock: Clock = FakeClock()  # stands still: no token comes back while they claim
    limits = QueueLimits(rate=Rate(8, 1.0, 8), key_rate=Rate(1, 1.0, 2))
    async with SQLiteBackend(db, clock=clock) as setup:
        await setup.set_queue_limits("default", limits)
        await setup.enqueue([NewJob(n, rate_key="abcde"[n % 5]) for n in range(50)])

    def claimer(name: str, taken: list[Job]) -> None:
        async def run() -> None:
            async with SQLiteBackend(db, clock=clock, durability="normal") as backend:
                for _ in range(20):
                    taken.extend(await backend.claim(ClaimParams(["default"], name, 1, 30.0)))

        asyncio.run(run())

    taken: list[Job] = []
    threads = [threading.Thread(target=claimer, args=(f"c{n}", taken)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join, 60)
    assert len(taken) == 8  # the queue's burst, of the ten tokens its five keys hold
    assert max(Counter(job.rate_key for job in taken).values()) <= 2
