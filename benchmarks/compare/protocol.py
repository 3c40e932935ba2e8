"""The side-by-side protocol, the same for every queue; each adapter runs it inside its own venv.

An adapter is a small script in ``benchmarks/compare/adapters/`` that imports this module, defines
the handful of callables of :class:`Adapter` for its queue, and calls :func:`main`. The runner
(``benchmarks/compare/run.py``) invokes it once per step and run::

    <venv>/bin/python benchmarks/compare/adapters/<queue>.py --variant V --step S --n N ...

and reads the one JSON line it prints last. This module needs only the standard library and the
``redis`` client (every venv has it): the handler of every queue records its start in Redis (the
same side channel for all, one round trip per job) and that is how the runner counts processed
jobs and measures latency.

Steps (N = ``--n``):

``single``   enqueue N jobs one call at a time from one process; jobs/s.
``batch``    the same through the queue's batch API, ``--batch`` (1,000) jobs per call.
``process``  N jobs queued first (untimed), then the worker process is spawned and timed until
             the N-th job has run (``jobs_per_s``, start-up included), from its first to its last
             job (``steady_jobs_per_s``), and from spawn to its first job (``first_job_s``).
``latency``  an idle worker (warmed by one job), then ``--offered`` jobs at ``--rate`` jobs/s, each
             carrying its enqueue time; latency = the handler's start minus that time, in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
#: The side channel lives in its own Redis database, so a queue's reset (FLUSHDB) never touches it.
SIDE_URL = os.environ.get("BENCH_SIDE_URL", "redis://127.0.0.1:6379/15")
SIDE_KEY = os.environ.get("BENCH_SIDE_KEY", "bench:started")
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "queue_bench")
PG_DSN = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + PG_DATABASE
POLL = 0.005  # how often the runner looks at the side channel, seconds

MaybeAsync = Callable[..., Any]


def started_record(started_at: float, enqueued_at: float) -> str:
    """What a handler pushes to SIDE_KEY: its start time and the enqueue time its job carried."""
    return f"{started_at!r} {enqueued_at!r}"


# The side channel is the benchmark's, not the queue's: a worker process imports and connects its
# client only at its first job, after that job's start time is taken, so that neither counts in
# any queue's "spawn to first job" (a queue on SQLite or PostgreSQL never imports redis itself).
_side_sync: redis.Redis | None = None
_side_async: Any = None


def record_started(enqueued_at: float) -> None:
    """The whole no-op handler of a synchronous queue: one RPUSH to the side channel."""
    global _side_sync
    started_at = time.time()
    if _side_sync is None:  # made in the process (or fork) that runs the handler
        _side_sync = side_client()
    _side_sync.rpush(SIDE_KEY, started_record(started_at, enqueued_at))


async def record_started_async(enqueued_at: float) -> None:
    """The same for asyncio queues, with this process's ``redis.asyncio`` client."""
    global _side_async
    started_at = time.time()
    if _side_async is None:
        import redis.asyncio

        _side_async = redis.asyncio.Redis.from_url(SIDE_URL)
    await _side_async.rpush(SIDE_KEY, started_record(started_at, enqueued_at))


def side_client() -> redis.Redis:
    import redis

    return redis.Redis.from_url(SIDE_URL)


