"""Small steps the conformance suite's tests share."""

from __future__ import annotations

from jobqueue.backends.base import Backend
from jobqueue.backends.params import ClaimParams, Failure, Lease
from jobqueue.job import Job, JobState, NewJob
from jobqueue.outcomes import Accepted

S = JobState


async def put(backend: Backend, *jobs: NewJob, capacity: dict[str, int] | None = None) -> list[Job]:
    """Enqueue ``jobs``, asserting that every one is accepted."""
    outcomes = await backend.enqueue(jobs, capacity)
    assert all(isinstance(o, Accepted) for o in outcomes), outcomes
    return [o.job for o in outcomes if isinstance(o, Accepted)]


async def claim(
    backend: Backend, limit: int = 10, queues: tuple[str, ...] = ("default",), lease: float = 30.0
) -> list[Job]:
    return await backend.claim(ClaimParams(queues, "worker-1", limit, lease))


def lease_of(job: Job) -> Lease:
    return Lease(job.id, job.lease_token)


async def state_of(backend: Backend, job_id: str) -> JobState:
    job = await backend.get(job_id)
    assert job is not None
    return job.state


async def dead_job(backend: Backend, payload: object = "x") -> Job:
    """A job run once and dead-lettered."""
    (job,) = await put(backend, NewJob(payload, max_retries=0))
    (claimed,) = await claim(backend, limit=1)
    assert claimed.id == job.id
    await backend.fail([Failure(lease_of(claimed), "boom", None)])
    return job
