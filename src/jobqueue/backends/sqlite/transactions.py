"""The bodies of the backend's transactions: each takes the connection it runs in.

The backend decides where a body runs (inline on the caller's thread, or on the writer thread in
a group commit; see :mod:`.backend`); a body only reads and writes, and keeps ``queue_counts`` in
step with every job it adds, moves or removes (:class:`~.rows.Counts`, written once at its end).
Those that give jobs to workers (claims, the hand-off) are in :mod:`.claims`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from jobqueue.backends.params import Failure, Lease, PruneParams
from jobqueue.backends.sqlite import dependencies
from jobqueue.backends.sqlite.claims import hand
from jobqueue.backends.sqlite.handoff import Handed
from jobqueue.backends.sqlite.insight import forget_errors, keep_arrivals, last_seq, record_error
from jobqueue.backends.sqlite.limited import Handing, slots_wanted
from jobqueue.backends.sqlite.rows import Counts, job_of
from jobqueue.backends.sqlite.sql import Q, chunk_sizes, multi_row
from jobqueue.backends.sqlite.wake import MAX_MESSAGE
from jobqueue.errors import InvalidTransition, JobNotFound, QueueFull
from jobqueue.job import Job, JobState, NewJob, dump_json, load_json
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, PruneResult, Rejected, Stats, StatsBuilder

#: Ids deleted per statement (delete's callers pass up to about a thousand at a time).
DELETE_BATCH = 2000

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
    handing = Handing(now)
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
            taken: Handed | Job | None = None
            if (
                state is JobState.PENDING
                and len(payload) < MAX_MESSAGE // 2
                and new.queue not in nobody_waits
                and handing.may_try(conn, new)
            ):
                taken = hand(conn, new, payload, now, handing)
                if taken is None:
                    nobody_waits.add(new.queue)
            if isinstance(taken, Handed):
                handed.append(taken)
                job = taken.job
            elif taken is not None:
                job = taken  # stored waiting: its queue's limits hold it back
            else:
                rows.append(
                    (new.id, new.queue, new.task, payload, new.priority, state.value, new.max_retries,
                     key, now, due, new.timeout, new.rate_key)
                )  # fmt: skip
                job = Job(
                    new.id, new.queue, new.task, load_json(new.payload_json), new.priority, state, 0,
                    new.max_retries, key, now, due, timeout=new.timeout, rate_key=new.rate_key,
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
    handing.spend(conn)
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


# ---- attempts ------------------------------------------------------------------------------


def complete(conn: sqlite3.Connection, items: str, now: float) -> tuple[set[str], int]:
    """Complete ``items`` (``[[id, token, result JSON], ...]`` as JSON): the ids completed, and how
    many wake-ups they owe: children released (see :func:`.dependencies.resolve`), slots freed
    that jobs wait for (see :func:`.limited.slots_wanted`)."""
    rows = conn.execute(Q["complete_jobs"], {"items": items, "now": now}).fetchall()
    counts = Counts()
    parents = []
    freed: set[str] = set()
    for job_id, queue, has_children, frees in rows:
        counts.move(queue, "PROCESSING", "COMPLETED")
        if has_children:
            parents.append(job_id)
        if frees:
            freed.add(queue)
    released = dependencies.resolve(conn, parents, "COMPLETED", now, counts) if parents else 0
    counts.write(conn)
    return {row[0] for row in rows}, released + (slots_wanted(conn, freed, now) if freed else 0)


def fail(conn: sqlite3.Connection, failures: Sequence[Failure], now: float) -> tuple[list[bool], int]:
    """Count failed attempts, each recorded with its error (:func:`.insight.record_error`): which
    leases held, and how many wake-ups they owe (children the dead-lettered released, slots freed
    that jobs wait for)."""
    done = []
    counts = Counts()
    parents = []
    freed: set[str] = set()
    for f in failures:
        args = {"error": f.error, "now": now, "id": f.lease.job_id, "token": f.lease.token,
                "if_expired": f.if_expired, "traceback": f.traceback}  # fmt: skip
        if not record_error(conn, args):
            done.append(False)  # a stale lease: the job is not changed, nor anything recorded
            continue
        if f.retry_delay is None:
            row, target = conn.execute(Q["dead_letter_job"], args).fetchone(), "DEAD_LETTERED"
            if row is not None and row[1]:
                parents.append(f.lease.job_id)
        else:
            due = now + max(0.0, f.retry_delay)
            row, target = conn.execute(Q["retry_job"], {**args, "due": due}).fetchone(), "FAILED"
        if row is not None:
            counts.move(row[0], "PROCESSING", target)
            if row[-1]:
                freed.add(row[0])
        done.append(row is not None)
    released = dependencies.resolve(conn, parents, "DEAD_LETTERED", now, counts) if parents else 0
    counts.write(conn)
    return done, released + (slots_wanted(conn, freed, now) if freed else 0)


def heartbeat(conn: sqlite3.Connection, leases: Sequence[Lease], expires: float) -> list[bool]:
    return [conn.execute(Q["heartbeat_job"], (expires, ref.job_id, ref.token)).rowcount == 1 for ref in leases]


def check_leases(conn: sqlite3.Connection, leases: Sequence[Lease]) -> list[bool]:
    """Which leases still hold (on the reader: one statement, so one snapshot)."""
    items = dump_json([[ref.job_id, ref.token] for ref in leases]).decode()
    held = {i for (i,) in conn.execute(Q["check_leases"], (items,))}
    return [i in held for i in range(len(leases))]


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
    """Cancel a waiting or running job: the job, and how many wake-ups it owes (children the
    cancel released, and a running job's slot of a concurrency limit)."""
    current = conn.execute(Q["get_job"], (job_id,)).fetchone()
    if current is None:
        raise JobNotFound(job_id)
    row = conn.execute(Q["cancel_job"], (now, job_id)).fetchone()
    if row is None:
        raise InvalidTransition(job_id, current[5], "cancel")
    counts = Counts()
    counts.move(current[1], current[5], "CANCELLED")
    has_children, frees = row[-2], row[-1]
    released = dependencies.resolve(conn, [job_id], "CANCELLED", now, counts) if has_children else 0
    counts.write(conn)
    freed = slots_wanted(conn, {current[1]}, now) if frees and current[5] == "PROCESSING" else 0
    return job_of(row), released + freed


class _Removed:
    """The jobs a delete or prune removed, and what they leave in other tables to clean up in the
    same transaction: their dependency edges, their recorded attempts, the arrival counter."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.counts = Counts()
        self.ids: list[str] = []
        self.children: list[tuple[str, str]] = []  # (id, parents) of removed jobs that had parents
        self.parents: list[str] = []  # removed jobs that had children
        self.failed: list[str] = []  # removed jobs with attempts recorded
        self.seq = last_seq(conn)

    def add(self, queue: str, job_id: str, state: str, parents: Any, had_children: Any, failures: Any) -> None:
        self.counts.add(queue, state, -1)
        self.ids.append(job_id)
        if parents is not None:
            self.children.append((job_id, parents))
        if had_children:
            self.parents.append(job_id)
        if failures:
            self.failed.append(job_id)

    def finish(self) -> None:
        if self.children or self.parents:
            dependencies.forget(self.conn, self.children, self.parents)
        if self.failed:
            forget_errors(self.conn, self.failed)
        if self.ids:
            keep_arrivals(self.conn, self.seq)
        self.counts.write(self.conn)


def delete(conn: sqlite3.Connection, job_ids: Sequence[str]) -> list[str]:
    """Delete the finished jobs of these ids as prune does (counts, edges, attempts, the arrival
    counter): the ids deleted."""
    removed = _Removed(conn)
    for start in range(0, len(job_ids), DELETE_BATCH):
        ids = dump_json(list(job_ids[start : start + DELETE_BATCH])).decode()
        for queue, job_id, state, parents, had_children, failures in conn.execute(Q["delete_jobs"], (ids,)):
            removed.add(queue, job_id, state, parents, had_children, failures)
    removed.finish()
    return removed.ids


def prune(conn: sqlite3.Connection, params: PruneParams, now: float) -> PruneResult:
    cutoffs = [
        (JobState.COMPLETED, params.completed_before),
        (JobState.DEAD_LETTERED, params.dead_before),
        (JobState.CANCELLED, params.cancelled_before),
    ]
    removed = _Removed(conn)
    for state, cutoff in cutoffs:
        if cutoff is not None:
            for queue, job_id, parents, had_children, failures in conn.execute(Q["prune_jobs"], (state.value, cutoff)):
                removed.add(queue, job_id, state.value, parents, had_children, failures)
    removed.finish()
    jobs = len(removed.ids)
    keys = conn.execute(Q["prune_keys"], (now,)).rowcount
    conn.execute(Q["prune_buckets"], (now,))
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
