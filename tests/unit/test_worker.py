"""The worker and task API against every backend, driven by drain, the fake clock and test signals."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from jobqueue import FakeClock, JobState, PermanentError, Retry
from jobqueue.app import JobQueue
from jobqueue.backends import Backend, ClaimParams, Completion
from jobqueue.backends.memory import MemoryBackend
from jobqueue.errors import BackendUnavailable, ConfigurationError, QueueFull
from jobqueue.job import Job, NewJob
from jobqueue.retention import Retention
from jobqueue.retry import RetryPolicy
from jobqueue.task import current_job
from jobqueue.worker import WORKER_LOST, Worker, WorkerConfig

S = JobState


@pytest.fixture
async def app(backend: Backend) -> AsyncIterator[JobQueue]:
    queue = JobQueue(backend=backend)
    await queue.open()
    yield queue


def worker(app: JobQueue, clock: FakeClock | None = None, **config: Any) -> Worker:
    """A worker without a reaper (tests run it by hand), on ``clock`` if given, with its signals on."""
    config.setdefault("reaper_interval", None)
    made = Worker(app, WorkerConfig(**config), clock=clock)
    made.signals.init()
    return made


async def test_async_and_sync_handlers_run_and_store_results(app: JobQueue) -> None:
    @app.task(name="add")
    async def add(payload: dict[str, int]) -> int:
        return payload["a"] + payload["b"]

    @app.task(name="shout")
    def shout(payload: str) -> str:
        assert threading.current_thread() is not threading.main_thread()
        return payload.upper()

    jobs = [await add.enqueue({"a": 2, "b": 3}), await shout.enqueue("hi")]
    w = worker(app)
    assert w.last_claim_at is None
    await w.drain()
    assert w.last_claim_at is not None
    results = [await app.get(j.id) for j in jobs]
    assert [(j.state, j.result) for j in results if j] == [(S.COMPLETED, 5), (S.COMPLETED, "HI")]
    assert w.metrics.completed == 2


async def test_jobs_without_a_task_go_to_the_default_handler(app: JobQueue) -> None:
    seen: list[object] = []

    @app.default_handler
    async def handle(payload: object) -> None:
        seen.append(payload)

    job = await app.enqueue("default", "process-order-42")
    await worker(app).drain()
    assert seen == ["process-order-42"]
    assert (await app.wait(job.id, timeout=5)).state is S.COMPLETED


async def test_retry_schedule_follows_backoff_then_dead_letters(app: JobQueue, clock: FakeClock) -> None:
    attempts: list[float] = []

    @app.task(name="flaky", max_retries=3)
    async def flaky(payload: object) -> None:
        attempts.append(clock.time())
        raise RuntimeError(f"attempt {len(attempts)} failed")

    job = await flaky.enqueue("x")
    w = worker(app)
    policy = RetryPolicy()
    for retry in range(1, 4):
        await w.drain()
        failed = await app.get(job.id)
        assert failed is not None and failed.state is S.FAILED and failed.retry_count == retry
        assert failed.next_retry_at is not None
        wait = failed.next_retry_at - clock.time()
        backoff = policy.backoff(retry)
        assert backoff * 0.75 <= wait <= backoff * 1.25
        await w.drain()  # not due yet: nothing runs
        assert len(attempts) == retry
        clock.advance(wait)
    await w.drain()
    dead = await app.get(job.id)
    assert dead is not None and dead.state is S.DEAD_LETTERED
    assert len(attempts) == 4 and dead.retry_count == 4
    assert dead.error == "RuntimeError: attempt 4 failed"
    assert [j.id for j in (await app.dead_letters()).jobs] == [job.id]


async def test_retry_request_and_permanent_error(app: JobQueue, clock: FakeClock) -> None:
    @app.task(name="later")
    async def later(payload: object) -> str:
        if current_job().attempt == 1:
            raise Retry(delay=60, reason="not yet")
        return "done"

    @app.task(name="fatal")
    async def fatal(payload: object) -> None:
        raise PermanentError("bad input")

    a, b = await later.enqueue(1), await fatal.enqueue(2)
    w = worker(app)
    await w.drain()
    waiting = await app.get(a.id)
    assert waiting is not None and waiting.state is S.FAILED and waiting.error == "Retry: not yet"
    assert waiting.next_retry_at == clock.time() + 60
    dead = await app.get(b.id)
    assert dead is not None and dead.state is S.DEAD_LETTERED and dead.retry_count == 1
    assert dead.error == "PermanentError: bad input"
    clock.advance(60)
    await w.drain()
    done = await app.get(a.id)
    assert done is not None and done.state is S.COMPLETED and done.result == "done"


async def test_handler_reads_its_job(app: JobQueue) -> None:
    seen: list[tuple[int, str | None]] = []

    @app.task(name="introspect")
    def introspect(payload: object) -> None:
        job = current_job()
        seen.append((job.attempt, job.idempotency_key))

    await introspect.enqueue(1, idempotency_key="key-1")
    await worker(app).drain()
    assert seen == [(1, "key-1")]


async def test_unknown_task_fails_clearly_then_dead_letters(app: JobQueue, clock: FakeClock) -> None:
    job = await app.enqueue("nobody.knows", 1, max_retries=1)
    w = worker(app)
    await w.drain()
    failed = await app.get(job.id)
    assert failed is not None and failed.state is S.FAILED
    assert failed.error == "UnknownTask: no handler for task 'nobody.knows' in this worker"
    clock.advance(60)
    await w.drain()
    dead = await app.get(job.id)
    assert dead is not None and dead.state is S.DEAD_LETTERED


async def test_async_timeout_cancels_the_handler(app: JobQueue) -> None:
    cancelled = asyncio.Event()

    @app.task(name="slow", timeout=0.05, max_retries=0)
    async def slow(payload: object) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = await slow.enqueue(1)
    await worker(app).drain()
    assert cancelled.is_set()
    dead = await app.get(job.id)
    assert dead is not None and dead.state is S.DEAD_LETTERED
    assert dead.error is not None and "timed out after 0.05 s" in dead.error


async def test_a_job_enqueued_without_the_tasks_defaults_still_gets_its_timeout(app: JobQueue) -> None:
    # As a producer that knew nothing of the task would store it: no timeout of its own.
    job = NewJob(1, task="slow", max_retries=0)
    await app.enqueue_many([job])
    assert job.timeout is None

    @app.task(name="slow", timeout=0.05, max_retries=0)
    async def slow(payload: object) -> None:
        await asyncio.Event().wait()

    await worker(app).drain()
    dead = await app.get(job.id)
    assert dead is not None and dead.error is not None and "timed out after 0.05 s" in dead.error


async def test_thread_past_timeout_is_reported_and_its_result_discarded(app: JobQueue) -> None:
    release = threading.Event()

    @app.task(name="stuck", timeout=0.05, max_retries=0)
    def stuck(payload: object) -> str:
        release.wait(5)
        return "late"

    job = await stuck.enqueue(1)
    w = worker(app)
    try:
        await w.drain()
    finally:
        release.set()
    assert w.metrics.abandoned_threads == 1
    dead = await app.get(job.id)
    assert dead is not None and dead.state is S.DEAD_LETTERED and dead.result is None
    assert dead.error is not None and "thread left running, result discarded" in dead.error


async def test_lost_lease_stops_the_work(app: JobQueue, clock: FakeClock) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    @app.task(name="long")
    async def long(payload: object) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = await long.enqueue(1)
    frozen = FakeClock()  # the worker's own clock stands still, as a stopped process's would
    w = worker(app, frozen, lease=10)
    runner = asyncio.create_task(w.run())
    await asyncio.wait_for(started.wait(), 5)
    clock.advance(11)  # the store's time passes the lease
    assert await worker(app).reaper.run_once() == 1  # another worker's reaper takes the job back
    frozen.advance(10 / 3)  # the worker comes back to life: its heartbeat is due
    assert await w.signals.heartbeat_sent.wait() == [False]
    await asyncio.wait_for(cancelled.wait(), 5)
    w.stop()
    await asyncio.wait_for(runner, 5)
    recovered = await app.get(job.id)
    assert recovered is not None and recovered.state is S.FAILED and recovered.error == WORKER_LOST
    assert w.metrics.completed == 0


async def test_heartbeats_keep_a_long_job_leased(app: JobQueue, clock: FakeClock) -> None:
    started, finish = asyncio.Event(), asyncio.Event()

    @app.task(name="long")
    async def long(payload: object) -> str:
        started.set()
        await finish.wait()
        return "ok"

    job = await long.enqueue(1)
    w = worker(app, clock, lease=10)
    runner = asyncio.create_task(w.run())
    await asyncio.wait_for(started.wait(), 5)
    for _ in range(20):  # 20 leases long, renewed every lease/3 by the worker's heartbeat timer
        clock.advance(10 / 3)
        assert await w.signals.heartbeat_sent.wait() == [True]
        assert await worker(app).reaper.run_once() == 0
    finish.set()
    w.stop()
    await asyncio.wait_for(runner, 5)
    done = await app.get(job.id)
    assert done is not None and done.state is S.COMPLETED and done.retry_count == 0


async def test_the_reaper_runs_on_the_workers_clock(app: JobQueue, backend: Backend, clock: FakeClock) -> None:
    job = await app.enqueue("t", 1, max_retries=1)
    (held,) = await backend.claim(ClaimParams(["default"], "a-worker-that-died", 1, lease=10))
    w = worker(app, clock, reaper_interval=5.0)
    runner = asyncio.create_task(w.run())
    assert await w.signals.lease_recovered.wait() == 0  # its first look, at start: nothing expired
    clock.advance(11)  # the lease has expired, and the reaper's next look (every 4-6 s) is due
    assert await w.signals.lease_recovered.wait() == 1
    recovered = await app.get(job.id)
    assert recovered is not None and recovered.state is S.FAILED and recovered.error == WORKER_LOST
    assert held.id == job.id and w.metrics.recovered == 1
    w.stop()
    await asyncio.wait_for(runner, 5)


async def test_the_cleaner_runs_on_the_workers_clock(app: JobQueue, clock: FakeClock) -> None:
    @app.task(name="ok")
    async def ok(payload: object) -> object:
        return payload

    job = await ok.enqueue(1)
    w = worker(app, clock, retention=Retention(completed=60, interval=100))
    runner = asyncio.create_task(w.run())
    assert (await w.signals.finished.wait()).id == job.id
    clock.advance(79)  # kept 60 s, pruned every 80-120 s: not yet
    assert w.signals.pruned.pending() == 0 and await app.get(job.id) is not None
    clock.advance(41)
    assert (await w.signals.pruned.wait()).jobs == 1
    assert await app.get(job.id) is None
    w.stop()
    await asyncio.wait_for(runner, 5)


async def test_graceful_stop_releases_jobs_past_the_grace(app: JobQueue, clock: FakeClock) -> None:
    started = asyncio.Event()

    @app.task(name="forever")
    async def forever(payload: object) -> None:
        started.set()
        await asyncio.Event().wait()

    @app.task(name="quick")
    async def quick(payload: object) -> str:
        return "ok"

    long_job = await forever.enqueue(1)
    w = worker(app, clock, grace=10)
    runner = asyncio.create_task(w.run())
    await asyncio.wait_for(started.wait(), 5)
    quick_job = await quick.enqueue(2)
    await app.wait(quick_job.id, timeout=5)
    w.stop()
    assert await w.signals.stopping.wait() == 1  # one job still running: it gets the grace
    clock.advance(9.9)
    still = await app.get(long_job.id)  # a store call: the worker has had its turns meanwhile
    assert still is not None and still.state is S.PROCESSING and not runner.done()
    clock.advance(0.1)
    await asyncio.wait_for(runner, 5)
    released = await app.get(long_job.id)
    assert released is not None and released.state is S.PENDING and released.retry_count == 0
    assert w.metrics.released == 1


async def test_fetch_claims_at_most_free_slots(app: JobQueue, backend: Backend) -> None:
    gate, full = asyncio.Event(), asyncio.Event()
    running = 0
    peak = 0

    @app.task(name="gated")
    async def gated(payload: object) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 3:
            full.set()
        await gate.wait()
        running -= 1

    for n in range(10):
        await gated.enqueue(n)
    w = worker(app, concurrency=3)
    runner = asyncio.create_task(w.drain())
    await asyncio.wait_for(full.wait(), 5)
    # The worker holds exactly its 3 slots; the other 7 are still claimable by anyone.
    assert len(await backend.claim(ClaimParams(["default"], "probe", 100))) == 7
    gate.set()
    await asyncio.wait_for(runner, 10)
    assert peak == 3


async def test_a_worker_with_nothing_to_claim_waits_instead_of_claiming_again(app: JobQueue, backend: Backend) -> None:
    started, gate = asyncio.Event(), asyncio.Event()

    @app.task(name="gated")
    async def gated(payload: object) -> None:
        started.set()
        await gate.wait()

    claims = 0
    claim = backend.claim

    async def counting_claim(params: ClaimParams) -> list[Job]:
        nonlocal claims
        claims += 1
        return await claim(params)

    backend.claim = counting_claim  # type: ignore[method-assign]
    job = await gated.enqueue(1)
    w = worker(app, concurrency=10)
    runner = asyncio.create_task(w.run())
    await asyncio.wait_for(started.wait(), 5)
    await w.signals.waiting.wait()  # the fetch loop looked for more work, found none and waits
    gate.set()  # the job ends while the fetch loop waits: its freed slot interrupts the wait
    assert (await app.wait(job.id, timeout=5)).state is S.COMPLETED
    before = claims
    for _ in range(300):  # loop turns in which a spinning fetch loop would claim again and again
        await asyncio.sleep(0)
    # Nothing is due and nothing runs: a claim or two after the freed slot at most, then it waits.
    assert claims - before <= 2
    w.stop()
    await asyncio.wait_for(runner, 10)


async def test_capacity_and_duplicates_through_the_app(backend: Backend) -> None:
    app = JobQueue(backend=backend, capacity=2)
    first = await app.enqueue("t", 1, idempotency_key="k")
    assert (await app.enqueue("t", 2, idempotency_key="k")).id == first.id
    await app.enqueue("t", 3)
    with pytest.raises(QueueFull):
        await app.enqueue("t", 4)
    with pytest.raises(TypeError):
        await app.enqueue("t", 5, colour="blue")


async def test_sync_enqueue_from_a_plain_thread_while_a_worker_runs(app: JobQueue) -> None:
    @app.task(name="echo")
    async def echo(payload: object) -> object:
        return payload

    w = worker(app)
    runner = asyncio.create_task(w.run())
    job = await asyncio.to_thread(echo.enqueue_sync, {"from": "thread"})
    done = await app.wait(job.id, timeout=5)
    assert done.result == {"from": "thread"}
    w.stop()
    await asyncio.wait_for(runner, 5)


def test_sync_only_usage_needs_no_event_loop(tmp_path: Path) -> None:
    app = JobQueue(f"sqlite:///{tmp_path / 'sync.db'}")
    try:
        job = app.enqueue_sync("report", {"month": 11}, priority=3, delay=60)
        stored = app.get_sync(job.id)
        assert stored is not None and stored.state is S.SCHEDULED and stored.priority == 3
    finally:
        app.close_sync()


def test_pool_must_match_the_handler_kind() -> None:
    app = JobQueue("memory://")

    async def coroutine(payload: object) -> None: ...

    def plain(payload: object) -> None: ...

    with pytest.raises(ConfigurationError):
        app.task(name="a", pool="process")(coroutine)
    with pytest.raises(ConfigurationError):
        app.task(name="b", pool="async")(plain)
    assert app.task(name="c", pool="process")(plain).pool_for("thread") == "process"
    assert app.task(name="d")(plain).pool_for("process") == "process"
    assert app.task(name="e")(coroutine).pool_for("process") == "async"


class FlakyBackend(MemoryBackend):
    """A memory backend whose claims and waits fail a few times, like a store that restarts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise BackendUnavailable("store restarting")

    async def claim(self, params: ClaimParams) -> list[Job]:
        self._maybe_fail()
        return await super().claim(params)

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        self._maybe_fail()
        return await super().wait_for_work(queues, timeout)


