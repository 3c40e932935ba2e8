"""``memory://``: an in-process backend for tests, scripts and the demo.

Nothing survives the process. Every operation runs to completion without awaiting, so each is
atomic on the event loop. Payloads and results are stored as JSON round-trips, as a real store
would, so code that passes here does not depend on object identity.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Mapping, Sequence

from jobqueue.backends.base import Capabilities
from jobqueue.backends.dependents import Dependents, InProcessDependencies
from jobqueue.backends.inprocess import InProcessSchedules
from jobqueue.backends.limiter import Limiter
from jobqueue.backends.memory_admin import MemoryAdministration
from jobqueue.backends.memory_insight import MemoryInsight
from jobqueue.backends.params import ClaimParams, Completion, Failure, Lease
from jobqueue.backends.wakeup import Wakeup
from jobqueue.clock import Clock, SystemClock
from jobqueue.errors import InvalidTransition, JobNotFound, QueueFull
from jobqueue.job import WAITING_STATES, Job, JobState, NewJob, load_json
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, Rejected

S = JobState

# Heap entries: (sort key..., version, job id). The version lets a heap keep stale entries
# (cancelled jobs, jobs re-queued since) and skip them when popped, instead of searching.
_ReadyEntry = tuple[int, int, int, str]  # (-priority, seq, version, id)
_DelayedEntry = tuple[float, int, int, str]  # (due, seq, version, id)


class MemoryBackend(InProcessDependencies, InProcessSchedules, MemoryAdministration, MemoryInsight):
    """The in-process backend. ``clock`` decides leases and due times (a FakeClock in tests)."""

    name = "memory"
    capabilities = Capabilities(shared=False, durable=False, cross_process_wakeup=False, server_clock=False)

    def __init__(self, clock: Clock | None = None) -> None:
        MemoryInsight.__init__(self)
        self.clock: Clock = clock or SystemClock()
        self._jobs: dict[str, Job] = {}
        self._seq: dict[str, int] = {}
        self._version: dict[str, int] = {}
        self._ids: list[str] = []  # sorted, for cursor paging
        self._ready: dict[str, list[_ReadyEntry]] = {}
        self._delayed: dict[str, list[_DelayedEntry]] = {}
        self._processing: set[str] = set()
        self._keys: dict[str, tuple[str, float]] = {}  # key -> (job id, expires at)
        self._counts: dict[str, dict[JobState, int]] = {}
        self._sequence = itertools.count(1)
        self._tokens = itertools.count(1)
        self._wakeup = Wakeup()
        self._dependents = Dependents()
        self._paused: dict[str, bool] = {}  # every queue whose pause state was ever set
        self._limiter = Limiter()

    async def _open(self) -> None:
        return None

    async def _close(self) -> None:
        self._wakeup.wake()

    # ---- bookkeeping ----------------------------------------------------------------------

    def _counts_of(self, queue: str) -> dict[JobState, int]:
        per_queue = self._counts.get(queue)
        if per_queue is None:
            per_queue = self._counts[queue] = dict.fromkeys(JobState, 0)
        return per_queue

    def _ready_heap(self, queue: str) -> list[_ReadyEntry]:
        heap = self._ready.get(queue)
        if heap is None:
            heap = self._ready[queue] = []
        return heap

    def _set_state(self, job: Job, state: JobState) -> None:
        counts = self._counts_of(job.queue)
        counts[job.state] -= 1
        counts[state] += 1
        job.state = state

    def _waiting(self, queue: str) -> int:
        counts = self._counts.get(queue)
        if counts is None:
            return 0
        return counts[S.PENDING] + counts[S.BLOCKED] + counts[S.SCHEDULED] + counts[S.FAILED]

    def _schedule(self, job: Job, due: float, now: float) -> None:
        """Put a waiting job into the ready heap, or the delayed heap when it is due later."""
        version = self._version[job.id] = self._version.get(job.id, 0) + 1
        seq = self._seq[job.id]
        if due <= now:
            heapq.heappush(self._ready.setdefault(job.queue, []), (-job.priority, seq, version, job.id))
        else:
            heapq.heappush(self._delayed.setdefault(job.queue, []), (due, seq, version, job.id))

    def _live(self, job_id: str, version: int) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None or self._version.get(job_id) != version or job.state not in WAITING_STATES:
            return None
        return job

    def _promote_due(self, queue: str, now: float) -> None:
        delayed = self._delayed.get(queue)
        if not delayed:
            return
        ready = self._ready.setdefault(queue, [])
        while delayed and delayed[0][0] <= now:
            _, seq, version, job_id = heapq.heappop(delayed)
            job = self._live(job_id, version)
            if job is not None:
                heapq.heappush(ready, (-job.priority, seq, version, job_id))

    def _held(self, lease: Lease) -> Job | None:
        job = self._jobs.get(lease.job_id)
        if job is None or job.state is not S.PROCESSING or job.lease_token != lease.token:
            return None
        return job

    def _end_lease(self, job: Job) -> None:
        self._processing.discard(job.id)
        job.lease_expires_at = None
        job.worker_id = None
        if self._limiter.left(job):
            self._wakeup.wake()  # a slot is free: a worker waiting for it claims now

    # ---- operations -----------------------------------------------------------------------

    async def _enqueue(self, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None) -> list[EnqueueOutcome]:
        now = self.clock.time()
        outcomes: list[EnqueueOutcome] = []
        accepted = False
        jobs_by_id, ids = self._jobs, self._ids
        for new in jobs:
            existing = jobs_by_id.get(new.id)
            if existing is not None:  # the same job sent again
                outcomes.append(Duplicate(existing.copy()))
                continue
            key = new.idempotency_key
            if key is not None:
                held = self._keys.get(key)
                if held is not None and held[1] > now and held[0] in self._jobs:
                    outcomes.append(Duplicate(self._jobs[held[0]].copy()))
                    continue
            limit = None if capacity is None else capacity.get(new.queue)
            if limit is not None and self._waiting(new.queue) >= limit:
                outcomes.append(Rejected(new.queue, limit))
                continue
            due = new.run_at if new.run_at is not None else now + new.delay
            state = S.SCHEDULED if due > now else S.PENDING
            job_id = new.id
            job = Job(job_id, new.queue, new.task, load_json(new.payload_json), new.priority, state, 0,
                      new.max_retries, key, now, due, timeout=new.timeout, rate_key=new.rate_key)  # fmt: skip
            if new.depends_on and (missing := self._wait_for_parents(new, job, now)) is not None:
                outcomes.append(missing)
                continue
            jobs_by_id[job_id] = job
            seq = self._last_seq = next(self._sequence)
            self._seq[job_id] = seq
            self._version[job_id] = 1
            if not ids or job_id > ids[-1]:
                ids.append(job_id)
            else:
                bisect.insort(ids, job_id)
            state = job.state
            self._counts_of(new.queue)[state] += 1
            if state is S.PENDING:
                heapq.heappush(self._ready_heap(new.queue), (-new.priority, seq, 1, job_id))
            elif state is S.SCHEDULED:
                heapq.heappush(self._delayed.setdefault(new.queue, []), (due, seq, 1, job_id))
            if key is not None:
                self._keys[key] = (job_id, now + new.key_ttl)
            outcomes.append(Accepted(job.copy()))
            accepted = True
        if accepted:
            self._wakeup.wake()
        return outcomes

    async def _claim(self, params: ClaimParams) -> list[Job]:
        now = self.clock.time()
        heaps: list[list[_ReadyEntry]] = []
        budgets: dict[int, int | None] = {}  # by id of heap: what the queue's own limits allow
        paused, limiter = self._paused, self._limiter
        for queue in dict.fromkeys(params.queues):
            if paused and paused.get(queue):
                continue
            self._promote_due(queue, now)
            heap = self._ready.get(queue)
            if heap and (budget := limiter.budget(queue, self._counts_of(queue)[S.PROCESSING], now)) != 0:
                heaps.append(heap)
                budgets[id(heap)] = budget
        claimed: list[Job] = []
        held_back: list[tuple[list[_ReadyEntry], _ReadyEntry]] = []  # jobs of keys at their limit
        expires = now + params.lease
        processing = self._processing
        while heaps and len(claimed) < params.limit:
            best = heaps[0] if len(heaps) == 1 else min(heaps, key=lambda h: h[0][:2])
            entry = heapq.heappop(best)
            job = self._live(entry[3], entry[2])
            if job is not None and not limiter.admits_key(job, now):
                held_back.append((best, entry))
                job = None
            if job is not None:
                self._set_state(job, S.PROCESSING)
                job.lease_token = next(self._tokens)
                job.lease_expires_at = expires
                job.worker_id = params.worker_id
                job.last_attempt = now
                if job.started_at is None:
                    job.started_at = now
                job.next_retry_at = None
                processing.add(job.id)
                limiter.took(job, now)
                claimed.append(job.copy())
                budget = budgets[id(best)]
                if budget is not None:
                    budgets[id(best)] = budget = budget - 1
                    if budget == 0:
                        heaps.remove(best)
                        continue
            if not best:
                heaps.remove(best)
        for heap, entry in held_back:
            heapq.heappush(heap, entry)
        limiter.claimed(params.queues, len(claimed) < params.limit)
        return claimed

    async def _complete(self, completions: Sequence[Completion], results: list[bytes]) -> list[bool]:
        now = self.clock.time()
        done: list[bool] = []
        for completion, result in zip(completions, results, strict=True):
            job = self._held(completion.lease)
            if job is None:
                done.append(False)
                continue
            self._end_lease(job)
            self._set_state(job, S.COMPLETED)
            job.result = None if result == b"null" else load_json(result)  # a copy, as a store gives back
            job.finished_at = now
            if self._dependents.has_waiting(job.id):
                self._resolve_children(job, now)
            done.append(True)
        return done

    async def _fail(self, failures: Sequence[Failure]) -> list[bool]:
        now = self.clock.time()
        done: list[bool] = []
        for failure in failures:
            job = self._held(failure.lease)
            if job is None or (failure.if_expired and (job.lease_expires_at is None or job.lease_expires_at > now)):
                done.append(False)
                continue
            self._record_error(job, failure, now)
            self._end_lease(job)
            job.retry_count += 1
            job.error = failure.error
            if failure.retry_delay is None:
                self._set_state(job, S.DEAD_LETTERED)
                job.finished_at = now
                job.next_retry_at = None
                if self._dependents.has_waiting(job.id):
                    self._resolve_children(job, now)
            else:
                due = now + max(0.0, failure.retry_delay)
                self._set_state(job, S.FAILED)
                job.next_retry_at = job.run_at = due
                self._schedule(job, due, now)
            done.append(True)
        self._wakeup.wake()
        return done

    async def _heartbeat(self, leases: Sequence[Lease], lease: float) -> list[bool]:
        expires = self.clock.time() + lease
        owned: list[bool] = []
        for ref in leases:
            job = self._held(ref)
            if job is not None:
                job.lease_expires_at = expires
            owned.append(job is not None)
        return owned

    async def _release(self, leases: Sequence[Lease]) -> list[bool]:
        now = self.clock.time()
        released: list[bool] = []
        for ref in leases:
            job = self._held(ref)
            if job is not None:
                self._end_lease(job)
                self._set_state(job, S.PENDING)
                job.run_at = now
                self._schedule(job, now, now)
            released.append(job is not None)
        self._wakeup.wake()
        return released

    async def _expired_leases(self, limit: int) -> list[Job]:
        now = self.clock.time()
        expired = [
            job
            for job_id in self._processing
            if (job := self._jobs[job_id]).lease_expires_at is not None and job.lease_expires_at <= now
        ]
        expired.sort(key=lambda j: (j.lease_expires_at or 0.0, j.id))
        return [j.copy() for j in expired[:limit]]

    async def _get(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        return None if job is None else job.copy()

    async def _replay_dead(self, job_id: str, capacity: int | None) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.state is not S.DEAD_LETTERED:
            raise InvalidTransition(job_id, job.state, "replay")
        if capacity is not None and self._waiting(job.queue) >= capacity:
            raise QueueFull(job.queue, capacity)
        now = self.clock.time()
        self._set_state(job, S.PENDING)
        job.retry_count = 0
        job.finished_at = None
        job.next_retry_at = None
        job.run_at = now
        self._schedule(job, now, now)
        self._wakeup.wake()
        return job.copy()

    async def _cancel(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.state not in WAITING_STATES and job.state is not S.PROCESSING:
            raise InvalidTransition(job_id, job.state, "cancel")
        if job.state is S.BLOCKED:
            self._dependents.drop_child(job.id)
        elif job.state is S.PROCESSING:
            self._end_lease(job)
        self._set_state(job, S.CANCELLED)
        job.finished_at = self.clock.time()
        job.next_retry_at = None
        if self._dependents.has_waiting(job.id):
            self._resolve_children(job, job.finished_at)
        return job.copy()

    async def _check_leases(self, leases: Sequence[Lease]) -> list[bool]:
        return [self._held(lease) is not None for lease in leases]

    async def _wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        return await self._wakeup.wait(timeout)

    async def _due_in(self, queues: Sequence[str]) -> float | None:
        # A heap may start with a stale entry (a job cancelled since): the wait then ends early,
        # and the claim after it drops the entry.
        now = self.clock.time()
        firsts = [
            heap[0][0] - now for queue in queues if (heap := self._delayed.get(queue)) and not self._paused.get(queue)
        ]
        for queue in queues:
            if self._limiter.limited(queue) and not self._paused.get(queue):
                token_in = self._limiter.next_token_in(queue, now)
                if token_in is not None:
                    firsts.append(token_in)
        return min(firsts) if firsts else None
