"""Scale-out on Redis: 4 worker processes share 10,000 jobs, and each job completes exactly once.

The workers run ``tests.integration.faultapp:app``; its ``record`` task appends one ledger line
per attempt (``record <job id> <attempt> <pid>``), so attempts can be counted across processes. In
the second run one worker is SIGKILLed midway: the jobs it held are recovered by the others once
their leases expire, and only those may have run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobqueue import JobQueue, JobState
from jobqueue.job import Job
from tests.backends import SHARED_STORES

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
JOBS = 10_000
WORKERS = 4
CONCURRENCY = 20
LEASE = 2.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    url, remove = SHARED_STORES["redis"](tmp_path)
    try:
        yield url
    finally:
        remove()


def start_worker(url: str, ledger: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, JOBQUEUE_URL=url, JOBQUEUE_TEST_LEDGER=str(ledger), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "jobqueue", "worker", "tests.integration.faultapp:app", "--log-level", "ERROR",
           "--concurrency", str(CONCURRENCY), "--lease", str(LEASE), "--reaper-interval", "0.2",
           "--poll-interval", "0.5"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition observed in other processes, with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def ledger_rows(ledger: Path) -> list[list[str]]:
    return [line.split() for line in ledger.read_text().splitlines()]


async def _all_jobs(url: str) -> tuple[int, list[Job]]:
    async with JobQueue(url) as app:
        stats = await app.stats()
        done = stats.queues["default"].counts[JobState.COMPLETED] if "default" in stats.queues else 0
        jobs: list[Job] = []
        cursor = None
        while True:
            page = await app.list_jobs(cursor=cursor, limit=10_000)
            jobs += page.jobs
            if page.next_cursor is None:
                return done, jobs
            cursor = page.next_cursor


def completed(url: str) -> int:
    async def count() -> int:
        async with JobQueue(url) as app:
            stats = await app.stats()
        return stats.queues["default"].counts[JobState.COMPLETED] if "default" in stats.queues else 0

    return asyncio.run(count())


@pytest.mark.parametrize("kill_one", [False, True], ids=["steady", "one-worker-killed"])
def test_four_workers_complete_ten_thousand_jobs_exactly_once(store: str, tmp_path: Path, kill_one: bool) -> None:
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    workers = [start_worker(store, ledger) for _ in range(WORKERS)]
    try:
        app = JobQueue(store)
        try:
            for start in range(0, JOBS, 1000):
                app.enqueue_many_sync([app.new_job("record", n) for n in range(start, start + 1000)])
        finally:
            app.close_sync()
        victim = workers[0]
        if kill_one:
            wait_until(lambda: len(ledger_rows(ledger)) >= JOBS // 3, 60, "a third of the jobs to start")
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
        wait_until(lambda: completed(store) == JOBS, 90, f"{JOBS} completions")
    finally:
        for proc in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    done, jobs = asyncio.run(_all_jobs(store))
    assert done == JOBS and len(jobs) == JOBS
    assert all(j.state is JobState.COMPLETED for j in jobs)
    attempts = Counter(row[1] for row in ledger_rows(ledger))
    assert set(attempts) == {j.id for j in jobs}
    pids = Counter(row[3] for row in ledger_rows(ledger))
    assert len(pids) == WORKERS, "every worker process took a share"
    repeated = {job_id for job_id, n in attempts.items() if n > 1}
    if not kill_one:
        assert not repeated, f"{len(repeated)} jobs ran twice without any fault"
        assert all(j.retry_count == 0 for j in jobs)
        return
    # Only jobs the killed worker had started may run again, at most its slots' worth, each once
    # more; their one completion came from a survivor, after the lease ran out (a counted attempt).
    victim_jobs = {row[1] for row in ledger_rows(ledger) if row[3] == str(victim.pid)}
    assert victim_jobs, "the killed worker had been working"
    assert repeated <= victim_jobs
    assert len(repeated) <= CONCURRENCY
    assert all(attempts[job_id] == 2 for job_id in repeated)
    by_id = {j.id: j for j in jobs}
    for job_id in repeated:
        job = by_id[job_id]
        assert job.retry_count == 1 and job.result != victim.pid