async def test_worker_rides_out_a_store_outage() -> None:
    backend = FlakyBackend(failures=4)
    app = JobQueue(backend=backend)

    @app.task(name="echo")
    async def echo(payload: object) -> object:
        return payload

    w = worker(app, poll_interval=0.01)
    runner = asyncio.create_task(w.run())
    job = await echo.enqueue("after the outage")
    done = await app.wait(job.id, timeout=10)
    assert done.result == "after the outage" and backend.failures == 0
    w.stop()
    await asyncio.wait_for(runner, 5)


class UnwritableBackend(MemoryBackend):
    """A memory backend that cannot record completions for a while (``None``: ever)."""

    def __init__(self, failures: int | None) -> None:
        super().__init__()
        self.failures = failures

    async def complete(self, completions: Sequence[Completion]) -> list[bool]:
        if self.failures is None or self.failures > 0:
            self.failures = None if self.failures is None else self.failures - 1
            raise BackendUnavailable("store restarting")
        return await super().complete(completions)


async def test_an_outcome_the_store_could_not_take_is_retried_while_the_lease_holds() -> None:
    app = JobQueue(backend=UnwritableBackend(failures=3))
    runs: list[object] = []

    @app.task(name="once")
    async def once(payload: object) -> object:
        runs.append(payload)
        return payload

    job = await once.enqueue("x")
    w = worker(app, lease=5)
    await w.drain()
    done = await app.get(job.id)
    assert done is not None and done.state is S.COMPLETED and done.retry_count == 0 and runs == ["x"]
    assert w.signals.outcome_retrying.pending() == 3 and w.metrics.completed == 1