def flush_redis() -> None:
    """The reset of every Redis-backed queue: empty its database."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


@dataclass
class Adapter:
    """What one queue supplies. Callables may be plain functions or coroutine functions.

    ``producer`` is entered once per step (a context manager, sync or async) and yields an object
    with ``enqueue_one(enqueued_at)`` and, when the queue has a batch API, ``enqueue_many(times)``.
    ``worker_command(concurrency)`` is the argv that starts one worker process; ``worker_env``
    extra environment for it. ``reset()`` wipes the queue's state (FLUSHDB, a fresh database...).
    """

    name: str
    mode: str
    versions: Sequence[str]
    reset: MaybeAsync
    producer: Callable[[], Any]
    worker_command: Callable[[int], list[str]]
    worker_env: dict[str, str] = field(default_factory=dict)
    has_batch: bool = False
    bulk_api: str = "none"
    use_uvloop: bool = False
    notes: str = ""
    # An adapter may replace a whole step (the memory backend runs its worker in-process).
    steps: dict[str, Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]] = field(default_factory=dict)


async def call(fn: MaybeAsync, *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        return await result
    return result


class _Entered:
    """Enters a sync or async context manager from async code."""

    def __init__(self, cm: Any) -> None:
        self.cm = cm

    async def __aenter__(self) -> Any:
        if hasattr(self.cm, "__aenter__"):
            return await self.cm.__aenter__()
        return self.cm.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        if hasattr(self.cm, "__aexit__"):
            await self.cm.__aexit__(*exc)
        else:
            self.cm.__exit__(*exc)


def clear_side_channel() -> None:
    side_client().delete(SIDE_KEY)


def side_records() -> list[tuple[float, float]]:
    raw = side_client().lrange(SIDE_KEY, 0, -1)
    return [(float(a), float(b)) for a, b in (r.split() for r in raw)]


async def wait_for_started(count: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    client = side_client()
    deadline = time.monotonic() + timeout
    # Each look is a blocking Redis call, so the first comes only after a poll interval: a worker
    # in this process (the memory backend) must get the loop to start the job just offered first.
    await asyncio.sleep(POLL)
    while client.llen(SIDE_KEY) < count:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"the worker exited with code {proc.returncode} before running {count} jobs: {worker_log_tail(proc)}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {client.llen(SIDE_KEY)} of {count} jobs ran within {timeout:.0f} s")
        await asyncio.sleep(POLL)


def spawn_worker(adapter: Adapter, concurrency: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, **adapter.worker_env)
    # Its stderr goes to a file, not a pipe: nobody reads a pipe while the worker runs, and a
    # worker that logs every job would block once its buffer is full.
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by stop_worker)
    proc = subprocess.Popen(
        adapter.worker_command(concurrency),
        env=env,
        start_new_session=True,  # its own group, so stop_worker reaches its children (prefork pools)
        stdout=subprocess.DEVNULL,
        stderr=None if os.environ.get("BENCH_WORKER_LOG") else log,
    )
    _worker_logs[proc.pid] = log
    return proc


_worker_logs: dict[int, Any] = {}


def worker_log_tail(proc: subprocess.Popen[bytes], lines: int = 3) -> str:
    log = _worker_logs.get(proc.pid)
    if log is None:
        return ""
    log.seek(0)
    return " | ".join(log.read().decode(errors="replace").strip().splitlines()[-lines:])


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group
    log = _worker_logs.pop(proc.pid, None)
    if log is not None:
        log.close()


async def enqueue_all(adapter: Adapter, producer: Any, n: int, batch: int) -> None:
    """Fill the queue with n jobs, the fastest way the adapter has (untimed)."""
    if adapter.has_batch:
        for start in range(0, n, batch):
            await call(producer.enqueue_many, [0.0] * min(batch, n - start))
    else:
        for _ in range(n):
            await call(producer.enqueue_one, 0.0)


async def step_single(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    await call(adapter.reset)
    async with _Entered(adapter.producer()) as producer:
        started = time.perf_counter()
        for _ in range(args.n):
            await call(producer.enqueue_one, 0.0)
        elapsed = time.perf_counter() - started
    return {"jobs_per_s": args.n / elapsed}


async def step_batch(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    if not adapter.has_batch:
        return {"skipped": "no batch API"}
    await call(adapter.reset)
    async with _Entered(adapter.producer()) as producer:
        started = time.perf_counter()
        for start in range(0, args.n, args.batch):
            await call(producer.enqueue_many, [0.0] * min(args.batch, args.n - start))
        elapsed = time.perf_counter() - started
    return {"jobs_per_s": args.n / elapsed}


async def step_process(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    await call(adapter.reset)
    async with _Entered(adapter.producer()) as producer:
        await enqueue_all(adapter, producer, args.n, args.batch)
    clear_side_channel()
    spawned_wall, spawned = time.time(), time.perf_counter()
    proc = spawn_worker(adapter, args.concurrency)
    try:
        await wait_for_started(args.n, args.timeout, proc)
        elapsed = time.perf_counter() - spawned
    finally:
        stop_worker(proc)
    return processing_figures(args.n, elapsed, spawned_wall)


def processing_figures(n: int, elapsed: float, spawned_wall: float) -> dict[str, Any]:
    """The process step's figures: from spawn, steady (first to last start), spawn to first job."""
    starts = sorted(start for start, _ in side_records())
    return {
        "jobs_per_s": n / elapsed,
        "steady_jobs_per_s": n / max(starts[-1] - starts[0], 1e-9),
        "first_job_s": starts[0] - spawned_wall,
    }


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return {"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": ordered[-1]}


