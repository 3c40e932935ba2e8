"""The edges between parents and the children that wait for them, for an in-process store.

Each edge is resolved once: the first time its parent finishes, the parent's list of waiting
children is taken whole, so a parent replayed and finished again finds nothing left to resolve.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import deque
from collections.abc import Iterable, Sequence

from jobqueue.backends.wakeup import Wakeup
from jobqueue.job import FINISHED_STATES, Job, JobState, NewJob, parent_failed_error
from jobqueue.outcomes import MissingParent

S = JobState


class Dependents:
    """Every child of each parent, and the edges still waiting for their parent to finish."""

    def __init__(self) -> None:
        self._children: dict[str, dict[str, None]] = {}  # an ordered set: pruning one is O(1)
        self._waiting_on: dict[str, dict[str, None]] = {}  # parent -> children whose edge is open
        self._unresolved: dict[str, int] = {}  # child -> edges not yet resolved
        self.runs_anyway: set[str] = set()  # children enqueued on_parent_failure="run"

    def add(self, child: str, parents: Iterable[str], unresolved: Iterable[str], runs_anyway: bool) -> None:
        for parent in parents:
            self._children.setdefault(parent, {})[child] = None
        count = 0
        for parent in unresolved:
            self._waiting_on.setdefault(parent, {})[child] = None
            count += 1
        if count:
            self._unresolved[child] = count
        if runs_anyway:
            self.runs_anyway.add(child)

    def has_waiting(self, parent: str) -> bool:
        return parent in self._waiting_on

    def take_waiting(self, parent: str) -> list[str]:
        """The children whose edge to ``parent`` was unresolved; those edges are resolved now."""
        return list(self._waiting_on.pop(parent, ()))

    def resolve_one(self, child: str) -> bool:
        """One of the child's edges resolved; ``True`` when it was the last."""
        left = self._unresolved[child] - 1
        if left:
            self._unresolved[child] = left
            return False
        del self._unresolved[child]
        return True

    def drop_child(self, child: str) -> None:
        """The child failed with its parent: its other edges no longer matter."""
        self._unresolved.pop(child, None)

    def children(self, parent: str) -> list[str]:
        return sorted(self._children.get(parent, ()))

    def forget(self, job: str, parents: Iterable[str]) -> None:
        """The job was pruned: no parent lists it any more, not even as an open edge (a job stored
        later under its id is not this one), and it lists no children."""
        for parent in parents:
            for edges in (self._children, self._waiting_on):
                siblings = edges.get(parent)
                if siblings is not None and siblings.pop(job, 0) is None and not siblings:
                    del edges[parent]
        self._children.pop(job, None)
        self._unresolved.pop(job, None)
        self.runs_anyway.discard(job)


class InProcessDependencies:
    """Dependencies for a store that holds its jobs in the process (memory): each step runs to
    completion without awaiting, so it is atomic with the operation that calls it."""

    _jobs: dict[str, Job]
    _dependents: Dependents
    _wakeup: Wakeup

    @abstractmethod
    def _set_state(self, job: Job, state: JobState) -> None: ...

    @abstractmethod
    def _schedule(self, job: Job, due: float, now: float) -> None: ...

    def _wait_for_parents(self, new: NewJob, job: Job, now: float) -> MissingParent | None:
        """Set the new job's state by its parents' (BLOCKED while any is unfinished) and record
        its edges; ``MissingParent`` (and nothing recorded) when a parent is not stored."""
        unresolved: list[str] = []
        failed_by: Job | None = None
        for parent_id in new.depends_on:
            parent = self._jobs.get(parent_id)
            if parent is None:
                return MissingParent(parent_id)
            if parent.state not in FINISHED_STATES:
                unresolved.append(parent_id)
            elif parent.state is not S.COMPLETED and not new.runs_if_parents_fail and failed_by is None:
                failed_by = parent
        job.parents = tuple(new.depends_on)
        if failed_by is not None:
            job.state, job.finished_at = S.DEAD_LETTERED, now
            job.error = parent_failed_error(failed_by.id, failed_by.state)
            unresolved = []
        elif unresolved:
            job.state = S.BLOCKED
        self._dependents.add(job.id, new.depends_on, unresolved, new.runs_if_parents_fail)
        return None

    def _resolve_children(self, parent: Job, now: float) -> None:
        """The parent has just finished: resolve its edges, releasing or failing its children,
        and their children in turn when they fail."""
        finished = deque([parent])  # first in, first out: a cascade fails children level by level
        released = False
        while finished:
            cause = finished.popleft()
            for child_id in self._dependents.take_waiting(cause.id):
                child = self._jobs.get(child_id)
                if child is None or child.state is not S.BLOCKED:
                    continue
                if cause.state is S.COMPLETED or child_id in self._dependents.runs_anyway:
                    if self._dependents.resolve_one(child_id):
                        due = max(child.run_at, now)
                        self._set_state(child, S.SCHEDULED if due > now else S.PENDING)
                        child.run_at = due
                        self._schedule(child, due, now)
                        released = True
                else:
                    self._dependents.drop_child(child_id)
                    self._set_state(child, S.DEAD_LETTERED)
                    child.error = parent_failed_error(cause.id, cause.state)
                    child.finished_at = now
                    finished.append(child)
        if released:
            self._wakeup.wake()

    async def _get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        return [None if (job := self._jobs.get(job_id)) is None else job.copy() for job_id in job_ids]

    async def _children(self, job_id: str, limit: int) -> list[str]:
        return self._dependents.children(job_id)[:limit]
