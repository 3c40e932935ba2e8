"""A paused queue starts nothing in any worker process while another queue keeps running."""

from __future__ import annotations

import asyncio

import pytest

from jobqueue import JobQueue, JobState
from tests.integration.test_worker_faults import Cluster, cluster, wait_until

__all__ = ["cluster"]  # the fixture, imported for pytest
pytestmark = pytest.mark.slow
S = JobState


def completed(url: str) -> int:
    async def read() -> int:
        async with JobQueue(url) as app:
            stats = await app.stats()
        return sum(queue.counts[S.COMPLETED] for queue in stats.queues.values())

    return asyncio.run(read())


def test_a_paused_queue_starts_nothing_in_any_worker_until_resumed(cluster: Cluster) -> None:
    async def pause_and_fill() -> tuple[list[str], list[str]]:
        async with JobQueue(cluster.url) as app:
            await app.pause("mail")
            # Higher priority than the default queue's: a claim that ignored the pause would take these first.
            mail = [(await app.enqueue("record", n, queue="mail", priority=10)).id for n in range(20)]
            other = [(await app.enqueue("record", n)).id for n in range(20)]
        return mail, other

    mail, other = asyncio.run(pause_and_fill())
    for _ in range(2):
        cluster.worker("--queues", "default,mail", "--concurrency", "4")
    wait_until(lambda: completed(cluster.url) == 20, what="the default queue's 20 jobs")
    started = {row[1] for row in cluster.attempts("record")}
    assert started == set(other)  # not one of the paused queue's, in either process

    async def resume() -> None:
        async with JobQueue(cluster.url) as app:
            await app.resume("mail")

    asyncio.run(resume())
    wait_until(lambda: completed(cluster.url) == 40, what="the mail queue's jobs after the resume")
    assert {row[1] for row in cluster.attempts("record")} == set(mail) | set(other)
