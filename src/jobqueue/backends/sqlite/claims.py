"""The transaction bodies that give jobs to workers: claims (limited queues' through
:mod:`.limited`), and the database side of the hand-off to waiting workers (see :mod:`.handoff`).
Each takes the connection it runs in, as those of :mod:`.transactions` do.
"""

from __future__ import annotations

import heapq
import sqlite3

from jobqueue.backends.params import ClaimParams
from jobqueue.backends.sqlite import limited
from jobqueue.backends.sqlite.handoff import Handed, Handoffs
from jobqueue.backends.sqlite.limited import Gate, Handing
from jobqueue.backends.sqlite.rows import Counts, job_of
from jobqueue.backends.sqlite.sql import SEQ_COLUMN, Q
from jobqueue.clock import Clock
from jobqueue.job import Job, JobState, NewJob, dump_json, load_json

# ---- claims --------------------------------------------------------------------------------


def claim(conn: sqlite3.Connection, params: ClaimParams, limit: int, now: float) -> list[Job]:
    """Lease up to ``limit`` due jobs of ``params.queues``, highest priority first, then oldest,
    of those their queues' limits admit (see :mod:`.limited`)."""
    candidates: list[tuple[int, int, str]] = []  # (-priority, seq, state): claim order across queues
    gates: list[tuple[Gate, list[tuple[int, int, str]]]] = []
    for queue in dict.fromkeys(params.queues):
        rows = conn.execute(Q["claim_candidates"], (queue, now, limit)).fetchall()
        if rows and rows[0][0] is None:  # the queue has limits
            gate, admitted = limited.admitted(conn, queue, rows[0], rows[1:], now, limit)
            candidates.extend(admitted)
            gates.append((gate, admitted))
            continue
        candidates.extend((-priority, seq, state) for seq, priority, state, _ in rows)
    chosen = heapq.nsmallest(limit, candidates) if len(params.queues) > 1 else candidates
    if not chosen:
        return []
    if gates:
        _spend(conn, gates, chosen)
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


def _spend(
    conn: sqlite3.Connection, gates: list[tuple[Gate, list[tuple[int, int, str]]]], chosen: list[tuple[int, int, str]]
) -> None:
    """Spend the tokens of the jobs chosen from limited queues: a prefix of each one's candidates."""
    seqs = {seq for _, seq, _ in chosen}
    for gate, admitted in gates:
        gate.spend(conn, [key for (_, seq, _), key in zip(admitted, gate.taken, strict=True) if seq in seqs])


# ---- the hand-off to waiting workers (see handoff.py) ---------------------------------------


def hand(conn: sqlite3.Connection, new: NewJob, payload: str, now: float, handing: Handing) -> Handed | Job | None:
    """Store a new due job already claimed by a waiting worker, if one has a free slot (``None``
    if none has) and its queue's limits let it start (else it is stored waiting: that job)."""
    args = {
        "id": new.id, "queue": new.queue, "task": new.task, "payload": payload, "priority": new.priority,
        "max_retries": new.max_retries, "key": new.idempotency_key, "now": now, "timeout": new.timeout,
        "rate_key": new.rate_key,
    }  # fmt: skip
    row = conn.execute(Q["insert_handed_job"], args).fetchone()
    if row is None:
        return None
    worker_id, expires, is_limited = row
    payload_value = load_json(new.payload_json)
    if is_limited and not handing.admits(conn, new):
        # Stored first, checked after: only so does a queue without limits pay nothing more.
        due = new.due_at(now)
        conn.execute(Q["unhand_job"], {"id": new.id, "due": due})
        conn.execute(Q["set_slot_waited"], (new.queue, True))  # a waiting worker wanted it
        return Job(
            new.id, new.queue, new.task, payload_value, new.priority, JobState.PENDING, 0, new.max_retries,
            new.idempotency_key, now, due, timeout=new.timeout, rate_key=new.rate_key,
        )  # fmt: skip
    (address,) = conn.execute(Q["took_handed_job"], {"id": new.id, "worker": worker_id}).fetchone()
    job = Job(
        new.id, new.queue, new.task, payload_value, new.priority, JobState.PROCESSING, 0,
        new.max_retries, new.idempotency_key, now, now, started_at=now, last_attempt=now,
        timeout=new.timeout, lease_expires_at=expires, worker_id=worker_id, lease_token=1, rate_key=new.rate_key,
    )  # fmt: skip
    return Handed(worker_id, address, job)


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
