"""Workflows built on ``depends_on``: chains (``a.then(b).then(c)``) and groups with a callback.

A flow is a description until it is enqueued: :meth:`FlowRunner.enqueue_flow` turns it into jobs
whose ``depends_on`` name the jobs before them and stores them all in one backend call. Each step
reads what the steps before it returned in ``current_job().parent_results``. ::

    flow = fetch.step(url).then(parse.step({})).then(group(index.step(1), notify.step(2)))
    flow = group(*(resize.step(i) for i in images)).then(report.step({}))  # a callback after all
    jobs = await app.enqueue_flow(flow)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jobqueue.backends.base import Backend
from jobqueue.errors import QueueFull, ValidationError
from jobqueue.job import Job, NewJob
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, MissingParent, Rejected

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Step:
    """One job of a flow: a task, its payload and enqueue options (as :meth:`JobQueue.enqueue`)."""

    task: str
    payload: Any
    options: Mapping[str, Any] = field(default_factory=dict)

    def then(self, after: Flow) -> Chain:
        """A chain: ``after`` starts once this step has completed."""
        return Chain((self,)).then(after)


@dataclass(frozen=True, slots=True)
class Group:
    """Flows that run side by side; what follows a group waits for every one of them."""

    members: tuple[Flow, ...]

    def then(self, after: Flow) -> Chain:
        """A chain: ``after`` (the group's callback) starts once every member has completed."""
        return Chain((self,)).then(after)


@dataclass(frozen=True, slots=True)
class Chain:
    """Flows run one after another: each link starts once the one before it has completed."""

    links: tuple[Flow, ...]

    def then(self, after: Flow) -> Chain:
        return Chain((*self.links, after))


Flow = Step | Group | Chain


def group(*members: Flow | Iterable[Flow]) -> Group:
    """Run ``members`` side by side: ``group(a, b)``, or ``group(step for ...)``."""
    flat: list[Flow] = []
    for member in members:
        if isinstance(member, Step | Group | Chain):
            flat.append(member)
        else:
            flat.extend(member)
    if not flat:
        raise ValidationError("group", "needs at least one member")
    return Group(tuple(flat))


def flow_jobs(flow: Flow, make_job: Callable[[Step, tuple[str, ...]], NewJob]) -> list[NewJob]:
    """The jobs of ``flow``, each after its parents; ``make_job(step, parents)`` builds one."""
    jobs: list[NewJob] = []

    def build(node: Flow, parents: tuple[str, ...]) -> tuple[str, ...]:
        """Add the jobs of ``node`` after ``parents``; the ids that end it (what follows waits for)."""
        if isinstance(node, Step):
            job = make_job(node, parents)
            jobs.append(job)
            return (job.id,)
        if isinstance(node, Chain):
            for link in node.links:
                parents = build(link, parents)
            return parents
        return tuple(tail for member in node.members for tail in build(member, parents))

    build(flow, ())
    return jobs


def missing_parent_message(outcome: MissingParent) -> str:
    return f"job {outcome.parent} does not exist (a parent must be stored before its children)"


async def adopt_orphans(
    backend: Backend, jobs: Sequence[NewJob], outcomes: list[EnqueueOutcome], capacity: Mapping[str, int] | None
) -> None:
    """Enqueue again the jobs of a batch refused for a parent of the same batch that came out a
    Duplicate: they wait for the job holding its key instead (a flow sent twice, say after a lost
    answer, resumes the stored one). ``outcomes`` is updated in place."""
    members = {job.id for job in jobs}
    for _ in range(len(jobs)):
        stand_in = {
            job.id: outcome.job.id
            for job, outcome in zip(jobs, outcomes, strict=True)
            if type(outcome) is Duplicate and outcome.job.id != job.id
        }
        stored = {job.id for job, outcome in zip(jobs, outcomes, strict=True) if type(outcome) in (Accepted, Duplicate)}
        again = [
            i
            for i, outcome in enumerate(outcomes)
            if isinstance(outcome, MissingParent) and outcome.parent in members and outcome.parent in stored
        ]
        if not again:
            return
        retried = [
            dataclasses.replace(jobs[i], depends_on=[stand_in.get(p, p) for p in jobs[i].depends_on]) for i in again
        ]
        for i, outcome in zip(again, await backend.enqueue(retried, capacity), strict=True):
            outcomes[i] = outcome


class FlowRunner:
    """The flow methods of :class:`~jobqueue.app.JobQueue`."""

    tasks: Mapping[str, Any]

    def new_job(self, task: str | Any, payload: Any, **overrides: Any) -> NewJob:
        raise NotImplementedError

    async def enqueue_many(self, jobs: list[NewJob]) -> list[EnqueueOutcome]:
        raise NotImplementedError

    def enqueue_many_sync(self, jobs: list[NewJob]) -> list[EnqueueOutcome]:
        raise NotImplementedError

    async def refresh_tasks(self) -> None:
        raise NotImplementedError

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        raise NotImplementedError

    def step(self, task: str, payload: Any, **options: Any) -> Step:
        """A step of a flow for a task known by name (``my_task.step(...)`` for a registered one).
        Options are those of :meth:`JobQueue.enqueue`, checked when the flow is enqueued."""
        return Step(task, payload, options)

    def _flow_jobs(self, flow: Flow) -> list[NewJob]:
        def make_job(step: Step, parents: tuple[str, ...]) -> NewJob:
            own = step.options.get("depends_on") or ()
            options = {**step.options, "depends_on": [*parents, *own]}
            return self.new_job(step.task, step.payload, **options)

        return flow_jobs(flow, make_job)

    async def enqueue_flow(self, flow: Flow) -> list[Job]:
        """Enqueue every job of ``flow`` in one call, each waiting for those before it; the jobs
        in flow order (a chain's last step last). Raises ``QueueFull`` (or ``ValidationError``)
        when one was refused: the jobs before it are stored and run, those waiting for it are not."""
        jobs = self._flow_jobs(flow)
        if any(job.task not in self.tasks for job in jobs):  # as enqueue: the defaults workers stored
            await self.refresh_tasks()
            jobs = self._flow_jobs(flow)
        return _unwrap_all(await self.enqueue_many(jobs))

    def enqueue_flow_sync(self, flow: Flow) -> list[Job]:
        """:meth:`enqueue_flow` from synchronous code."""
        return _unwrap_all(self.enqueue_many_sync(self._flow_jobs(flow)))


def _unwrap_all(outcomes: list[EnqueueOutcome]) -> list[Job]:
    jobs: list[Job] = []
    for outcome in outcomes:
        if isinstance(outcome, Rejected):
            raise QueueFull(outcome.queue, outcome.capacity)
        if isinstance(outcome, MissingParent):
            raise ValidationError("depends_on", missing_parent_message(outcome))
        jobs.append(outcome.job)
    return jobs