async def test_an_outcome_is_given_up_after_a_lease_and_left_to_recovery() -> None:
    app = JobQueue(backend=UnwritableBackend(failures=None))

    @app.task(name="once")
    async def once(payload: object) -> object:
        return payload

    job = await once.enqueue("x")
    w = worker(app, lease=0.3)  # retried after 0.05 and 0.1 s; the next pause would pass the lease
    await w.drain()
    stored = await app.get(job.id)
    assert stored is not None and stored.state is S.PROCESSING  # the reaper takes it back on expiry
    assert w.signals.outcome_retrying.pending() >= 1 and w.metrics.lost_leases == 1


def _raises_in_a_child(payload: str) -> None:
    raise LookupError(f"no {payload}")


async def test_a_failed_attempt_keeps_its_handlers_traceback(app: JobQueue) -> None:
    @app.task(name="breaks", max_retries=0)
    async def breaks(payload: dict[str, str]) -> None:
        raise KeyError(payload["missing"])

    @app.task(name="nobody", max_retries=0)
    async def nobody(payload: object) -> None:
        return None

    broken = await breaks.enqueue({"missing": "sku"})
    unknown = await app.enqueue("not-registered-here", 1, max_retries=0)
    await worker(app).drain()
    (attempt,) = await app.attempt_errors(broken.id)
    assert attempt.error == "KeyError: 'sku'" and attempt.traceback is not None
    assert "in breaks" in attempt.traceback and attempt.traceback.rstrip().endswith("KeyError: 'sku'")
    (refused,) = await app.attempt_errors(unknown.id)
    assert refused.error.startswith("UnknownTask") and refused.traceback is None  # jobqueue's own refusal


def test_a_process_childs_traceback_comes_back_with_its_failure() -> None:
    from jobqueue.worker.processes import RemoteFailure, _raise_or_return, _run_one

    job = Job("j", "default", "t", "sku", 0, S.PROCESSING, 0, 0, None, 0.0, 0.0)
    fields = {name: getattr(job, name) for name in job.__slots__}  # as the pool sends it (JSON)
    message = json.loads(json.dumps({"job": fields, "module": __name__, "qualname": "_raises_in_a_child"}))
    reply = _run_one(message)
    with pytest.raises(RemoteFailure) as failure:
        _raise_or_return(reply)
    assert str(failure.value) == "LookupError: no sku"
    assert failure.value.traceback is not None and "_raises_in_a_child" in failure.value.traceback
