"""Recovering jobs whose worker vanished: an expired lease counts as a failed attempt.

The backend finds expired leases; what each becomes (a retry after backoff, or the dead-letter
queue when its attempts are spent) is decided by the same rule as any other failure
(:func:`jobqueue.retry.after_failure`). Each job is failed with the lease token it was found
with, so a worker that completes it at the same moment and the reaper cannot both succeed:
exactly one write wins. Every worker runs a reaper; several on one store are harmless.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from jobqueue.backends.base import Backend
from jobqueue.backends.params import Failure, Lease
from jobqueue.clock import Clock
from jobqueue.retry import DEFAULT_RETRY_POLICY, RetryPolicy, after_failure
from jobqueue.status import WorkerMetrics
from jobqueue.worker.service import PeriodicService
from jobqueue.worker.signals import WorkerSignals

log = logging.getLogger("jobqueue.worker")

WORKER_LOST = "worker lost: lease expired before the attempt finished"


def _default_policy(task: str) -> RetryPolicy:
    return DEFAULT_RETRY_POLICY


async def recover_expired(
    backend: Backend,
    policy_for: Callable[[str], RetryPolicy] = _default_policy,
    *,
    limit: int = 1000,
    rng: random.Random | None = None,
) -> int:
    """Fail every expired lease (up to ``limit``) as "worker lost"; returns how many were recovered."""
    expired = await backend.expired_leases(limit)
    if not expired:
        return 0
    failures = [
        Failure(
            Lease(job.id, job.lease_token),
            WORKER_LOST,
            after_failure(job.retry_count, job.max_retries, policy_for(job.task), rng=rng),
            if_expired=True,
        )
        for job in expired
    ]
    return sum(await backend.fail(failures))


class Reaper(PeriodicService):
    """Recovers expired leases of any worker every ``every`` seconds (jittered +/-20 %)."""

    name = "reaper"
    run_at_start = True

    def __init__(
        self,
        backend: Backend,
        policy_for: Callable[[str], RetryPolicy],
        every: float,
        clock: Clock,
        metrics: WorkerMetrics,
        signals: WorkerSignals,
    ) -> None:
        super().__init__(clock)
        self.backend = backend
        self.policy_for = policy_for
        self.every = every
        self.metrics = metrics
        self.signals = signals

    def interval(self) -> float:
        return self.every * random.uniform(0.8, 1.2)

    async def run_once(self) -> int:
        """Recover the expired leases now; returns how many."""
        recovered = await recover_expired(self.backend, self.policy_for)
        if recovered:
            self.metrics.recovered += recovered
            log.warning("worker.recovered id=%s jobs=%d (lease expired: worker lost)", self.owner, recovered)
        self.signals.lease_recovered.signal(recovered)
        return recovered
