"""A model-based test of every backend: random sequences of operations checked against a reference model.

Hypothesis drives one backend per example through enqueue (with priorities, delays, idempotency
keys and a capacity), claim, complete, fail, heartbeat and release (with current and stale leases),
lease expiry and recovery, DLQ replay, cancel, time passing and pruning. After every step the whole
store is read back and compared with a plain-Python model, so that a lost, duplicated or wrongly
changed job, a wrong claim order or a drifting count is caught at the step that caused it.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from jobqueue.backends import Backend, ClaimParams, Completion, Failure, Lease, ListParams, PruneParams
from jobqueue.clock import FakeClock
from jobqueue.errors import InvalidTransition, JobNotFound, QueueFull
from jobqueue.job import FINISHED_STATES, TRANSITIONS, WAITING_STATES, Job, JobState, NewJob
from jobqueue.outcomes import Accepted, Duplicate, PruneResult, Rejected, empty_counts
from jobqueue.retry import RetryPolicy, after_failure
from jobqueue.worker import WORKER_LOST, recover_expired
from tests.backends import ALL_BACKENDS, open_backend

S = JobState
T = TypeVar("T")

QUEUE = "q"
CAPACITY = 5
LEASE = 10.0
KEY_TTL = 50.0
WORKER = "worker-1"
KEYS = ("k0", "k1", "k2")
MISSING_ID = "00000000-0000-7000-8000-000000000000"
#: Jitter-free, so that the model can predict the delay the reaper chooses.
POLICY = RetryPolicy(base=2.0, factor=2.0, max_delay=8.0, jitter="none")

SETTINGS = settings(max_examples=40, stateful_step_count=30, deadline=None)

job_specs = st.tuples(
    st.integers(-2, 2),  # priority: a narrow range, so that ties (FIFO) are common
    st.sampled_from([None, None, *KEYS]),  # idempotency key
    st.sampled_from([0.0, 0.0, 0.0, 5.0, 30.0]),  # delay
    st.integers(0, 2),  # max_retries
)
ages = st.sampled_from([None, 0.0, 0.0, 30.0])


def allowed(source: JobState, target: JobState) -> bool:
    """A transition of the table, or a composite through PENDING whose first edge is "due".

    Becoming due is not an operation: a backend may leave a due SCHEDULED or FAILED job in its
    state until it is claimed or cancelled, so ``X -due-> PENDING -op-> Y`` may be seen as one step.
    """
    if (source, target) in TRANSITIONS:
        return True
    return TRANSITIONS.get((source, S.PENDING)) == "due" and (S.PENDING, target) in TRANSITIONS


@dataclass
class Expected:
    """What the model says one stored job looks like."""

    id: str
    seq: int
    payload: Any
    priority: int
    max_retries: int
    idempotency_key: str | None
    created_at: float
    state: JobState
    run_at: float
    retry_count: int = 0
    token: int | None = None
    lease_expires_at: float | None = None
    started_at: float | None = None
    last_attempt: float | None = None
    finished_at: float | None = None
    next_retry_at: float | None = None
    error: str | None = None
    result: Any = None
    tokens_seen: set[int] = field(default_factory=set)

    def fields(self) -> dict[str, Any]:
        return {
            "queue": QUEUE,
            "task": "default",
            "payload": self.payload,
            "priority": self.priority,
            "state": self.state,
            "retry_count": self.retry_count,
            "max_retries": self.max_retries,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
            "run_at": self.run_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "last_attempt": self.last_attempt,
            "next_retry_at": self.next_retry_at,
            "error": self.error,
            "result": self.result,
            "lease_expires_at": self.lease_expires_at,
            "worker_id": WORKER if self.state is S.PROCESSING else None,
        }


def actual_fields(job: Job) -> dict[str, Any]:
    return {
        "queue": job.queue,
        "task": job.task,
        "payload": job.payload,
        "priority": job.priority,
        "state": job.state,
        "retry_count": job.retry_count,
        "max_retries": job.max_retries,
        "idempotency_key": job.idempotency_key,
        "created_at": job.created_at,
        "run_at": job.run_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "last_attempt": job.last_attempt,
        "next_retry_at": job.next_retry_at,
        "error": job.error,
        "result": job.result,
        "lease_expires_at": job.lease_expires_at,
        "worker_id": job.worker_id,
    }


class BackendMachine(RuleBasedStateMachine):
    backend_name = "memory"  # set by the subclass each test makes

    leases: Bundle[Lease] = Bundle("leases")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="jobqueue-stateful-"))
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.backend: Backend | None = None
        self.backend = self.run(open_backend(self.backend_name, self.tmp, self.clock))
        self.jobs: dict[str, Expected] = {}  # live jobs (not pruned)
        self.ever: list[str] = []  # every accepted id, pruned ones included
        self.keys: dict[str, tuple[str, float]] = {}  # key -> (job id, expires at)
        self.observed: dict[str, JobState] = {}  # states as last read back from the backend
        self.payloads = itertools.count()
        self.seq = itertools.count()

    def teardown(self) -> None:
        try:
            if self.backend is not None:
                self.run(self.backend.close())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers ----------------------------------------------------------------------------

    def run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(awaitable)

    @property
    def store(self) -> Backend:
        assert self.backend is not None
        return self.backend

    def now(self) -> float:
        return self.clock.time()

    def waiting(self) -> int:
        return sum(1 for j in self.jobs.values() if j.state in WAITING_STATES)

    def key_holder(self, key: str | None, now: float) -> Expected | None:
        if key is None or key not in self.keys:
            return None
        job_id, expires = self.keys[key]
        if expires <= now:
            return None
        return self.jobs.get(job_id)

    def holder_of(self, lease: Lease) -> Expected | None:
        job = self.jobs.get(lease.job_id)
        if job is None or job.state is not S.PROCESSING or job.token != lease.token:
            return None
        return job

    def end_lease(self, job: Expected) -> None:
        job.token = None
        job.lease_expires_at = None

    def apply_failure(self, job: Expected, error: str, delay: float | None, now: float) -> None:
        self.end_lease(job)
        job.retry_count += 1
        job.error = error
        if delay is None:
            job.state = S.DEAD_LETTERED
            job.finished_at = now
            job.next_retry_at = None
        else:
            job.state = S.FAILED
            job.run_at = job.next_retry_at = now + delay

    def check(self, job: Job, expected: Expected) -> None:
        assert job.id == expected.id
        assert actual_fields(job) == expected.fields(), f"job {job.id} differs from the model"
        if expected.state is S.PROCESSING:
            assert job.lease_token == expected.token

    def list_all(self, **filters: Any) -> list[Job]:
        """Every job matching the filters, read page by page (small pages, to exercise the cursor)."""
        jobs: list[Job] = []
        cursor: str | None = None
        for _ in range(10_000):
            page = self.run(self.store.list_jobs(ListParams(cursor=cursor, limit=4, **filters)))
            assert len(page.jobs) <= 4
            jobs.extend(page.jobs)
            if page.next_cursor is None:
                return jobs
            assert page.jobs, "a page with a next cursor must not be empty"
            assert page.next_cursor == page.jobs[-1].id
            cursor = page.next_cursor
        raise AssertionError("list_jobs paging did not end")

    # ---- producers --------------------------------------------------------------------------

    @initialize(specs=st.lists(job_specs, min_size=1, max_size=4))
    def initial_jobs(self, specs: list[tuple[int, str | None, float, int]]) -> None:
        self.enqueue(specs)

    @rule(specs=st.lists(job_specs, min_size=1, max_size=3))
    def enqueue(self, specs: list[tuple[int, str | None, float, int]]) -> None:
        now = self.now()
        new_jobs = [
            NewJob(
                payload={"n": next(self.payloads)},
                queue=QUEUE,
                priority=priority,
                max_retries=max_retries,
                idempotency_key=key,
                key_ttl=KEY_TTL,
                delay=delay,
            )
            for priority, key, delay, max_retries in specs
        ]
        outcomes = self.run(self.store.enqueue(new_jobs, capacity={QUEUE: CAPACITY}))
        assert len(outcomes) == len(new_jobs)
        # Later jobs of a batch see earlier ones, so the model is updated job by job.
        for new, outcome in zip(new_jobs, outcomes, strict=True):
            holder = self.key_holder(new.idempotency_key, now)
            if holder is not None:
                assert isinstance(outcome, Duplicate), f"key {new.idempotency_key} is live: {outcome}"
                event("enqueue: duplicate")
                self.check(outcome.job, holder)
                continue
            if self.waiting() >= CAPACITY:
                assert outcome == Rejected(QUEUE, CAPACITY), f"queue holds {self.waiting()} waiting jobs"
                event("enqueue: rejected (full)")
                continue
            assert isinstance(outcome, Accepted), f"expected Accepted, got {outcome}"
            if new.idempotency_key is not None and new.idempotency_key in self.keys:
                event("enqueue: key reused after expiry or prune")
            due = now + new.delay
            expected = Expected(
                id=new.id,
                seq=next(self.seq),
                payload=new.payload,
                priority=new.priority,
                max_retries=new.max_retries,
                idempotency_key=new.idempotency_key,
                created_at=now,
                state=S.SCHEDULED if due > now else S.PENDING,
                run_at=due,
            )
            self.check(outcome.job, expected)
            self.jobs[new.id] = expected
            self.ever.append(new.id)
            if new.idempotency_key is not None:
                self.keys[new.idempotency_key] = (new.id, now + KEY_TTL)
            assert self.waiting() <= CAPACITY

    # ---- workers ----------------------------------------------------------------------------

    def do_claim(self, limit: int) -> list[Job]:
        now = self.now()
        due = sorted(
            (j for j in self.jobs.values() if j.state in WAITING_STATES and j.run_at <= now),
            key=lambda j: (-j.priority, j.seq),
        )
        claimed = self.run(self.store.claim(ClaimParams([QUEUE], WORKER, limit, LEASE)))
        assert [j.id for j in claimed] == [j.id for j in due[:limit]], "claim order: priority desc, then FIFO"
        event(f"claim: {len(claimed)} jobs")
        for job in claimed:
            expected = self.jobs[job.id]
            assert job.lease_token not in expected.tokens_seen, "every claim must get a fresh token"
            expected.tokens_seen.add(job.lease_token)
            expected.state = S.PROCESSING
            expected.token = job.lease_token
            expected.lease_expires_at = now + LEASE
            expected.last_attempt = now
            expected.next_retry_at = None
            if expected.started_at is None:
                expected.started_at = now
            self.check(job, expected)
        return claimed

    def do_complete(self, leases: list[Lease], n: int) -> None:
        held = [self.holder_of(lease) for lease in leases]
        done = self.run(self.store.complete([Completion(lease, {"result": n}) for lease in leases]))
        assert done == [job is not None for job in held], f"complete {leases}"
        for job in held:
            event(f"complete: {'held' if job else 'stale'}")
            if job is not None:
                self.end_lease(job)
                job.state = S.COMPLETED
                job.result = {"result": n}
                job.finished_at = self.now()

    def do_fail(self, failures: list[tuple[Lease, float | None]]) -> None:
        held = [self.holder_of(lease) for lease, _ in failures]
        done = self.run(self.store.fail([Failure(lease, "boom", delay) for lease, delay in failures]))
        assert done == [job is not None for job in held], f"fail {failures}"
        for job, (_, delay) in zip(held, failures, strict=True):
            event(f"fail: {'stale' if job is None else 'dead' if delay is None else 'retry'}")
            if job is not None:
                self.apply_failure(job, "boom", delay, self.now())

    def do_release(self, leases: list[Lease]) -> None:
        held = [self.holder_of(lease) for lease in leases]
        released = self.run(self.store.release(leases))
        assert released == [job is not None for job in held], f"release {leases}"
        for job in held:
            event(f"release: {'held' if job else 'stale'}")
            if job is not None:
                self.end_lease(job)
                job.state = S.PENDING
                job.run_at = self.now()

    @rule(target=leases, limit=st.integers(1, 3))
    def claim(self, limit: int) -> MultipleResults[Lease]:
        return multiple(*(Lease(j.id, j.lease_token) for j in self.do_claim(limit)))

    @rule(
        target=leases,
        limit=st.integers(1, 3),
        outcomes=st.lists(st.sampled_from(["complete", "retry", "dead", "release", "keep"]), min_size=3, max_size=3),
    )
    def work(self, limit: int, outcomes: list[str]) -> MultipleResults[Lease]:
        """A worker's round: claim, then settle each job in one batch call per kind of outcome."""
        claimed = [Lease(j.id, j.lease_token) for j in self.do_claim(limit)]
        self.observe()  # so that each observed state change is one operation's
        chosen = list(zip(claimed, outcomes, strict=False))
        if completions := [lease for lease, what in chosen if what == "complete"]:
            self.do_complete(completions, len(completions))
        failures = [(lease, 3.0 if what == "retry" else None) for lease, what in chosen if what in ("retry", "dead")]
        if failures:
            self.do_fail(failures)
        if releases := [lease for lease, what in chosen if what == "release"]:
            self.do_release(releases)
        return multiple(*claimed)

    @rule(target=leases, lease=leases)
    def forge_stale_lease(self, lease: Lease) -> Lease:
        """A token no claim handed out: every operation must refuse it."""
        return Lease(lease.job_id, lease.token + 1000)

    @rule(lease=leases, n=st.integers(0, 9))
    def complete(self, lease: Lease, n: int) -> None:
        self.do_complete([lease], n)

    @rule(lease=leases, delay=st.sampled_from([None, 0.0, 3.0, 20.0]))
    def fail(self, lease: Lease, delay: float | None) -> None:
        self.do_fail([(lease, delay)])

    @rule(lease=leases)
    def heartbeat(self, lease: Lease) -> None:
        job = self.holder_of(lease)
        (owned,) = self.run(self.store.heartbeat([lease], LEASE))
        assert owned is (job is not None), f"heartbeat with {lease} (held: {job is not None})"
        event(f"heartbeat: {'held' if owned else 'stale'}")
        if job is not None:
            job.lease_expires_at = self.now() + LEASE

    @rule(lease=leases)
    def release(self, lease: Lease) -> None:
        self.do_release([lease])

    @rule(extra=st.sampled_from([0.0, LEASE + 0.5]))
    def expire(self, extra: float) -> None:
        """Let leases run out (or not), then run the reaper."""
        self.clock.advance(extra)
        now = self.now()
        expired = sorted(
            (
                j
                for j in self.jobs.values()
                if j.state is S.PROCESSING and j.lease_expires_at is not None and j.lease_expires_at <= now
            ),
            key=lambda j: (j.lease_expires_at or 0.0, j.id),
        )
        found = self.run(self.store.expired_leases())
        assert [j.id for j in found] == [j.id for j in expired], "expired leases, oldest expiry first"
        recovered = self.run(recover_expired(self.store, lambda task: POLICY))
        assert recovered == len(expired)
        event(f"expire: {'recovered some' if expired else 'nothing expired'}")
        for job in expired:
            delay = after_failure(job.retry_count, job.max_retries, POLICY)
            event(f"expire: worker lost, {'dead-lettered' if delay is None else 'retry'}")
            self.apply_failure(job, WORKER_LOST, delay, now)

    # ---- administration ---------------------------------------------------------------------

    def pick(self, data: st.DataObject, preferred: list[str]) -> str:
        choices = st.sampled_from(self.ever)
        if preferred:
            choices = st.one_of(st.sampled_from(preferred), choices)
        return data.draw(choices, label="job")

    @rule()
    def operate_on_missing_job(self) -> None:
        with pytest.raises(JobNotFound):
            self.run(self.store.replay_dead(MISSING_ID))
        with pytest.raises(JobNotFound):
            self.run(self.store.cancel(MISSING_ID))
        assert self.run(self.store.get(MISSING_ID)) is None

    @precondition(lambda self: bool(self.ever))
    @rule(data=st.data(), capacity=st.sampled_from([None, 1, CAPACITY]))
    def replay(self, data: st.DataObject, capacity: int | None) -> None:
        job_id = self.pick(data, [i for i, j in self.jobs.items() if j.state is S.DEAD_LETTERED])
        job = self.jobs.get(job_id)
        event(f"replay: {'missing' if job is None else job.state}")
        if job is None:
            with pytest.raises(JobNotFound):
                self.run(self.store.replay_dead(job_id, capacity))
        elif job.state is not S.DEAD_LETTERED:
            with pytest.raises(InvalidTransition):
                self.run(self.store.replay_dead(job_id, capacity))
        elif capacity is not None and self.waiting() >= capacity:
            event("replay: refused, queue full")
            with pytest.raises(QueueFull):
                self.run(self.store.replay_dead(job_id, capacity))
        else:
            replayed = self.run(self.store.replay_dead(job_id, capacity))
            job.state = S.PENDING
            job.retry_count = 0
            job.finished_at = None
            job.next_retry_at = None
            job.run_at = self.now()
            self.check(replayed, job)

    @precondition(lambda self: bool(self.ever))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        cancellable = (*WAITING_STATES, S.PROCESSING)
        job_id = self.pick(data, [i for i, j in self.jobs.items() if j.state in cancellable])
        job = self.jobs.get(job_id)
        event(f"cancel: {'missing' if job is None else job.state}")
        if job is None:
            with pytest.raises(JobNotFound):
                self.run(self.store.cancel(job_id))
        elif job.state not in cancellable:
            with pytest.raises(InvalidTransition):
                self.run(self.store.cancel(job_id))
        else:
            if job.state is S.PROCESSING:
                self.end_lease(job)
            cancelled = self.run(self.store.cancel(job_id))
            job.state = S.CANCELLED
            job.finished_at = self.now()
            job.next_retry_at = None
            self.check(cancelled, job)

    @rule(seconds=st.sampled_from([0.5, 3.0, 10.0, 25.0, 60.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(completed=ages, dead=ages, cancelled=ages)
    def prune(self, completed: float | None, dead: float | None, cancelled: float | None) -> None:
        now = self.now()
        cutoffs = {
            S.COMPLETED: None if completed is None else now - completed,
            S.DEAD_LETTERED: None if dead is None else now - dead,
            S.CANCELLED: None if cancelled is None else now - cancelled,
        }
        doomed = [
            j.id
            for j in self.jobs.values()
            if (cutoff := cutoffs.get(j.state)) is not None and j.finished_at is not None and j.finished_at < cutoff
        ]
        expired_keys = [k for k, (_, expires) in self.keys.items() if expires <= now]
        result = self.run(
            self.store.prune(PruneParams(cutoffs[S.COMPLETED], cutoffs[S.DEAD_LETTERED], cutoffs[S.CANCELLED]))
        )
        assert result == PruneResult(jobs=len(doomed), keys=len(expired_keys))
        event(f"prune: {'jobs' if doomed else 'no jobs'}, {'keys' if expired_keys else 'no keys'}")
        for job_id in doomed:
            del self.jobs[job_id]
            assert self.run(self.store.get(job_id)) is None
        for key in expired_keys:
            del self.keys[key]

    @rule(state=st.sampled_from(JobState))
    def list_by_state(self, state: JobState) -> None:
        listed = self.list_all(state=state, queue=QUEUE)
        assert [j.id for j in listed] == sorted(i for i, j in self.jobs.items() if j.state is state)

    # ---- invariants -------------------------------------------------------------------------

    @invariant()
    def store_matches_model(self) -> None:
        self.observe()

    def observe(self) -> None:
        """Read the whole store back, compare it with the model and check each state change."""
        listed = self.list_all()
        ids = [j.id for j in listed]
        assert len(ids) == len(set(ids)), "a job is listed twice"
        assert set(ids) == set(self.jobs), f"lost: {set(self.jobs) - set(ids)}, unexpected: {set(ids) - set(self.jobs)}"
        assert ids == sorted(ids), "list_jobs must return jobs oldest (lowest id) first"
        for job in listed:
            previous = self.observed.get(job.id)
            if previous is None:
                assert job.state in (S.PENDING, S.SCHEDULED), f"new job {job.id} appeared as {job.state}"
            elif previous is not job.state:
                assert allowed(previous, job.state), f"job {job.id}: {previous} -> {job.state} is not allowed"
            self.check(job, self.jobs[job.id])
        for gone in self.observed.keys() - set(ids):
            assert self.observed[gone] in FINISHED_STATES, f"job {gone} vanished while {self.observed[gone]}"
        self.observed = {j.id: j.state for j in listed}

    @invariant()
    def stats_match_model(self) -> None:
        stats = self.run(self.store.stats())
        assert set(stats.queues) <= {QUEUE}
        counts = dict(stats.queues[QUEUE].counts) if QUEUE in stats.queues else empty_counts()
        expected = Counter(j.state for j in self.jobs.values())
        assert counts == {s: expected.get(s, 0) for s in JobState}
        if QUEUE in stats.queues:
            assert stats.queues[QUEUE].waiting == self.waiting()
        assert stats.idempotency_keys == len(self.keys)


@pytest.mark.parametrize("backend_name", ALL_BACKENDS)
def test_backend_behaves_like_the_model(backend_name: str) -> None:
    class Machine(BackendMachine):
        pass

    Machine.backend_name = backend_name
    Machine.__name__ = Machine.__qualname__ = f"BackendMachine[{backend_name}]"
    run_state_machine_as_test(Machine, settings=SETTINGS)


def test_allowed_is_the_table_plus_due_composites() -> None:
    assert allowed(S.PENDING, S.PROCESSING)
    assert allowed(S.SCHEDULED, S.CANCELLED)  # due, then cancel
    assert not allowed(S.DEAD_LETTERED, S.PROCESSING)  # replay is an operation of its own
    assert allowed(S.PROCESSING, S.CANCELLED)  # a running job cancelled
    assert not allowed(S.DEAD_LETTERED, S.CANCELLED)  # finished: nothing to cancel
    assert not allowed(S.COMPLETED, S.PENDING)
    assert not allowed(S.CANCELLED, S.PROCESSING)
