"""PostgreSQL beyond the conformance suite: several producers, workers and schedulers on separate
connections, transactional enqueue, the server's clock, wake-ups across connections, and lost
connections."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import asyncpg
import httpx
import pytest

from jobqueue.api import create_app
from jobqueue.app import JobQueue
from jobqueue.backends import ClaimParams, Completion, Lease, ListParams
from jobqueue.backends.params import Tick
from jobqueue.backends.postgres import PostgresBackend
from jobqueue.errors import BackendUnavailable
from jobqueue.job import JobState, NewJob
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, Rejected, StoredSchedule
from jobqueue.worker import Worker, WorkerConfig
from tests.backends import opened, require_postgres

S = JobState


async def test_capacity_is_exact_across_producers_on_separate_connections(
    shared: Callable[..., PostgresBackend],
) -> None:
    producers = await opened(shared, 8)
    capacity = {"default": 100}

    async def offer(backend: PostgresBackend, n: int) -> int:
        accepted = 0
        for i in range(n):
            jobs = [NewJob(i)] if i % 3 else [NewJob(i), NewJob(-i)]  # singles and small batches
            accepted += sum(isinstance(o, Accepted) for o in await backend.enqueue(jobs, capacity))
        return accepted

    accepted = await asyncio.gather(*(offer(b, 30) for b in producers))
    assert sum(accepted) == 100
    assert (await producers[0].stats()).queues["default"].waiting == 100
    # Claims make room; exactly that much room is filled again.
    (claimer,) = await opened(shared, 1)
    assert len(await claimer.claim(ClaimParams(["default"], "w", 7))) == 7
    refill = await asyncio.gather(*(offer(b, 5) for b in producers))
    assert sum(refill) == 7
    assert (await claimer.stats()).queues["default"].waiting == 100


async def test_one_job_per_key_across_producers_on_separate_connections(
    shared: Callable[..., PostgresBackend],
) -> None:
    producers = await opened(shared, 8)
    for round_ in range(5):
        key = f"order-{round_}"
        outcomes = await asyncio.gather(
            *(b.enqueue([NewJob(i, idempotency_key=key)]) for i, b in enumerate(producers * 3))
        )
        flat = [o for (o,) in outcomes]
        accepted = [o for o in flat if isinstance(o, Accepted)]
        assert len(accepted) == 1
        assert all(isinstance(o, Duplicate) and o.job.id == accepted[0].job.id for o in flat if o is not accepted[0])


async def test_each_tick_becomes_one_job_across_schedulers_on_separate_connections(
    shared: Callable[..., PostgresBackend],
) -> None:
    schedulers = await opened(shared, 5)
    await asyncio.gather(*(s.register_schedules([StoredSchedule("every-second", "{}")]) for s in schedulers))
    ticks = [1_700_000_000.1 + n for n in range(1, 51)]  # not whole seconds: stored exactly all the same

    async def fire_all(backend: PostgresBackend, by: int) -> list[tuple[float, EnqueueOutcome | None]]:
        fired = []
        for at in ticks:
            tick = Tick("every-second", at, NewJob({"at": at, "by": by}, task="report"))
            fired.append((at, await backend.fire(tick, capacity=1_000)))
        return fired

    fired = [pair for run in await asyncio.gather(*(fire_all(s, n) for n, s in enumerate(schedulers))) for pair in run]
    accepted = {at: o for at, o in fired if isinstance(o, Accepted)}
    assert sorted(accepted) == ticks
    assert [o for _, o in fired].count(None) == len(fired) - len(ticks)  # every other fire found its tick spent
    jobs = await schedulers[0].claim(ClaimParams(["default"], "w", 100))
    assert sorted(job.payload["at"] for job in jobs) == ticks  # one job per tick, as answered
    assert {job.id for job in jobs} == {o.job.id for o in accepted.values()}
    (stored,) = await schedulers[1].schedules()
    assert (stored.last_tick, stored.last_job_id) == (ticks[-1], accepted[ticks[-1]].job.id)


async def test_concurrent_claimers_never_share_a_job(shared: Callable[..., PostgresBackend]) -> None:
    workers = await opened(shared, 4)
    await workers[0].enqueue([NewJob(n) for n in range(1000)])

    async def take(backend: PostgresBackend, name: str) -> list[str]:
        got: list[str] = []
        while batch := await backend.claim(ClaimParams(["default"], name, 7)):
            got += [j.id for j in batch]
            await backend.complete([Completion(Lease(j.id, j.lease_token)) for j in batch])
        return got

    taken = await asyncio.gather(*(take(b, f"w{i}") for i, b in enumerate(workers)))
    flat = [job for got in taken for job in got]
    assert len(flat) == len(set(flat)) == 1000
    assert all(taken)  # every claimer got some: SKIP LOCKED, not a queue behind one lock
    assert (await workers[0].stats()).queues["default"].counts[S.COMPLETED] == 1000


async def test_transactional_enqueue_exists_only_if_the_transaction_commits(
    shared: Callable[..., PostgresBackend],
) -> None:
    backend, listener = await opened(shared, 2)
    conn = await asyncpg.connect(require_postgres())
    try:
        async with conn.transaction():
            (outcome,) = await backend.enqueue_in(conn, [NewJob("committed")])
            assert isinstance(outcome, Accepted)
            assert await backend.get(outcome.job.id) is None  # not visible before the commit
            await listener.wait_for_work(["default"], 0.01)  # drop any earlier wake-up
            waiter = asyncio.create_task(listener.wait_for_work(["default"], 10))
            await asyncio.sleep(0.05)
            assert not waiter.done()  # NOTIFY is delivered at commit, with the job
        assert await asyncio.wait_for(waiter, 5) is True
        committed = await backend.get(outcome.job.id)
        assert committed is not None and committed.state is S.PENDING

        with contextlib.suppress(RuntimeError):
            async with conn.transaction():
                (rolled,) = await backend.enqueue_in(conn, [NewJob("rolled back", idempotency_key="k")])
                assert isinstance(rolled, Accepted)
                raise RuntimeError("the caller's own work failed")
        assert isinstance(rolled, Accepted) and await backend.get(rolled.job.id) is None
        stats = await backend.stats()
        assert stats.queues["default"].counts[S.PENDING] == 1 and stats.idempotency_keys == 0
        # Capacity is checked inside the caller's transaction, against its own earlier jobs too.
        async with conn.transaction():
            outcomes = await backend.enqueue_in(conn, [NewJob(1), NewJob(2)], {"default": 2})
            assert [type(o) for o in outcomes] == [Accepted, Rejected]
    finally:
        await conn.close()


async def test_leases_and_due_times_use_the_server_clock(
    shared: Callable[..., PostgresBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    (backend,) = await opened(shared, 1)
    conn = await asyncpg.connect(require_postgres())
    try:
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 3600)  # this host's clock is an hour fast
        before = await conn.fetchval("SELECT extract(epoch FROM now())::float8")
        (due,) = await backend.enqueue([NewJob("now")])
        (later,) = await backend.enqueue([NewJob("later", delay=60)])
        assert isinstance(due, Accepted) and isinstance(later, Accepted)
        assert before <= due.job.created_at < before + 60
        assert later.job.state is S.SCHEDULED and later.job.run_at == pytest.approx(later.job.created_at + 60)
        (claimed,) = await backend.claim(ClaimParams(["default"], "w", 10, lease=30))
        assert claimed.id == due.job.id  # the skewed clock does not make "later" due
        assert claimed.lease_expires_at is not None
        assert claimed.last_attempt is not None and claimed.last_attempt < before + 60
        assert claimed.lease_expires_at == pytest.approx(claimed.last_attempt + 30)
        assert await backend.expired_leases() == []
    finally:
        await conn.close()


async def test_notify_wakes_a_worker_on_another_connection_within_milliseconds(
    shared: Callable[..., PostgresBackend],
) -> None:
    producer, worker = await opened(shared, 2)
    for _ in range(5):
        await worker.wait_for_work(["default"], 0.01)
        waiter = asyncio.create_task(worker.wait_for_work(["default"], 10))
        await asyncio.sleep(0.01)
        await producer.enqueue([NewJob("wake")])
        started = time.perf_counter()  # from the commit: its disk wait is not the wake-up's
        assert await asyncio.wait_for(waiter, 5) is True
        assert time.perf_counter() - started < 0.5


async def test_a_fired_tick_wakes_a_worker_on_another_connection(shared: Callable[..., PostgresBackend]) -> None:
    scheduler, worker = await opened(shared, 2)
    await scheduler.register_schedules([StoredSchedule("nightly", "{}")])
    await worker.wait_for_work(["default"], 0.01)
    waiter = asyncio.create_task(worker.wait_for_work(["default"], 10))
    await asyncio.sleep(0.01)
    assert isinstance(await scheduler.fire(Tick("nightly", 1.0, NewJob("tick"))), Accepted)
    assert await asyncio.wait_for(waiter, 5) is True


async def test_a_cancelled_wait_costs_no_connection(shared: Callable[..., PostgresBackend]) -> None:
    # A worker's wait is cancelled whenever a slot frees; a store call inside it that were cut off
    # would drop its connection, and the next statement would pay for a new one (latency p99).
    (worker,) = await opened(shared, 1)
    assert worker._work is not None
    pool = worker._work.pool
    servers = set()
    for _ in range(20):
        waiter = asyncio.create_task(worker.wait_for_work(["default"], 10))
        await asyncio.sleep(0)  # into its first store call
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        servers |= {await pool.fetchval("SELECT pg_backend_pid()") for _ in range(2)}
    assert len(servers) <= 2  # the pool's two connections, never replaced


async def terminate(dsn: str, application_name: str) -> int:
    """pg_terminate_backend for every connection with this application name; returns how many."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1 AND pid <> pg_backend_pid()",
                application_name,
            )
        )
    finally:
        await conn.close()


