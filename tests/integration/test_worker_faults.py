"""Worker processes killed, paused, crashed by their own jobs, or stopped: nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobqueue import JobQueue, JobState
from jobqueue.worker import WORKER_LOST
from tests.backends import SHARED_STORES

pytestmark = pytest.mark.slow
S = JobState
FAULT_APP = "tests.integration.faultapp:app"
ROOT = Path(__file__).resolve().parents[2]


class Cluster:
    """Worker subprocesses sharing one store, and a ledger of every attempt they start."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.url = url
        self.ledger = tmp_path / "ledger.txt"
        self.ledger.touch()
        self.procs: list[subprocess.Popen[bytes]] = []

    def worker(self, *args: str, phase: int = 1, app: str = FAULT_APP) -> subprocess.Popen[bytes]:
        env = dict(os.environ, JOBQUEUE_URL=self.url, JOBQUEUE_TEST_LEDGER=str(self.ledger),
                   JOBQUEUE_TEST_PHASE=str(phase), PYTHONPATH=str(ROOT))  # fmt: skip
        cmd = [sys.executable, "-m", "jobqueue", "worker", app, "--log-level", "WARNING", "--poll-interval", "0.05",
               *args]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, start_new_session=True)
        self.procs.append(proc)
        return proc

    def attempts(self, task: str | None = None) -> list[list[str]]:
        rows = [line.split() for line in self.ledger.read_text().splitlines()]
        return [r for r in rows if task is None or r[0] == task]

    def stop_all(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the worker and any children it supervises
            proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()


@pytest.fixture(params=list(SHARED_STORES))
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    url, remove_store = SHARED_STORES[request.param](tmp_path)
    c = Cluster(tmp_path, url)
    try:
        yield c
    finally:
        c.stop_all()
        remove_store()


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll a condition observed in another process (there is no in-process signal to wait on)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def counts(url: str) -> dict[S, int]:
    async def read() -> dict[S, int]:
        async with JobQueue(url) as app:
            stats = await app.stats()
        return dict(stats.queues["default"].counts) if "default" in stats.queues else {}

    return asyncio.run(read())


def jobs(url: str) -> list[object]:
    async def read() -> list[object]:
        app = JobQueue(url)
        async with app:
            page = await app.list_jobs(limit=10_000)
        return list(page.jobs)

    return asyncio.run(read())


def enqueue(url: str, task: str, payloads: list[object], **options: object) -> None:
    app = JobQueue(url)
    try:
        app.enqueue_many_sync([app.new_job(task, p, **options) for p in payloads])
    finally:
        app.close_sync()


def test_kill_9_worker_holding_100_jobs_second_worker_completes_them(cluster: Cluster) -> None:
    enqueue(cluster.url, "block", list(range(100)))
    first = cluster.worker("--concurrency", "100", "--lease", "2", "--reaper-interval", "0.2")
    wait_until(lambda: len(cluster.attempts("block")) == 100, what="100 jobs running in the first worker")
    assert counts(cluster.url)[S.PROCESSING] == 100
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = time.monotonic()
    cluster.worker("--concurrency", "20", "--lease", "2", "--reaper-interval", "0.2", phase=2)
    wait_until(lambda: counts(cluster.url).get(S.COMPLETED) == 100, what="all 100 jobs completed")
    assert time.monotonic() - killed_at < 2 + 0.2 * 1.2 + 5  # lease + reaper interval + start-up slack
    finished = jobs(cluster.url)
    assert len(finished) == 100
    assert all(j.state is S.COMPLETED and j.retry_count == 1 for j in finished)  # type: ignore[attr-defined]
    per_job = Counter(row[1] for row in cluster.attempts("block"))
    assert set(per_job.values()) == {2}  # one attempt lost with the worker, one that completed


def test_a_child_waits_for_its_parent_through_a_kill_9_and_the_retry(cluster: Cluster) -> None:
    async def submit() -> tuple[str, str]:
        async with JobQueue(cluster.url) as app:
            parent = await app.enqueue("block", "parent")
            child = await app.enqueue("after", "child", depends_on=[parent])
        return parent.id, child.id

    parent_id, child_id = asyncio.run(submit())
    first = cluster.worker("--concurrency", "10", "--lease", "2", "--reaper-interval", "0.2")
    wait_until(lambda: len(cluster.attempts("block")) == 1, what="the parent running in the first worker")
    assert counts(cluster.url)[S.BLOCKED] == 1  # a free worker with ten slots leaves the child alone
    first.send_signal(signal.SIGKILL)
    first.wait()
    cluster.worker("--concurrency", "10", "--lease", "2", "--reaper-interval", "0.2", phase=2)
    wait_until(lambda: counts(cluster.url).get(S.COMPLETED) == 2, what="the parent, then its child, completed")
    parent, child = sorted(jobs(cluster.url), key=lambda job: job.id != parent_id)  # type: ignore[attr-defined]
    assert parent.retry_count == 1 and child.retry_count == 0  # type: ignore[attr-defined]
    assert child.result == {parent_id: parent.result}  # type: ignore[attr-defined]
    assert child.started_at >= parent.finished_at  # type: ignore[attr-defined]
    ledger = [(row[0], row[1]) for row in cluster.attempts()]
    assert ledger == [("block", parent_id), ("block", parent_id), ("after", child_id)]


def test_paused_worker_past_its_lease_is_fenced_off(cluster: Cluster) -> None:
    enqueue(cluster.url, "sleep", [1.0] * 20)
    paused = cluster.worker("--concurrency", "20", "--lease", "1", "--reaper-interval", "0.2")
    wait_until(lambda: len(cluster.attempts("sleep")) == 20, what="20 jobs running in the first worker")
    paused.send_signal(signal.SIGSTOP)
    second = cluster.worker("--concurrency", "20", "--lease", "5", "--reaper-interval", "0.2", phase=2)
    wait_until(lambda: counts(cluster.url).get(S.COMPLETED) == 20, what="the second worker to finish")
    second.send_signal(signal.SIGTERM)
    second.wait(10)
    before = {j.id: (j.result, j.finished_at) for j in jobs(cluster.url)}  # type: ignore[attr-defined]
    # The paused worker wakes up and is asked to stop at once: it lets its handlers finish (they
    # sleep 1 s, within the grace), so every late outcome is attempted before it exits.
    paused.send_signal(signal.SIGCONT)
    paused.send_signal(signal.SIGTERM)
    assert paused.wait(15) == 0
    after = {j.id: (j.result, j.finished_at) for j in jobs(cluster.url)}  # type: ignore[attr-defined]
    assert after == before
    assert {result for result, _ in after.values()} == {second.pid}
    assert paused.stderr is not None
    log = paused.stderr.read().decode()
    # Each of the 20 late attempts was refused: fenced at completion, or stopped by a lost heartbeat.
    assert log.count("job.fenced") + log.count("job.lease_lost") == 20, log


def test_job_that_kills_its_worker_is_dead_lettered_after_its_attempts(cluster: Cluster) -> None:
    enqueue(cluster.url, "crash", ["poison"], max_retries=2)
    cluster.worker("--processes", "2", "--concurrency", "5", "--lease", "1", "--reaper-interval", "0.2")
    # Other work arrives from plain synchronous code in another thread while the workers run.
    producer = threading.Thread(target=enqueue, args=(cluster.url, "record", list(range(20))))
    producer.start()
    producer.join()
    wait_until(lambda: counts(cluster.url).get(S.DEAD_LETTERED) == 1, timeout=60, what="the poison job in the DLQ")
    wait_until(lambda: counts(cluster.url).get(S.COMPLETED) == 20, what="the other jobs to complete")
    (poison,) = [j for j in jobs(cluster.url) if j.task == "crash"]  # type: ignore[attr-defined]
    assert poison.error == WORKER_LOST and poison.retry_count == 3  # type: ignore[attr-defined]
    assert len(cluster.attempts("crash")) == 3


def test_sigterm_finishes_short_jobs_and_releases_long_ones(cluster: Cluster) -> None:
    enqueue(cluster.url, "sleep", [0.3] * 5)
    enqueue(cluster.url, "block", [0, 1, 2])
    proc = cluster.worker("--concurrency", "10", "--grace", "1")
    wait_until(lambda: len(cluster.attempts()) == 8, what="all 8 jobs running")
    stopped_at = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - stopped_at < 1 + 2
    state = counts(cluster.url)
    assert state[S.COMPLETED] == 5 and state[S.PENDING] == 3
    released = [j for j in jobs(cluster.url) if j.task == "block"]  # type: ignore[attr-defined]
    assert all(j.retry_count == 0 and j.lease_expires_at is None for j in released)  # type: ignore[attr-defined]


def test_a_thread_that_cannot_stop_neither_keeps_the_process_past_grace_nor_completes_twice(cluster: Cluster) -> None:
    enqueue(cluster.url, "stuck", [30.0])
    proc = cluster.worker("--concurrency", "2", "--grace", "1")
    wait_until(lambda: len(cluster.attempts("stuck")) == 1, what="the thread handler running")
    stopped_at = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0  # not the 30 s the thread sleeps
    assert time.monotonic() - stopped_at < 1 + 3
    assert proc.stderr is not None
    assert "worker.threads_left_running" in proc.stderr.read().decode()
    # Released: another worker runs it, and only that attempt completes it.
    second = cluster.worker("--concurrency", "2", phase=2)
    wait_until(lambda: counts(cluster.url).get(S.COMPLETED) == 1, what="the second worker to complete it")
    (job,) = jobs(cluster.url)
    assert job.result == second.pid and job.retry_count == 0  # type: ignore[attr-defined]


def test_supervised_workers_stop_when_their_supervisor_is_killed(cluster: Cluster) -> None:
    supervisor = cluster.worker("--processes", "2")
    children: list[int] = []

    def children_started() -> bool:
        out = subprocess.run(["pgrep", "-P", str(supervisor.pid)], capture_output=True, text=True).stdout
        children[:] = [int(pid) for pid in out.split()]
        return len(children) == 2

    wait_until(children_started, what="two worker processes")
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait()

    def all_gone() -> bool:
        gone = 0
        for pid in children:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                gone += 1
        return gone == len(children)

    wait_until(all_gone, timeout=10, what="the orphaned workers to exit")
