"""Scale-out on PostgreSQL: four worker processes and the HTTP API on one database.

10,000 jobs are submitted through the API (``POST /jobs/batch``) while four ``jobqueue worker``
processes run them. Each handler writes its attempt to a ledger table. Without faults every job is
completed exactly once and run exactly once; with one worker SIGKILLed midway every job is still
completed exactly once, and only jobs that worker had started are run a second time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.backends import drop_postgres_schema, require_postgres, unique_schema

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integration.pgscaleapp:app"
JOBS = 10_000
BATCH = 1_000
WORKERS = 4


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll a condition other processes bring about (there is no in-process signal to wait on)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def sql(dsn: str, query: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query)
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


class Cluster:
    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn, self.schema = dsn, schema
        self.url = f"{dsn}?schema={schema}&pool_size=2"
        self.env = dict(os.environ, JOBQUEUE_URL=self.url, JOBQUEUE_TEST_LEDGER_DSN=dsn,
                        JOBQUEUE_TEST_SCHEMA=schema, PYTHONPATH=str(ROOT))  # fmt: skip
        self.procs: list[subprocess.Popen[str]] = []

    def start_api(self) -> str:
        # The API alone, in a process of its own (create_app served by uvicorn; no workers in it).
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        cmd = [sys.executable, "-m", "tests.integration.pgscaleapp", str(port)]
        self.procs.append(subprocess.Popen(cmd, cwd=ROOT, env=self.env, stderr=subprocess.DEVNULL, text=True))
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, what="the API to answer")
        return url

    def start_worker(self) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "jobqueue", "worker", APP, "--concurrency", "10", "--lease", "2",
               "--reaper-interval", "0.2", "--poll-interval", "0.5", "--log-level", "WARNING"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(proc)
        return proc

    def completed(self) -> int:
        rows = sql(self.dsn, f"SELECT count(*) FROM \"{self.schema}\".jobs WHERE state = 'COMPLETED'")
        return int(rows[0][0])

    def ledger_rows(self) -> int:
        return int(sql(self.dsn, f'SELECT count(*) FROM "{self.schema}".ledger')[0][0])

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    dsn = require_postgres()
    schema = unique_schema()
    sql(dsn, f'CREATE SCHEMA "{schema}"')
    sql(dsn, f'CREATE TABLE "{schema}".ledger (job_id text NOT NULL, attempt int NOT NULL, pid int NOT NULL)')
    c = Cluster(dsn, schema)
    try:
        yield c
    finally:
        c.stop()
        drop_postgres_schema(schema)


def submit_all(api: str) -> list[str]:
    ids: list[str] = []
    with httpx.Client(base_url=api, timeout=30) as client:
        for start in range(0, JOBS, BATCH):
            body = {"jobs": [{"payload": n, "task": "ledger"} for n in range(start, start + BATCH)]}
            response = client.post("/jobs/batch", json=body)
            assert response.status_code == 200, response.text
            results = response.json()["results"]
            assert all(r["status"] == "accepted" for r in results)
            ids += [r["job_id"] for r in results]
    return ids


def check_every_job_completed_once(cluster: Cluster, ids: list[str]) -> Counter[str]:
    states = sql(cluster.dsn, f'SELECT id, state, result FROM "{cluster.schema}".jobs')
    assert len(states) == JOBS and {r["id"] for r in states} == set(ids)
    assert {r["state"] for r in states} == {"COMPLETED"}
    runs = Counter(r["job_id"] for r in sql(cluster.dsn, f'SELECT job_id FROM "{cluster.schema}".ledger'))
    assert set(runs) == set(ids)  # every job ran, and the ledger names no other job
    return runs


@pytest.mark.timeout(120)
def test_four_workers_and_the_api_complete_ten_thousand_jobs_once_each(cluster: Cluster) -> None:
    api = cluster.start_api()
    for _ in range(WORKERS):
        cluster.start_worker()
    ids = submit_all(api)
    wait_until(lambda: cluster.completed() == JOBS, what=f"{JOBS} completed jobs")
    runs = check_every_job_completed_once(cluster, ids)
    assert set(runs.values()) == {1}  # no fault, no duplicate run
    pids = {r["pid"] for r in sql(cluster.dsn, f'SELECT DISTINCT pid FROM "{cluster.schema}".ledger')}
    assert len(pids) == WORKERS  # the work was shared


@pytest.mark.timeout(120)
def test_a_worker_killed_midway_loses_nothing_and_reruns_only_its_own_jobs(cluster: Cluster) -> None:
    api = cluster.start_api()
    workers = [cluster.start_worker() for _ in range(WORKERS)]
    ids = submit_all(api)
    wait_until(lambda: cluster.ledger_rows() >= JOBS // 3, what="a third of the jobs to run")
    victim = workers[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    wait_until(lambda: cluster.completed() == JOBS, what=f"{JOBS} completed jobs")
    runs = check_every_job_completed_once(cluster, ids)
    twice = {job for job, n in runs.items() if n > 1}
    assert max(runs.values()) <= 2
    ledger = sql(cluster.dsn, f'SELECT job_id, attempt, pid FROM "{cluster.schema}".ledger')
    for job in twice:  # a rerun follows an attempt the killed worker started and never finished
        attempts = sorted((r["attempt"], r["pid"]) for r in ledger if r["job_id"] == job)
        assert attempts[0] == (1, victim.pid) and attempts[1][0] == 2 and attempts[1][1] != victim.pid
    assert len(twice) <= 10  # at most the killed worker's concurrency
