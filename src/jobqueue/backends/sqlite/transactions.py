"""The bodies of the backend's transactions: each takes the connection it runs in.

The backend decides where a body runs (inline on the caller's thread, or on the writer thread in
a group commit; see :mod:`.backend`); a body only reads and writes, and keeps ``queue_counts`` in
step with every job it adds, moves or removes (:class:`~.rows.Counts`, written once at its end).
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from jobqueue.backends.params import ClaimParams, Failure, Lease, PruneParams
from jobqueue.backends.sqlite import dependencies
from jobqueue.backends.sqlite.handoff import Handed, Handoffs
from jobqueue.backends.sqlite.rows import Counts, job_of
from jobqueue.backends.sqlite.sql import SEQ_COLUMN, Q, chunk_sizes, multi_row
from jobqueue.backends.sqlite.wake import MAX_MESSAGE
from jobqueue.clock import Clock
from jobqueue.errors import InvalidTransition, JobNotFound, QueueFull
from jobqueue.job import Job, JobState, NewJob, dump_json, load_json
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, PruneResult, Rejected, Stats, StatsBuilder

# ---- enqueue -------------------------------------------------------------------------------


def enqueue(
    conn: sqlite3.Connection, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None, now: float
) -> tuple[list[EnqueueOutcome], list[Handed]]:
    """Store new jobs (each checked for its id, key and queue's capacity), handing due ones to
    waiting workers; the jobs handed are to be sent to their workers after the commit."""
    # One job's first write is its own row, so a failed insert has written nothing: only a
    # batch needs the savepoint (two statements fewer on the path of every single enqueue).
    savepoint = len(jobs) > 1
    if savepoint:
        conn.execute("SAVEPOINT enqueue")
    try:
        outcomes, handed = _insert_new(conn, jobs, capacity, now, stored={})
    except sqlite3.IntegrityError:
        # Some job ids are stored already: the same jobs sent again (a retry after a lost
        # answer). Rare, so found only now, off the fast path: they become Duplicates.
        if savepoint:
            conn.execute("ROLLBACK TO enqueue")
        ids = dump_json([job.id for job in jobs]).decode()
        stored = {row[0]: job_of(row) for row in conn.execute(Q["existing_jobs"], (ids,))}
        outcomes, handed = _insert_new(conn, jobs, capacity, now, stored)
    if savepoint:
        conn.execute("RELEASE enqueue")
    return outcomes, handed


def _insert_new(
    conn: sqlite3.Connection,
    jobs: Sequence[NewJob],
    capacity: Mapping[str, int] | None,
    now: float,
    stored: dict[str, Job],
) -> tuple[list[EnqueueOutcome], list[Handed]]:
    """Check keys and capacity, hand due jobs to waiting workers, insert the rest in one go."""
    waiting: dict[str, int] = {}
    nobody_waits: set[str] = set()  # queues no waiting worker has a free slot for (any more)
    handed: list[Handed] = []
    keys_in_batch: dict[str, Job] = {}
    rows: list[tuple[Any, ...]] = []
    key_rows: list[tuple[str, str, float]] = []
    outcomes: list[EnqueueOutcome] = []
    counts = Counts()
    for new in jobs:
        refusal = _refusal(conn, new, now, stored, keys_in_batch, capacity, waiting)
        if refusal is not None:
            outcomes.append(refusal)
            continue
        key = new.idempotency_key
        if new.depends_on:
            child = _store_child(conn, new, now, rows, waiting)
            if not isinstance(child, Job):
                outcomes.append(child)  # a parent is not stored
                continue
            job = child
        else:
            due = new.due_at(now)
            state = JobState.SCHEDULED if due > now else JobState.PENDING
            payload = new.payload_json.decode()
            taken = None
            if state is JobState.PENDING and len(payload) < MAX_MESSAGE // 2 and new.queue not in nobody_waits:
                taken = _hand(conn, new, payload, now)
                if taken is None:
                    nobody_waits.add(new.queue)
            if taken is not None:
                handed.append(taken)
                job = taken.job
            else:
                rows.append(
                    (new.id, new.queue, new.task, payload, new.priority, state.value, new.max_retries,
                     key, now, due, new.timeout)
                )  # fmt: skip
                job = Job(
                    new.id, new.queue, new.task, load_json(new.payload_json), new.priority, state, 0,
                    new.max_retries, key, now, due, timeout=new.timeout,
                )  # fmt: skip
        stored[new.id] = job  # the same NewJob twice in one batch: the second is a Duplicate
        counts.add(new.queue, job.state.value)
        if key is not None:
            key_rows.append((key, new.id, now + new.key_ttl))
            keys_in_batch[key] = job
        outcomes.append(Accepted(job))
    _insert_rows(conn, rows)
    if key_rows:
        conn.executemany(Q["put_key"], key_rows)
    counts.write(conn)
    return outcomes, handed


def _store_child(
    conn: sqlite3.Connection, new: NewJob, now: float, rows: list[tuple[Any, ...]], waiting: dict[str, int]
) -> EnqueueOutcome | Job:
    """Store a job with parents at once, never handed (it may have to wait)."""
    _insert_rows(conn, rows)  # its parents may be earlier jobs of the batch, not inserted yet
    rows.clear()
    child = dependencies.store_child(conn, new, now)
    if new.queue in waiting and (not isinstance(child, Job) or child.state is JobState.DEAD_LETTERED):
        waiting[new.queue] -= 1  # it does not wait: its place in the queue is free again
    return child


def _insert_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    start = 0
    for size in chunk_sizes(len(rows)):
        chunk = rows[start : start + size]
        conn.execute(multi_row("insert_job", size), [value for row in chunk for value in row])
        start += size


def _refusal(
    conn: sqlite3.Connection,
    new: NewJob,
    now: float,
    stored: dict[str, Job],
    keys_in_batch: dict[str, Job],
    capacity: Mapping[str, int] | None,
    waiting: dict[str, int],
) -> Duplicate | Rejected | None:
    """Why ``new`` is not to be stored (its id or key is taken, its queue full), if it is not."""
    same = stored.get(new.id)
    if same is not None:
        return Duplicate(same)
    key = new.idempotency_key
    if key is not None:
        holder = keys_in_batch.get(key)
        if holder is None:
            row = conn.execute(Q["get_key"], (key, now)).fetchone()
            holder = None if row is None else job_of(row)
        if holder is not None:
            return Duplicate(holder)
    limit = None if capacity is None else capacity.get(new.queue)
    if limit is not None:
        depth = waiting.get(new.queue)
        if depth is None:
            depth = conn.execute(Q["waiting_count"], (new.queue,)).fetchone()[0]
        if depth >= limit:
            return Rejected(new.queue, limit)
        waiting[new.queue] = depth + 1
    return None


def _hand(conn: sqlite3.Connection, new: NewJob, payload: str, now: float) -> Handed | None:
    """Store a new due job already claimed by a waiting worker, if one has a free slot."""
    args = {
        "id": new.id, "queue": new.queue, "task": new.task, "payload": payload, "priority": new.priority,
        "max_retries": new.max_retries, "key": new.idempotency_key, "now": now, "timeout": new.timeout,
    }  # fmt: skip
    row = conn.execute(Q["insert_handed_job"], args).fetchone()
    if row is None:
        return None
    worker_id, expires = row
    (address,) = conn.execute(Q["took_handed_job"], {"id": new.id, "worker": worker_id}).fetchone()
    job = Job(
        new.id, new.queue, new.task, load_json(new.payload_json), new.priority, JobState.PROCESSING, 0,
        new.max_retries, new.idempotency_key, now, now, started_at=now, last_attempt=now,
        timeout=new.timeout, lease_expires_at=expires, worker_id=worker_id, lease_token=1,
    )  # fmt: skip
    return Handed(worker_id, address, job)


# ---- attempts ------------------------------------------------------------------------------


def claim(conn: sqlite3.Connection, params: ClaimParams, limit: int, now: float) -> list[Job]:
    """Lease up to ``limit`` due jobs of ``params.queues``, highest priority first, then oldest."""
    candidates: list[tuple[int, int, str]] = []  # (-priority, seq, state): claim order across queues
    for queue in dict.fromkeys(params.queues):
        rows = conn.execute(Q["claim_candidates"], (queue, now, limit)).fetchall()
        candidates.extend((-priority, seq, state) for seq, priority, state in rows)
    chosen = heapq.nsmallest(limit, candidates) if len(params.queues) > 1 else candidates
    if not chosen:
        return []
    args = {
        "expires": now + params.lease,
        "worker": params.worker_id,
        "now": now,
        "seqs": dump_json([seq for _, seq, _ in chosen]).decode(),
    }
    order = {seq: (i, state) for i, (_, seq, state) in enumerate(chosen)}
    rows = conn.execute(Q["claim_jobs"], args).fetchall()
    rows.sort(key=lambda row: order[row[SEQ_COLUMN]][0])  # RETURNING order is unspecified
    counts = Counts()
    for row in rows:
        counts.move(row[1], order[row[SEQ_COLUMN]][1], "PROCESSING")
    counts.write(conn)
    return [job_of(row) for row in rows]


def complete(conn: sqlite3.Connection, items: str, now: float) -> tuple[set[str], int]:
    """Complete ``items`` (``[[id, token, result JSON], ...]`` as JSON): the ids completed, and how
    many children those completions released (see :func:`.dependencies.resolve`)."""
    rows = conn.execute(Q["complete_jobs"], {"items": items, "now": now}).fetchall()
    counts = Counts()
    parents = []
    for job_id, queue, has_children in rows:
        counts.move(queue, "PROCESSING", "COMPLETED")
        if has_children:
            parents.append(job_id)
    released = dependencies.resolve(conn, parents, "COMPLETED", now, counts) if parents else 0
    counts.write(conn)
    return {row[0] for row in rows}, released


def fail(conn: sqlite3.Connection, failures: Sequence[Failure], now: float) -> tuple[list[bool], int]:
    """Count failed attempts: which leases held, and how many children the dead-lettered released."""
    done = []
    counts = Counts()
    parents = []
    for f in failures:
        args = {"error": f.error, "now": now, "id": f.lease.job_id, "token": f.lease.token,
                "if_expired": f.if_expired}  # fmt: skip
        if f.retry_delay is None:
            row, target = conn.execute(Q["dead_letter_job"], args).fetchone(), "DEAD_LETTERED"
            if row is not None and row[1]:
                parents.append(f.lease.job_id)
        else:
            due = now + max(0.0, f.retry_delay)
            row, target = conn.execute(Q["retry_job"], {**args, "due": due}).fetchone(), "FAILED"
        if row is not None:
            counts.move(row[0], "PROCESSING", target)
        done.append(row is not None)
    released = dependencies.resolve(conn, parents, "DEAD_LETTERED", now, counts) if parents else 0
    counts.write(conn)
    return done, released


def heartbeat(conn: sqlite3.Connection, leases: Sequence[Lease], expires: float) -> list[bool]:
    return [conn.execute(Q["heartbeat_job"], (expires, ref.job_id, ref.token)).rowcount == 1 for ref in leases]


def release(conn: sqlite3.Connection, leases: Sequence[Lease], now: float) -> list[bool]:
    counts = Counts()
    released = []
    for ref in leases:
        row = conn.execute(Q["release_job"], (now, ref.job_id, ref.token)).fetchone()
        if row is not None:
            counts.move(row[0], "PROCESSING", "PENDING")
        released.append(row is not None)
    counts.write(conn)
    return released


# ---- administration ------------------------------------------------------------------------


def replay(conn: sqlite3.Connection, job_id: str, capacity: int | None, now: float) -> Job:
    row = conn.execute(Q["get_job"], (job_id,)).fetchone()
    if row is None:
        raise JobNotFound(job_id)
    job = job_of(row)
    if job.state is not JobState.DEAD_LETTERED:
        raise InvalidTransition(job_id, job.state, "replay")
    if capacity is not None and conn.execute(Q["waiting_count"], (job.queue,)).fetchone()[0] >= capacity:
        raise QueueFull(job.queue, capacity)
    replayed = job_of(conn.execute(Q["replay_job"], (now, job_id)).fetchone())
    counts = Counts()
    counts.move(job.queue, "DEAD_LETTERED", "PENDING")
    counts.write(conn)
    return replayed


def cancel(conn: sqlite3.Connection, job_id: str, now: float) -> tuple[Job, int]:
    """Cancel a waiting job: the job, and how many of its children the cancel released."""
    current = conn.execute(Q["get_job"], (job_id,)).fetchone()
    if current is None:
        raise JobNotFound(job_id)
    row = conn.execute(Q["cancel_job"], (now, job_id)).fetchone()
    if row is None:
        raise InvalidTransition(job_id, current[5], "cancel")
    counts = Counts()
    counts.move(current[1], current[5], "CANCELLED")
    has_children = row[-1]
    released = dependencies.resolve(conn, [job_id], "CANCELLED", now, counts) if has_children else 0
    counts.write(conn)
    return job_of(row), released


def prune(conn: sqlite3.Connection, params: PruneParams, now: float) -> PruneResult:
    cutoffs = [
        (JobState.COMPLETED, params.completed_before),
        (JobState.DEAD_LETTERED, params.dead_before),
        (JobState.CANCELLED, params.cancelled_before),
    ]
    counts = Counts()
    jobs = 0
    children: list[tuple[str, str]] = []  # (id, parents) of pruned jobs that had parents
    parents_gone: list[str] = []  # pruned jobs that had children
    for state, cutoff in cutoffs:
        if cutoff is not None:
            pruned = conn.execute(Q["prune_jobs"], (state.value, cutoff)).fetchall()
            for queue, job_id, parents, had_children in pruned:
                counts.add(queue, state.value, -1)
                jobs += 1
                if parents is not None:
                    children.append((job_id, parents))
                if had_children:
                    parents_gone.append(job_id)
    if children or parents_gone:
        dependencies.forget(conn, children, parents_gone)
    counts.write(conn)
    keys = conn.execute(Q["prune_keys"], (now,)).rowcount
    return PruneResult(jobs=jobs, keys=keys)


def stats(conn: sqlite3.Connection) -> Stats:
    """Counts by queue and state, and reserved keys, from one snapshot (on the reader)."""
    conn.execute("BEGIN")
    try:
        builder = StatsBuilder()
        for queue, state, n in conn.execute(Q["queue_counts"]):
            builder.add(queue, state, n)
        (keys,) = conn.execute(Q["key_count"]).fetchone()
    finally:
        conn.execute("COMMIT")
    return builder.build(keys)


# ---- the hand-off to waiting workers (see handoff.py) ---------------------------------------


class WaiterClaim:
    """The claim of a worker of this process that may wait for work.

    It takes the jobs handed to the worker since it registered (those no message has brought),
    claims the rest of its limit, and, when it found nothing and will wait (``register``),
    registers it in ``waiting_workers`` for the next enqueues to hand jobs to. The body may run
    more than once (a retry on the writer thread after a busy inline try), so it starts afresh
    each time; its outcome is in its fields once it has run.
    """

    def __init__(
        self, params: ClaimParams, register: bool, handoffs: Handoffs, address: str | None, clock: Clock
    ) -> None:
        self.params, self.register, self.handoffs, self.address, self.clock = params, register, handoffs, address, clock
        self.handed_ids: list[str] = []
        self.handed: list[Job] = []
        self.registered = False

    def __call__(self, conn: sqlite3.Connection) -> list[Job]:
        params, worker_id, handoffs = self.params, self.params.worker_id, self.handoffs
        self.handed_ids, self.handed, self.registered = [], [], False
        limit = params.limit
        registration = None
        if worker_id in handoffs.local:
            registration = conn.execute(Q["get_waiting"], (worker_id,)).fetchone()
            if registration is not None and registration[1] != "[]":
                self.handed_ids = load_json(registration[1])
                rows = conn.execute(Q["handed_jobs"], (registration[1], worker_id)).fetchall()
                self.handed = [job_of(r) for r in rows if not handoffs.delivered(worker_id, r[0])]
                limit -= len(self.handed)
        jobs = claim(conn, params, limit, self.clock.time()) if limit > 0 else []
        if not self.register or jobs or self.handed or self.address is None:
            if registration is not None:
                conn.execute(Q["unregister_waiting"], (worker_id,))
            return jobs
        self.registered = True
        if registration != (params.limit, "[]"):  # unchanged: no write, which would wake our poller
            queues = dump_json(list(dict.fromkeys(params.queues))).decode()
            conn.execute(Q["register_waiting"], (worker_id, self.address, queues, params.limit, params.lease))
        return jobs


def unregister(conn: sqlite3.Connection, worker_id: str, taken: set[str]) -> int:
    """Remove a worker's registration and give back the jobs handed to it, but ``taken``."""
    row = conn.execute(Q["unregister_waiting"], (worker_id,)).fetchone()
    ids = [] if row is None else [i for i in load_json(row[0]) if i not in taken]
    if not ids:
        return 0
    counts = Counts()
    queues = conn.execute(Q["release_handed"], (dump_json(ids).decode(), worker_id)).fetchall()
    for (queue,) in queues:
        counts.move(queue, "PROCESSING", "PENDING")
    counts.write(conn)
    return len(queues)
