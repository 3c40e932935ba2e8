"""The server stores crashed under load: a private PostgreSQL (``pg_ctl -m immediate``) and a private
Redis with AOF (``kill -9``), while producers flood them and worker processes run their jobs.

Checked by the history checker: every job the store accepted completes, none by a fenced lease,
and a capped queue never holds more than its capacity, crash or not. The figures are printed at
the end (``pytest -s`` shows them; ``scripts/faults`` runs the long variant).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from jobqueue import JobQueue, JobState
from jobqueue.errors import JobQueueError, QueueFull
from tests.faults import history
from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.integration.test_worker_faults import Cluster, jobs, wait_until

#: Each run waits on its own deadlines (60 s per crash mark, 120 s for the submitter, 90 s to
#: complete); the suite's 60 s guard against hangs would cut a run on a loaded machine short.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
#: scripts/faults sets JOBQUEUE_FAULTS_LONG: many more jobs and crashes than the CI variant.
LONG = bool(os.environ.get("JOBQUEUE_FAULTS_LONG"))
SUBMITS = 6000 if LONG else 600
CRASHES = 8 if LONG else 2
CAPACITY = 2000 if LONG else 300


class Store(Protocol):
    @property
    def url(self) -> str: ...

    def crash(self) -> None: ...

    def start(self) -> None: ...


@pytest.fixture(params=["postgres", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        postgres = PrivatePostgres(tmp_path).create()
        try:
            yield postgres
        finally:
            postgres.destroy()
    else:
        # appendfsync always: what docs/redis.md asks of a Redis that must not lose an accepted job.
        redis = PrivateRedis(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
        redis.start()
        try:
            yield redis
        finally:
            redis.kill()


def client_url(store: Store) -> str:
    """Short timeouts, so that calls during the outage fail fast instead of piling up."""
    if store.url.startswith("postgresql"):
        return f"{store.url}?statement_timeout=2&connect_timeout=2&pool_size=3"
    return f"{store.url}?command_timeout=2&connect_timeout=2"


def claims_durable(store: Store) -> bool:
    """PostgreSQL's default durability commits claims asynchronously: a crash may undo the last
    ones, and the job runs again under the same attempt number. Redis with ``appendfsync always``
    writes every command before it answers."""
    return not store.url.startswith("postgresql")


class Submitter(threading.Thread):
    """Submits one job at a time, as a web app would, and keeps what the store answered: the ids
    it accepted, and how many it refused as full or as unavailable. Stops after ``limit`` submits
    or when ``stop`` is set."""

    def __init__(self, url: str, limit: int, queue: str = "default", capacity: int | None = None) -> None:
        super().__init__(daemon=True)
        self.app = JobQueue(url, capacity=capacity)
        self.limit, self.queue = limit, queue
        self.stop = threading.Event()
        self.accepted: set[str] = set()
        self.tried = self.full = self.unavailable = 0

    def run(self) -> None:
        try:
            while self.tried < self.limit and not self.stop.is_set():
                self.tried += 1
                try:
                    self.accepted.add(self.app.enqueue_sync("mark", self.tried, queue=self.queue).id)
                except QueueFull:
                    self.full += 1
                except JobQueueError:
                    self.unavailable += 1  # the store was down: the client was told, nothing is promised
        finally:
            self.app.close_sync()


def all_completed(url: str, ids: set[str]) -> bool:
    return ids <= {job.id for job in jobs(url) if job.state is JobState.COMPLETED}  # type: ignore[attr-defined]


def tried_at_least(submitter: Submitter, n: int) -> bool:
    # Counts attempts, not acceptances: submits refused during an outage must not push a crash
    # mark out of reach.
    return submitter.tried >= n


def test_crashes_under_load_lose_no_accepted_job(tmp_path: Path, store: Store) -> None:
    url = client_url(store)
    cluster = Cluster(tmp_path, url)
    try:
        first = JobQueue(url)
        first.enqueue_sync("mark", "first")  # creates the schema before the workers start
        first.close_sync()
        for _ in range(2):
            cluster.worker("--concurrency", "10", "--lease", "2", "--reaper-interval", "0.5")
        submitter = Submitter(url, SUBMITS)
        submitter.start()
        for mark in (SUBMITS * (n + 1) // (CRASHES + 1) for n in range(CRASHES)):
            wait_until(functools.partial(tried_at_least, submitter, mark), timeout=60, what=f"{mark} submits")
            store.crash()
            store.start()
        submitter.join(120)
        assert not submitter.is_alive(), f"the submitter hung after {submitter.tried} submits"
        accepted = submitter.accepted
        wait_until(functools.partial(all_completed, url, accepted), timeout=90, what="every accepted job to complete")
        report = history.check(accepted, cluster.attempts("mark"), jobs(url),  # type: ignore[arg-type]
                               claims_durable=claims_durable(store))  # fmt: skip
        print(f"\n{report}; {submitter.unavailable} submits refused while the store was down")
        assert report.violations == 0, report
        assert report.accepted > SUBMITS // 2
    finally:
        cluster.stop_all()


def test_a_capped_queue_holds_its_capacity_across_a_crash(tmp_path: Path, store: Store) -> None:
    """Four producers race to fill a capped queue that no worker serves yet; the store crashes when
    it is half full. The queue ends exactly full: no producer got past the capacity, before, during
    or after the crash, and every job it accepted is there and then runs."""
    url = client_url(store)
    producers = [Submitter(url, limit=10 * CAPACITY, queue="capped", capacity=CAPACITY) for _ in range(4)]
    for producer in producers:
        producer.start()

    def accepted() -> int:
        return sum(len(p.accepted) for p in producers)

    def all_refused_as_full() -> bool:
        return all(p.full > 0 for p in producers)

    wait_until(lambda: accepted() >= CAPACITY // 2, timeout=60, what="the queue half full")
    store.crash()
    store.start()
    wait_until(all_refused_as_full, timeout=60, what="every producer to be told the queue is full")
    for producer in producers:
        producer.stop.set()
        producer.join(30)
    ids = set().union(*(p.accepted for p in producers))
    stored = [job for job in jobs(url) if job.queue == "capped"]  # type: ignore[attr-defined]
    full, unavailable = sum(p.full for p in producers), sum(p.unavailable for p in producers)
    print(f"\ncapacity {CAPACITY}: {len(ids)} accepted, {len(stored)} stored; {full} full, {unavailable} down")
    # A submit refused as unavailable may still have been stored (its answer was lost with the
    # connection): it counts against the capacity like any other.
    assert len(stored) == CAPACITY
    assert ids <= {job.id for job in stored}  # type: ignore[attr-defined]

    cluster = Cluster(tmp_path, url)
    try:
        cluster.worker("--queues", "capped", "--concurrency", "10")
        wait_until(functools.partial(all_completed, url, ids), timeout=60, what="the capped queue to drain")
        drained = [job for job in jobs(url) if job.queue == "capped"]  # type: ignore[attr-defined]
        report = history.check(ids, cluster.attempts("mark"), drained,  # type: ignore[arg-type]
                               claims_durable=claims_durable(store))  # fmt: skip
        assert report.violations == 0, report
    finally:
        cluster.stop_all()
