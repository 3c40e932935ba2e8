"""A private PostgreSQL crashed (``pg_ctl -m immediate``) twice under a submit flood while two
worker processes run its jobs: every job the store accepted completes, none by a fenced lease.
The history checker's figures are printed at the end (``pytest -s`` shows them)."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobqueue import JobQueue, JobState
from jobqueue.errors import JobQueueError
from tests.faults import history
from tests.faults.servers import PrivatePostgres
from tests.integration.test_worker_faults import Cluster, jobs, wait_until

pytestmark = pytest.mark.slow
#: scripts/faults sets JOBQUEUE_FAULTS_LONG: many more jobs and crashes than the CI variant.
LONG = bool(os.environ.get("JOBQUEUE_FAULTS_LONG"))
SUBMITS = 6000 if LONG else 600
CRASHES = 8 if LONG else 2


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(tmp_path).create()
    try:
        yield server
    finally:
        server.destroy()


class Submitter(threading.Thread):
    """Submits one job at a time, as a web app would; keeps the ids the store answered accepted."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.accepted: set[str] = set()
        self.refused = 0
        self.tried = 0

    def run(self) -> None:
        app = JobQueue(self.url)
        try:
            for n in range(SUBMITS):
                self.tried = n + 1
                try:
                    self.accepted.add(app.enqueue_sync("mark", n).id)
                except JobQueueError:
                    self.refused += 1  # the store was down: the client was told, nothing is promised
        finally:
            app.close_sync()


def all_completed(url: str, ids: set[str]) -> bool:
    return ids <= {job.id for job in jobs(url) if job.state is JobState.COMPLETED}  # type: ignore[attr-defined]


def tried_at_least(submitter: Submitter, n: int) -> bool:
    # Counts attempts, not acceptances: submits refused during an outage must not push a crash
    # mark out of reach.
    return submitter.tried >= n


def test_postgres_crashes_under_load_lose_no_accepted_job(tmp_path: Path, postgres: PrivatePostgres) -> None:
    url = f"{postgres.url}?statement_timeout=2&connect_timeout=2&pool_size=3"
    cluster = Cluster(tmp_path, url)
    try:
        first = JobQueue(url)
        first.enqueue_sync("mark", "first")  # creates the schema before the workers start
        first.close_sync()
        for _ in range(2):
            cluster.worker("--concurrency", "10", "--lease", "2", "--reaper-interval", "0.5")
        submitter = Submitter(url)
        submitter.start()
        for mark in (SUBMITS * (n + 1) // (CRASHES + 1) for n in range(CRASHES)):
            wait_until(functools.partial(tried_at_least, submitter, mark), timeout=60, what=f"{mark} submits")
            postgres.crash()
            postgres.start()
        submitter.join(120)
        assert not submitter.is_alive(), f"the submitter hung after {submitter.tried} submits"
        accepted = submitter.accepted
        wait_until(functools.partial(all_completed, url, accepted), timeout=90, what="every accepted job to complete")
        report = history.check(accepted, cluster.attempts("mark"), jobs(url))  # type: ignore[arg-type]
        print(f"\n{report}; {submitter.refused} submits refused while the store was down")
        assert report.violations == 0, report
        assert report.accepted > SUBMITS // 2
    finally:
        cluster.stop_all()
