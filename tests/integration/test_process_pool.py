"""CPU-bound handlers in child processes: results, errors, and timeouts that kill the work."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from jobqueue import FakeClock, JobState, Worker, WorkerConfig
from jobqueue.app import JobQueue
from jobqueue.backends.memory import MemoryBackend
from tests.integration import procapp

pytestmark = pytest.mark.slow
S = JobState


@pytest.fixture
async def app() -> AsyncIterator[JobQueue]:
    procapp.app.use_backend("memory://", clock=FakeClock())  # a fresh store for each test
    async with procapp.app as queue:
        yield queue


async def test_process_tasks_run_in_children_with_their_job(app: JobQueue) -> None:
    job = await app.enqueue("pid", 1)
    worker = Worker(app, WorkerConfig(reaper_interval=None, process_pool_size=1))
    await worker.drain()
    done = await app.get(job.id)
    assert done is not None and done.state is S.COMPLETED
    assert done.result["pid"] != os.getpid() and done.result["attempt"] == 1


async def test_a_child_in_a_process_reads_its_parents_results(app: JobQueue) -> None:
    parent = await app.enqueue("pid", 1)
    child = await app.enqueue("parents", 2, depends_on=[parent])
    await Worker(app, WorkerConfig(reaper_interval=None, process_pool_size=1)).drain()
    done, finished = await app.get(parent.id), await app.get(child.id)
    assert done is not None and finished is not None and finished.state is S.COMPLETED
    assert finished.result == {"parents": [parent.id], "results": {parent.id: done.result}}


async def test_errors_retries_and_permanent_failures_cross_the_pipe(app: JobQueue) -> None:
    raised = await app.enqueue("raises", "x")
    retried = await app.enqueue("retry_me", 1)
    fatal = await app.enqueue("permanent", 1)
    await Worker(app, WorkerConfig(reaper_interval=None, process_pool_size=2)).drain()
    dead = await app.get(raised.id)
    assert dead is not None and dead.state is S.DEAD_LETTERED and dead.error == "ValueError: bad payload 'x'"
    waiting = await app.get(retried.id)
    assert waiting is not None and waiting.state is S.FAILED and waiting.error == "Retry: later"
    assert isinstance(app.backend, MemoryBackend)
    assert waiting.next_retry_at == app.backend.clock.time() + 30
    perm = await app.get(fatal.id)
    assert perm is not None and perm.state is S.DEAD_LETTERED and perm.retry_count == 1


async def test_timeout_kills_the_process_and_a_fresh_one_takes_the_next_job(app: JobQueue) -> None:
    stuck = await app.enqueue("spin", 1)
    after = await app.enqueue("pid", 2)
    worker = Worker(app, WorkerConfig(reaper_interval=None, concurrency=1, process_pool_size=1))
    await worker.drain()
    dead = await app.get(stuck.id)
    assert dead is not None and dead.state is S.DEAD_LETTERED
    assert dead.error == "timed out after 0.5 s (process killed)"
    done = await app.get(after.id)
    assert done is not None and done.state is S.COMPLETED


async def test_a_child_that_exits_fails_only_its_attempt(app: JobQueue) -> None:
    crashed = await app.enqueue("exit", 1)
    fine = await app.enqueue("pid", 2)
    await Worker(app, WorkerConfig(reaper_interval=None, concurrency=1, process_pool_size=1)).drain()
    dead = await app.get(crashed.id)
    assert dead is not None and dead.state is S.DEAD_LETTERED
    assert dead.error == "ChildDied: the process running the job exited (exit code 3)"
    done = await app.get(fine.id)
    assert done is not None and done.state is S.COMPLETED


async def test_worker_default_pool_process_runs_plain_functions_in_children(app: JobQueue) -> None:
    job = await app.enqueue("plain", 21)
    await Worker(app, WorkerConfig(reaper_interval=None, pool="process", process_pool_size=1)).drain()
    done = await app.get(job.id)
    assert done is not None and done.state is S.COMPLETED and done.result == 42
