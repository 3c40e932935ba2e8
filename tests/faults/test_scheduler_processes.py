"""Five worker processes run the scheduler on one store (SQLite, PostgreSQL, Redis) for a schedule
of one tick a second; one of them is killed with SIGKILL midway. Every tick becomes exactly one
job, and none is lost: the jobs' ticks (in their idempotency keys) are unique and consecutive.
``scripts/faults`` runs 60 ticks; CI runs 8."""

from __future__ import annotations

import itertools
import os
import signal
from datetime import datetime

import pytest

from tests.integration import test_worker_faults
from tests.integration.test_worker_faults import Cluster, jobs, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # its waits have deadlines of their own
TICKS = 60 if os.environ.get("JOBQUEUE_FAULTS_LONG") else 8
SCHEDULERS = 5
cluster = test_worker_faults.cluster  # the fixture: worker processes on each shared store


def ticks(url: str) -> list[float]:
    """The tick of every job the schedule made, from its key ``schedule:tick@<ISO time>``."""
    keys = [job.idempotency_key for job in jobs(url)]  # type: ignore[attr-defined]
    return sorted(datetime.fromisoformat(key.partition("@")[2]).timestamp() for key in keys if key)


def test_each_tick_is_one_job_across_schedulers_and_a_kill(cluster: Cluster) -> None:
    procs = [cluster.worker(app="tests.integration.scheduleapp:app") for _ in range(SCHEDULERS)]
    wait_until(lambda: len(ticks(cluster.url)) >= TICKS // 2, timeout=TICKS + 30, what=f"{TICKS // 2} ticks")
    os.killpg(procs[0].pid, signal.SIGKILL)  # a scheduler dies mid-run; the others go on
    wait_until(lambda: len(ticks(cluster.url)) >= TICKS, timeout=TICKS + 30, what=f"{TICKS} ticks")
    fired = ticks(cluster.url)
    assert len(fired) == len(set(fired)), "a tick became two jobs"
    gaps = [b - a for a, b in itertools.pairwise(fired)]
    assert set(gaps) == {1.0}, f"ticks lost or out of step: {gaps}"
