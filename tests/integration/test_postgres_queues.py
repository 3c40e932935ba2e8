"""PostgreSQL paused queues across processes (two backend objects, each with pools of its own, stand
for two): a pause committed on one connection stops the claims that start after it on another, a
resume wakes a worker elsewhere by NOTIFY, and the state is the database's, not a process's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from jobqueue.backends import ClaimParams
from jobqueue.backends.postgres import PostgresBackend
from jobqueue.job import NewJob
from jobqueue.outcomes import Accepted
from tests.backends import opened


async def test_claims_that_start_after_a_pause_on_another_connection_never_get_its_jobs(
    shared: Callable[[], PostgresBackend],
) -> None:
    admin, worker = await opened(shared, 2)
    # Mail jobs rank first, so a claim that ignored the pause would take them before any other.
    mail = [NewJob(n, queue="mail", priority=5) for n in range(400)]
    outcomes = await admin.enqueue([*mail, *(NewJob(n) for n in range(400))])
    assert all(isinstance(o, Accepted) for o in outcomes)
    # A claim in flight while a call runs may go either way; one that starts once pause_queue has
    # returned (and ends before the resume is sent) must not get a mail job, and one that starts
    # once the resume has returned must.
    phase = "running"
    claims: list[tuple[str, str, set[str]]] = []  # the phases when a claim started and ended, its jobs' queues
    stop = False
    claimed = asyncio.Condition()

    async def claim_in_a_loop(name: str) -> None:
        while not stop:
            started_in = phase
            jobs = await worker.claim(ClaimParams(["mail", "default"], name, 2))
            claims.append((started_in, phase, {job.queue for job in jobs}))
            async with claimed:
                claimed.notify_all()

    async def claims_in(wanted: str, n: int) -> None:
        async with claimed:
            await claimed.wait_for(lambda: sum(started == wanted for started, _, _ in claims) >= n)

    loops = [asyncio.create_task(claim_in_a_loop(f"w{i}")) for i in range(2)]
    try:
        await asyncio.wait_for(claims_in("running", 10), 10)
        phase = "pausing"
        assert await admin.pause_queue("mail", True) is True
        phase = "paused"
        await asyncio.wait_for(claims_in("paused", 30), 10)
        assert await worker.paused_queues() == ["mail"]  # the database's state, seen by the other process
        phase = "resuming"
        assert await admin.pause_queue("mail", False) is False
        phase = "resumed"
        await asyncio.wait_for(claims_in("resumed", 10), 10)
    finally:
        stop = True
        await asyncio.gather(*loops)
    during = [queues for started, ended, queues in claims if started == ended == "paused"]
    assert during and all("mail" not in queues for queues in during)
    assert all(queues == {"default"} for queues in during)  # the other queue's jobs kept coming
    before = [queues for started, ended, queues in claims if ended == "running"]
    after = [queues for started, _, queues in claims if started == "resumed"]
    assert before and after and all("mail" in queues for queues in before + after)


async def test_a_resume_on_another_connection_wakes_a_waiting_worker_within_milliseconds(
    shared: Callable[[], PostgresBackend],
) -> None:
    admin, worker = await opened(shared, 2)
    await admin.pause_queue("mail", True)
    await admin.enqueue([NewJob("waits", queue="mail"), NewJob("due", queue="mail", delay=0.01)])
    await asyncio.sleep(0.05)  # the delayed job is due: still no work while the queue is paused
    await worker.wait_for_work(["mail"], 0.01)  # drain the enqueue's NOTIFY
    assert await worker.wait_for_work(["mail"], 0.1) is False
    waiter = asyncio.create_task(worker.wait_for_work(["mail"], 10))
    await asyncio.sleep(0.01)
    await admin.pause_queue("mail", False)
    started = time.perf_counter()  # from the commit: its disk wait is not the wake-up's
    assert await asyncio.wait_for(waiter, 5) is True
    assert time.perf_counter() - started < 0.5
    assert len(await worker.claim(ClaimParams(["mail"], "w", 10))) == 2


async def test_the_paused_state_outlives_its_processes_and_initial_is_decided_once(
    shared: Callable[[], PostgresBackend],
) -> None:
    # Nodes configured to start "reports" paused, starting together: one pause, and every node
    # answers it.
    nodes = await opened(shared, 4)
    assert await asyncio.gather(*(n.pause_queue("reports", True, initial=True) for n in nodes)) == [True] * 4
    await nodes[0].pause_queue("reports", False)
    for node in nodes:
        await node.close()
    # A restart with the same configuration keeps the resume made by hand; a pause made by hand
    # on another queue is still there.
    first, second = await opened(shared, 2)
    await first.pause_queue("mail", True)
    await first.close()
    restarted = await opened(shared, 1)
    assert await restarted[0].pause_queue("reports", True, initial=True) is False
    assert await second.paused_queues() == ["mail"]