async def test_terminated_connections_are_replaced_by_themselves(shared: Callable[..., PostgresBackend]) -> None:
    producer, worker = await opened(shared, 2)
    await producer.enqueue([NewJob("before")])
    assert await terminate(require_postgres(), "jobqueue") >= 4
    assert await terminate(require_postgres(), "jobqueue-listen") >= 2
    await asyncio.sleep(0.1)  # let the clients see their sockets close
    # Every call after the cut works: the pools reconnect, the listener comes back.
    (outcome,) = await producer.enqueue([NewJob("after")])
    assert isinstance(outcome, Accepted)
    assert len(await worker.claim(ClaimParams(["default"], "w", 10))) == 2
    assert await worker.wait_for_work(["default"], 5) is True  # listener re-established: reports work
    await worker.wait_for_work(["default"], 0.01)
    waiter = asyncio.create_task(worker.wait_for_work(["default"], 10))
    await asyncio.sleep(0.01)
    await producer.enqueue([NewJob("woken")])
    assert await asyncio.wait_for(waiter, 5) is True
    # A fire's transaction too: its BEGIN finds the connection dead, and it runs on a fresh one.
    await producer.register_schedules([StoredSchedule("nightly", "{}")])
    assert await terminate(require_postgres(), "jobqueue") >= 1
    await asyncio.sleep(0.1)
    assert isinstance(await producer.fire(Tick("nightly", 1.0, NewJob("tick"))), Accepted)


