"""SQLite's paused queues across processes: a worker claims in a loop on a thread and a connection
of its own while another backend object on the file (another process, as far as SQLite knows)
enqueues, pauses and resumes a queue. Every claim that starts after the pause has returned sees
it; the other queue's jobs keep coming; after the resume the paused queue's come again."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from jobqueue.backends import ClaimParams, Completion, Lease
from jobqueue.backends.sqlite import SQLiteBackend
from jobqueue.job import Job, JobState, NewJob
from jobqueue.outcomes import Accepted

QUEUES = ["mail", "default"]
#: The phases a claim can start in: before the pause, after it returned, once the resume began.
RUNNING, PAUSED, RESUMING = 0, 1, 2


@dataclass
class Worker:
    """A worker's loop on its own thread and event loop, recording each claim with its phase."""

    db: Path
    phase: int = RUNNING  # set by the test's thread; read before each claim starts
    claims: list[tuple[int, list[Job]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._loop())
        except BaseException as exc:
            self.error = exc

    async def _loop(self) -> None:
        async with SQLiteBackend(self.db, durability="normal") as backend:
            params = ClaimParams(QUEUES, "w1", 4, 30.0)
            while not self.stop.is_set():
                started = self.phase
                jobs = await backend.claim_or_wait(params)
                self.claims.append((started, jobs))
                if jobs:
                    done = await backend.complete([Completion(Lease(j.id, j.lease_token), None) for j in jobs])
                    assert all(done)
                else:
                    await backend.wait_for_work(QUEUES, 0.02)
            await backend.forget_worker("w1")

    def taken(self, phase: int, queue: str) -> list[Job]:
        return [job for started, jobs in list(self.claims) if started == phase for job in jobs if job.queue == queue]


async def until(condition: Callable[[], bool], what: str, feed: Callable[[], Awaitable[None]]) -> None:
    """Feed more jobs until ``condition`` holds, for 20 s at most."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await feed()
        await asyncio.sleep(0.002)


async def test_a_pause_from_another_process_holds_for_every_claim_after_it(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    async with SQLiteBackend(db, durability="normal") as producer:
        # A backlog, so that the pause has waiting jobs of its queue to hold back.
        backlog = [NewJob(n, queue="mail") for n in range(1500)] + [NewJob(n) for n in range(100)]
        assert all(type(o) is Accepted for o in await producer.enqueue(backlog))
        worker = Worker(db)
        thread = threading.Thread(target=worker.run, name="pause-test-worker")
        thread.start()
        handed_mail: list[str] = []  # mail jobs handed to w1 by an enqueue (claimed for it there)
        handed_default = 0
        try:

            async def feed() -> None:
                nonlocal handed_default
                outcomes = await producer.enqueue([NewJob("m", queue="mail"), NewJob("d")])
                for outcome in outcomes:
                    assert type(outcome) is Accepted
                    if outcome.job.state is JobState.PROCESSING:
                        if outcome.job.queue == "mail":
                            handed_mail.append(outcome.job.id)
                        else:
                            handed_default += 1

            await until(lambda: len(worker.taken(RUNNING, "mail")) >= 8, "mail jobs before the pause", feed)
            assert await producer.pause_queue("mail", True) is True
            worker.phase = PAUSED
            in_flight = set(handed_mail)  # handed before the pause: the worker may still receive them
            await until(
                lambda: len(worker.taken(PAUSED, "default")) >= 30 and handed_default > 0,
                "default jobs, claimed and handed, while mail is paused",
                feed,
            )
            assert {job.id for job in worker.taken(PAUSED, "mail")} <= in_flight  # (and again at the end)
            assert set(handed_mail) == in_flight  # no mail job was handed during the pause
            assert (await producer.stats()).queues["mail"].waiting > 0  # held back, not run out
            worker.phase = RESUMING
            assert await producer.pause_queue("mail", False) is False
            await until(lambda: bool(worker.taken(RESUMING, "mail")), "mail jobs after the resume", feed)
        finally:
            worker.stop.set()
            await asyncio.to_thread(thread.join, 30)
        assert worker.error is None, worker.error
        assert not thread.is_alive()
        # No claim that started after the pause returned got a mail job but one handed before it.
        assert {job.id for job in worker.taken(PAUSED, "mail")} <= in_flight
        ids = [job.id for _, jobs in worker.claims for job in jobs]
        assert len(ids) == len(set(ids))  # and each job was claimed once


async def test_a_pause_outlives_a_restart_and_initial_does_not_redo_it(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    async with SQLiteBackend(db) as first:
        assert await first.pause_queue("mail", True, initial=True) is True  # configured to start paused
        assert await first.pause_queue("reports", True) is True
        await first.enqueue([NewJob(1, queue="mail")])
        assert await first.pause_queue("mail", False) is False  # resumed by hand
    async with SQLiteBackend(db) as second:
        assert await second.paused_queues() == ["reports"]
        assert await second.pause_queue("mail", True, initial=True) is False  # the restart keeps it resumed
        assert [job.payload for job in await second.claim(ClaimParams(QUEUES, "w", 5))] == [1]
