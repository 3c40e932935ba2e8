"""Recovering jobs whose worker vanished: an expired lease counts as a failed attempt.

The backend finds expired leases; the decision (retry after backoff, or dead-letter when the
attempts are spent) is made here, by the same rule as any other failure. Each job is failed with
the lease token it was found with, so a worker that completes it at the same moment and this
reaper cannot both succeed: exactly one write wins.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from jobqueue.backends.base import Backend, Failure, Lease
from jobqueue.retry import DEFAULT_RETRY_POLICY, RetryPolicy, retry_delay_after_failure

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
            retry_delay_after_failure(job.retry_count, job.max_retries, policy_for(job.task), rng),
            if_expired=True,
        )
        for job in expired
    ]
    return sum(await backend.fail(failures))
