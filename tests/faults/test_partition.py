"""A network partition between jobqueue and its server store (PostgreSQL, Redis): callers are
answered "unavailable" within the statement (command) timeout, not left hanging, and everything
works again once the network heals.

The traffic goes through :class:`~tests.faults.proxy.FaultProxy`, which drops every byte while
blackholed: no FIN, no RST, as a real partition looks to both ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from jobqueue import JobQueue, JobState, Worker, WorkerConfig
from jobqueue.api import create_app
from jobqueue.backends.redis import RedisBackend
from jobqueue.errors import BackendUnavailable
from tests.backends import (
    drop_postgres_schema,
    require_postgres,
    require_redis,
    unique_prefix,
    unique_schema,
)
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.slow
STATEMENT_TIMEOUT = 1.0
#: The most any call may take in the partition: a statement's timeout, the client's second on top,
#: and a fresh connection's timeout; with room for a loaded machine. Without the timeouts, calls
#: hang for the whole partition (the test's own guard then fails them at GUARD).
BOUND = 6.0
GUARD = 30.0


@pytest.fixture(params=["postgres", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    return require_postgres() if request.param == "postgres" else require_redis()


@pytest.fixture
def proxy(store: str) -> Iterator[FaultProxy]:
    target = urlsplit(store)
    started = FaultProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
async def queue(store: str, proxy: FaultProxy) -> AsyncIterator[JobQueue]:
    target = urlsplit(store)
    if target.scheme == "postgresql":
        schema = unique_schema()
        url = (f"postgresql://{target.username}@127.0.0.1:{proxy.port}{target.path}?schema={schema}"
               f"&pool_size=2&statement_timeout={STATEMENT_TIMEOUT}&connect_timeout=2")  # fmt: skip
    else:
        prefix = unique_prefix()
        url = (f"redis://127.0.0.1:{proxy.port}{target.path}?prefix={prefix}"
               f"&command_timeout={STATEMENT_TIMEOUT}&connect_timeout=2")  # fmt: skip
    opened = JobQueue(url)
    await opened.open()
    try:
        yield opened
    finally:
        proxy.heal()
        await opened.close()
        if target.scheme == "postgresql":
            drop_postgres_schema(schema)
        else:
            keys = RedisBackend(store, prefix=prefix)  # the server itself, not through the proxy
            await keys.open()
            await keys.drop()
            await keys.close()


async def timed(call: object) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(call, GUARD)  # type: ignore[arg-type]
    except (BackendUnavailable, TimeoutError) as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


async def test_calls_fail_as_unavailable_within_the_timeout_and_recover(queue: JobQueue, proxy: FaultProxy) -> None:
    job = await queue.enqueue("default", "before")
    with proxy.partition():
        for name, call in [("enqueue", queue.enqueue("default", "during")), ("get", queue.get(job.id)),
                           ("stats", queue.stats())]:  # fmt: skip
            took, error = await timed(call)
            assert isinstance(error, BackendUnavailable), (name, error)
            assert took < BOUND, (name, took)
    # Healed: the same queue works again, on fresh connections.
    after = await queue.enqueue("default", "after")
    assert (await queue.get(after.id)) is not None and (await queue.get(job.id)) is not None


async def test_the_api_answers_503_with_retry_after_during_a_partition(queue: JobQueue, proxy: FaultProxy) -> None:
    app = create_app(queue, ready_timeout=1.0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=GUARD) as client:
        assert (await client.post("/jobs", json={"payload": 1})).status_code == 202
        with proxy.partition():
            for method, path in [("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/ready")]:
                started = time.monotonic()
                body = {"payload": 2} if method == "POST" else None
                response = await asyncio.wait_for(client.request(method, path, json=body), GUARD)
                assert response.status_code == 503, (path, response.text)
                assert "retry-after" in response.headers and "error" in response.json()
                assert time.monotonic() - started < BOUND, path
        assert (await client.post("/jobs", json={"payload": 3})).status_code == 202


async def test_a_worker_rides_out_a_partition_without_running_its_job_twice(queue: JobQueue, proxy: FaultProxy) -> None:
    """The job ends during the partition: its completion fails fast (statement timeout) and is
    retried once the network heals, while the lease still holds. Without the retry the outcome is
    dropped, the lease expires and the reaper runs the job a second time."""
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[int] = []

    @queue.task(name="held")
    async def held(n: int) -> str:
        runs.append(n)
        started.set()
        await release.wait()
        return "done"

    job = await held.enqueue(1)
    worker = Worker(queue, WorkerConfig(concurrency=1, lease=8, poll_interval=0.05, reaper_interval=0.5))
    worker.signals.init()
    draining = asyncio.create_task(worker.drain())
    await asyncio.wait_for(started.wait(), GUARD)
    with proxy.partition():
        release.set()
        await worker.signals.outcome_retrying.wait(timeout=BOUND)  # failed fast, not hung
    await asyncio.wait_for(draining, GUARD)
    done = await queue.get(job.id)
    assert done is not None and done.state is JobState.COMPLETED and done.result == "done"
    assert runs == [1] and done.retry_count == 0
    assert worker.metrics.completed == 1 and worker.metrics.lost_leases == 0


async def test_connections_cut_under_the_client_cost_a_call_each_at_most(queue: JobQueue, proxy: FaultProxy) -> None:
    """As after a store restart or a load balancer's reset: every pooled connection dies at once."""
    job = await queue.enqueue("default", "before")
    proxy.cut()
    answers = []
    for _ in range(4):
        try:
            answers.append((await queue.get(job.id)) is not None)
        except BackendUnavailable:
            answers.append(False)
    assert answers[-1] and answers.count(False) <= 2, answers  # pool_size=2: one failure per dead connection


async def test_a_slow_network_is_slow_and_a_stalled_one_times_out(queue: JobQueue, proxy: FaultProxy) -> None:
    job = await queue.enqueue("default", "before")
    proxy.delay(0.05)  # each chunk, each way: a slow link still works
    assert (await queue.get(job.id)) is not None
    proxy.delay(STATEMENT_TIMEOUT * 2)  # slower than the timeouts: unavailable, within the bound
    took, error = await timed(queue.get(job.id))
    assert isinstance(error, BackendUnavailable) and took < BOUND, (error, took)
    proxy.delay(0)
    assert (await queue.get(job.id)) is not None