class Proxy:
    """A TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones refused)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server: asyncio.Server | None = None
        self.listen_port = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.listen_port)
        self.listen_port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_api_answers_503_while_the_database_is_down_and_recovers(
    shared: Callable[..., PostgresBackend],
) -> None:
    url = httpx.URL(require_postgres())
    proxy = Proxy(url.host, url.port or 5432)
    await proxy.start()
    dsn = str(url.copy_with(host="127.0.0.1", port=proxy.listen_port))
    backend = shared(dsn=dsn, connect_timeout=1.0)
    queue = JobQueue(backend=backend)
    app = create_app(queue)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        first = await client.post("/jobs", json={"payload": "before"})
        assert first.status_code == 202
        await proxy.cut()
        refused = [await client.post("/jobs", json={"payload": f"down-{i}"}) for i in range(3)]
        assert {r.status_code for r in refused} == {503}
        assert all("Retry-After" in r.headers for r in refused)
        with pytest.raises(BackendUnavailable):
            await backend.claim(ClaimParams(["default"], "w", 10))
        await proxy.start()  # the database is back (same port)
        again = await client.post("/jobs", json={"payload": "after"})
        assert again.status_code == 202
    await proxy.cut()
    direct = shared()
    await direct.open()
    stored = sorted(j.payload for j in (await direct.list_jobs(ListParams())).jobs)
    assert stored == ["after", "before"]  # no job from the outage was stored


async def test_a_worker_rides_out_a_database_outage(shared: Callable[..., PostgresBackend]) -> None:
    url = httpx.URL(require_postgres())
    proxy = Proxy(url.host, url.port or 5432)
    await proxy.start()
    backend = shared(dsn=str(url.copy_with(host="127.0.0.1", port=proxy.listen_port)), connect_timeout=1.0)
    queue = JobQueue(backend=backend)
    ran: list[int] = []
    second = asyncio.Event()

    @queue.task(name="t")
    async def t(payload: int) -> int:
        ran.append(payload)
        if payload == 2:
            second.set()
        return payload

    worker = Worker(queue, WorkerConfig(poll_interval=0.05, reaper_interval=None, retention=None))
    running = asyncio.create_task(worker.run())
    try:
        first = await queue.enqueue("t", 1)
        assert (await queue.wait(first.id, 10)).state is S.COMPLETED
        await proxy.cut()
        await asyncio.sleep(0.3)  # the outage lasts a few poll intervals: claims fail meanwhile
        await proxy.start()
        producer = shared()
        await producer.open()
        await producer.enqueue([NewJob(2, task="t")])
        await asyncio.wait_for(second.wait(), 15)
    finally:
        worker.stop()
        await running
        await proxy.cut()
    assert ran == [1, 2]


async def test_a_batch_of_large_payloads_is_sent_in_parts(
    shared: Callable[..., PostgresBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobqueue.backends.postgres import enqueue

    monkeypatch.setattr(enqueue, "MAX_STATEMENT_BYTES", 2_000)
    (backend,) = await opened(shared, 1)
    jobs = [NewJob("x" * 500, idempotency_key=f"k{n % 7}") for n in range(20)]
    outcomes = await backend.enqueue(jobs, {"default": 5})
    kinds = [type(o).__name__ for o in outcomes]
    # Keys repeat every 7 jobs and the queue holds 5: parts see the parts before them.
    assert kinds == ["Accepted"] * 5 + ["Rejected"] * 2 + ["Duplicate"] * 5 + ["Rejected"] * 2 + ["Duplicate"] * 5 + [
        "Rejected"
    ]
    assert (await backend.stats()).queues["default"].waiting == 5
