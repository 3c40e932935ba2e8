"""The Redis backend against a private ``redis-server`` that the tests stop, pause and restart.

The shared test Redis must not be disturbed, so each test here starts its own server on a free
port (no persistence, a temporary directory) and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from jobqueue import JobQueue, JobState, NewJob
from jobqueue.api import create_app
from jobqueue.backends.redis import RedisBackend
from jobqueue.errors import BackendUnavailable, ConfigurationError
from jobqueue.outcomes import Accepted
from jobqueue.worker import Worker, WorkerConfig
from tests.backends import skip_or_fail
from tests.faults.servers import PrivateRedis

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


@pytest.fixture
async def backend_on(server: PrivateRedis) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(server.url, connect_timeout=1.0, command_timeout=1.0)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll a condition with a deadline (what it waits for happens in another process: Redis)."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_an_evicting_policy_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path, "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
    redis.start()
    try:
        backend = RedisBackend(redis.url)
        with pytest.raises(ConfigurationError, match=r"maxmemory-policy allkeys-lru.*noeviction"):
            await backend.open()
        await backend.close()
    finally:
        redis.kill()


async def test_volatile_policies_are_accepted(tmp_path: Path) -> None:
    # They evict only keys with a TTL, and the backend sets none.
    redis = PrivateRedis(tmp_path, "--maxmemory", "100mb", "--maxmemory-policy", "volatile-lru")
    redis.start()
    try:
        async with RedisBackend(redis.url) as backend:
            (outcome,) = await backend.enqueue([NewJob("x")])
            assert isinstance(outcome, Accepted)
    finally:
        redis.kill()


async def test_a_restart_is_survived_without_help(server: PrivateRedis, backend_on: RedisBackend) -> None:
    backend = backend_on
    await backend.enqueue([NewJob("before")])
    server.kill()
    with pytest.raises(BackendUnavailable):
        await backend.enqueue([NewJob("while down")])
    with pytest.raises(BackendUnavailable):
        await backend.get("any")
    server.start()  # empty (no persistence), and without the scripts: they are loaded again
    (outcome,) = await backend.enqueue([NewJob("after")])
    assert isinstance(outcome, Accepted)
    stats = await backend.stats()
    assert stats.queues["default"].counts[JobState.PENDING] == 1


@pytest.mark.parametrize("fsync", ["always", "everysec"])
async def test_with_aof_every_acknowledged_job_survives_a_kill_9_of_redis(tmp_path: Path, fsync: str) -> None:
    """What docs/redis.md promises: with AOF on, an Accepted job is in Redis after a crash of it."""
    redis = PrivateRedis(tmp_path, "--appendonly", "yes", "--appendfsync", fsync)
    redis.start()
    acked: list[str] = []
    streaming, refused = asyncio.Event(), asyncio.Event()
    backend = RedisBackend(redis.url, connect_timeout=1.0, command_timeout=1.0)
    try:
        await backend.open()

        async def produce(n: int) -> None:
            for i in range(n):
                job = NewJob(i)
                try:
                    (outcome,) = await backend.enqueue([job])
                except BackendUnavailable:
                    refused.set()
                    continue
                assert isinstance(outcome, Accepted)
                acked.append(job.id)
                if len(acked) == 300:
                    streaming.set()

        producer = asyncio.create_task(produce(100_000))
        await asyncio.wait_for(streaming.wait(), 30)
        redis.kill()  # SIGKILL, mid-stream
        await asyncio.wait_for(refused.wait(), 30)
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
        redis.start()  # replays the AOF
        await until(lambda: _ready_backend(backend))
        for job_id in acked:
            assert await backend.get(job_id) is not None, f"acknowledged job {job_id} was lost"
        stats = await backend.stats()
        # Not-acknowledged jobs may have been stored too (an answer lost with the connection).
        assert stats.queues["default"].counts[JobState.PENDING] >= len(acked)
    finally:
        await backend.close()
        redis.kill()


async def _ready_backend(backend: RedisBackend) -> bool:
    try:
        await backend.stats()
    except BackendUnavailable:
        return False
    return True


async def test_a_hung_server_gives_unavailable_within_the_command_timeout(
    server: PrivateRedis, backend_on: RedisBackend
) -> None:
    server.signal(signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        await backend_on.enqueue([NewJob("x")])
    assert time.monotonic() - started < 3
    server.signal(signal.SIGCONT)
    (outcome,) = await backend_on.enqueue([NewJob("y")])
    assert isinstance(outcome, Accepted)


async def test_the_api_answers_503_while_redis_is_down_and_202_after(server: PrivateRedis) -> None:
    queue = JobQueue(backend=RedisBackend(server.url, connect_timeout=1.0, command_timeout=1.0))
    transport = httpx.ASGITransport(app=create_app(queue))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        assert (await client.post("/jobs", json={"payload": "one"})).status_code == 202
        server.kill()
        down = await client.post("/jobs", json={"payload": "two"})
        assert down.status_code == 503, down.text
        assert (await client.get("/ready")).status_code == 503
        server.start()
        up = await client.post("/jobs", json={"payload": "three"})
        assert up.status_code == 202, up.text
        stats = await queue.stats()
        # "two" was never stored; "one" went with the unpersisted server; "three" is there.
        assert stats.queues["default"].counts[JobState.PENDING] == 1
    await queue.close()


async def test_a_full_noeviction_server_refuses_new_jobs_as_unavailable(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path, "--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    redis.start()
    try:
        async with RedisBackend(redis.url) as backend:
            accepted = 0
            with pytest.raises(BackendUnavailable, match="OOM"):
                for _ in range(1000):
                    await backend.enqueue([NewJob("x" * 2000) for _ in range(10)])
                    accepted += 10
            assert accepted > 0
            # Every job answered as accepted is stored: nothing was evicted.
            stats = await backend.stats()
            assert stats.queues["default"].counts[JobState.PENDING] >= accepted
    finally:
        redis.kill()


async def test_ready_is_503_while_a_full_server_refuses_writes(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path, "--maxmemory", "100mb", "--maxmemory-policy", "noeviction")
    redis.start()
    try:
        queue = JobQueue(redis.url)
        async with queue, httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(queue)),
                                            base_url="http://127.0.0.1") as client:  # fmt: skip
            assert (await client.get("/ready")).status_code == 200
            for _ in range(100):
                await queue.enqueue_many([NewJob("x" * 2000) for _ in range(10)])
            # Well over its limit, not at its edge: at the edge, memory dips below the limit once a
            # refused command's buffers are freed, and a small write gets through again.
            admin = aioredis.Redis(port=redis.port)
            used = (await admin.info("memory"))["used_memory"]
            await admin.config_set("maxmemory", used // 2)
            await admin.aclose()
            with pytest.raises(BackendUnavailable, match="OOM"):
                await queue.enqueue_many([NewJob("x")])
            response = await client.get("/ready")
            assert response.status_code == 503 and "OOM" in response.json()["error"], response.text
            assert (await client.get("/jobs?limit=1")).status_code == 200  # reads still answer
    finally:
        redis.kill()


async def test_a_worker_reconnects_and_is_woken_again_after_a_restart(server: PrivateRedis) -> None:
    app = JobQueue(backend=RedisBackend(server.url, connect_timeout=1.0, command_timeout=1.0))
    done: list[object] = []

    @app.task(name="record")
    async def record(payload: object) -> None:
        done.append(payload)

    async with app:
        # A long poll interval: only the wake-up channel can make these jobs start quickly.
        worker = Worker(app, WorkerConfig(poll_interval=10.0, reaper_interval=None))
        runner = asyncio.create_task(worker.run())
        try:
            await app.enqueue("record", 1)
            await until(lambda: _true(len(done) == 1))
            server.kill()
            server.start()
            await until(lambda: _ready(app))
            started = time.monotonic()
            await app.enqueue("record", 2)
            await until(lambda: _true(len(done) == 2))
            assert time.monotonic() - started < 5
        finally:
            worker.stop()
            await runner


async def _true(value: bool) -> bool:
    return value


async def _ready(app: JobQueue) -> bool:
    try:
        await app.stats()
    except BackendUnavailable:
        return False
    return True


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        skip_or_fail("openssl is not installed (needed to make a test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_rediss_urls_speak_tls_and_verify_the_certificate(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    redis = PrivateRedis(tmp_path, tls=(cert, key))
    redis.start()
    try:
        url = f"rediss://127.0.0.1:{redis.port}/0"
        async with RedisBackend(f"{url}?ssl_ca_certs={cert}") as verified:
            (outcome,) = await verified.enqueue([NewJob("over tls")])
            assert isinstance(outcome, Accepted)
        unverified = RedisBackend(url, connect_timeout=2.0)  # the system CAs do not know this cert
        with pytest.raises(BackendUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await unverified.open()
        await unverified.close()
    finally:
        redis.kill()


def test_the_private_server_is_gone_after_the_test(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    pid = redis.proc.pid if redis.proc else 0
    redis.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