async def offer_at_rate(producer: Any, offered: int, rate: float) -> None:
    """Offer jobs on a fixed schedule; each carries the wall time just before its enqueue call."""
    start = time.perf_counter()
    for i in range(offered):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await call(producer.enqueue_one, time.time())


async def step_latency(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    await call(adapter.reset)
    clear_side_channel()
    proc = spawn_worker(adapter, args.concurrency)
    try:
        async with _Entered(adapter.producer()) as producer:
            await warm_up_then_offer(producer, args, proc)
    finally:
        stop_worker(proc)
    return latency_figures()


async def warm_up_then_offer(producer: Any, args: argparse.Namespace, proc: Any = None) -> None:
    """The latency step once a worker runs: warm it, let it idle, offer the jobs, wait for them."""
    await call(producer.enqueue_one, -1.0)  # the warm-up job: the worker is up and fetching
    await wait_for_started(1, args.timeout, proc)
    await asyncio.sleep(args.idle)  # then idle, as a worker between bursts is
    await offer_at_rate(producer, args.offered, args.rate)
    await wait_for_started(args.offered + 1, args.timeout, proc)


def latency_figures() -> dict[str, float]:
    """Percentiles of start minus enqueue time over the offered jobs (the warm-up one left out)."""
    return percentiles([(start - enq) * 1000 for start, enq in side_records() if enq >= 0])


STEPS = {"single": step_single, "batch": step_batch, "process": step_process, "latency": step_latency}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="main")
    parser.add_argument("--step", choices=[*STEPS, "info"], required=True)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--processes", type=int, default=1, help="worker processes (jobqueue only)")
    parser.add_argument("--offered", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--idle", type=float, default=1.0, help="seconds the worker idles before the offer")
    parser.add_argument("--timeout", type=float, default=600.0)
    return parser.parse_args(argv)


def main(variants: dict[str, Callable[[argparse.Namespace], Adapter]], argv: Sequence[str] | None = None) -> None:
    """Run one step of one variant and print its result as the last line of stdout."""
    args = parse_args(argv)
    # SIGTERM (a runner giving up) must still run the steps' finally blocks, which stop the worker:
    # it lives in its own session and would otherwise outlive us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    adapter = variants[args.variant](args)
    if args.step == "info":
        result: dict[str, Any] = {
            "name": adapter.name,
            "mode": adapter.mode,
            "versions": [*adapter.versions, f"python {sys.version.split()[0]}"],
            "bulk_api": adapter.bulk_api,
            "notes": adapter.notes,
        }
    else:
        step = adapter.steps.get(args.step) or (lambda a: STEPS[args.step](adapter, a))
        if adapter.use_uvloop:
            import uvloop

            result = uvloop.run(step(args))
        else:
            result = asyncio.run(step(args))
        result.setdefault("n", args.offered if args.step == "latency" else args.n)
    print(json.dumps(result), flush=True)


def versions_of(*packages: str) -> list[str]:
    from importlib.metadata import version

    return [f"{p} {version(p)}" for p in packages]
