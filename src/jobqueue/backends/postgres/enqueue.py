"""Enqueue in rounds: the Python half of the ``enqueue`` statement.

The statement takes a batch that holds no job id or idempotency key twice. A batch that does (the
same job sent twice, two jobs with one key) is split into rounds, each its own statement (its own
transaction, or a later statement of the caller's transaction): a job that repeats an earlier one
goes to a later round and finds it stored there, so later jobs of a batch see earlier ones.
Jobs beaten to their key or id by a concurrent producer are run again too, and then find the
winner. Outcomes are filled in batch order whatever the round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from jobqueue.backends.postgres.rows import job_from_json
from jobqueue.errors import BackendError
from jobqueue.job import Job, JobState, NewJob, load_json
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, Rejected

#: Runs the statement with these arguments: (rows, whether a connection was lost meanwhile).
Execute = Callable[[tuple[Any, ...]], Awaitable[tuple[list[asyncpg.Record], bool]]]


#: How a NUL character is written in JSON (orjson escapes it; a raw one is not valid JSON).
NUL_ESCAPE = b"\\u0000"

#: Payload bytes sent in one statement at most (PostgreSQL refuses a parameter of 1 GiB or more).
MAX_STATEMENT_BYTES = 64 * 1024 * 1024


async def enqueue_rounds(
    jobs: Sequence[NewJob],
    capacity: Mapping[str, int] | None,
    execute: Execute,
    now: Callable[[], float | None],
    channel: str | None,
) -> list[EnqueueOutcome]:
    """One outcome per job, in order, running the statement as many rounds as the batch needs.

    A batch of very large payloads is sent in several parts, in order (each sees the ones before).
    """

    async def run(batch: list[NewJob], caps: dict[str, int], look: bool) -> tuple[list[asyncpg.Record], bool]:
        return await execute(statement_args(batch, caps, channel, look, now()))

    outcomes: list[EnqueueOutcome] = []
    start = size = 0
    for end, job in enumerate(jobs):
        size += len(job.payload_json)
        if size > MAX_STATEMENT_BYTES and end > start:
            outcomes += await _rounds(jobs[start:end], capacity, run)
            start, size = end, len(job.payload_json)
    return outcomes + await _rounds(jobs[start:], capacity, run)


#: Runs one round: (the jobs, their queues' capacities, whether to look for stored ids first).
Round = Callable[[list[NewJob], dict[str, int], bool], Awaitable[tuple[list[asyncpg.Record], bool]]]


async def _rounds(jobs: Sequence[NewJob], capacity: Mapping[str, int] | None, run: Round) -> list[EnqueueOutcome]:
    outcomes: list[EnqueueOutcome | None] = [None] * len(jobs)
    pending = list(range(len(jobs)))
    first_round, lost_connection = True, False
    for _ in range(len(jobs) + 3):
        if not pending:
            return outcomes  # type: ignore[return-value]  # every slot is filled
        batch, later, ids, keys = [], [], set(), set()
        for i in pending:
            job = jobs[i]
            if job.id in ids or (job.idempotency_key is not None and job.idempotency_key in keys):
                later.append(i)
                continue
            ids.add(job.id)
            if job.idempotency_key is not None:
                keys.add(job.idempotency_key)
            batch.append(i)
        caps = {} if capacity is None else {jobs[i].queue: capacity[jobs[i].queue] for i in batch
                                            if jobs[i].queue in capacity}  # fmt: skip
        # The first round leaves ids already stored to the insert's ON CONFLICT (they come back
        # as K), which saves an index probe per job on the common path; later rounds look.
        rows, lost = await run([jobs[i] for i in batch], caps, not first_round)
        first_round = False
        lost_connection = lost_connection or lost
        retry = decide(jobs, batch, rows, caps, outcomes, lost_connection)
        pending = sorted(later + retry)
    raise BackendError("enqueue: jobs kept racing concurrent producers; giving up")


def statement_args(
    batch: list[NewJob], caps: dict[str, int], channel: str | None, look: bool, now: float | None
) -> tuple[Any, ...]:
    """The ``enqueue`` statement's parameters for one round (see queries.sql)."""
    rows = [
        {"id": j.id, "q": j.queue, "t": j.task, "p": orjson.Fragment(j.payload_json), "pr": j.priority,
         "mr": j.max_retries, "k": j.idempotency_key, "kt": j.key_ttl, "d": j.delay, "ra": j.run_at,
         "to": j.timeout}
        for j in batch
    ]  # fmt: skip
    # A string holding U+0000 is valid JSON, which the payload column keeps, but json_to_recordset
    # refuses to read it: such payloads go beside the rows, as text (rare: one scan per payload).
    with_nul: list[str | None] | None = None
    for i, job in enumerate(batch):
        if NUL_ESCAPE in job.payload_json:
            with_nul = with_nul or [None] * len(batch)
            with_nul[i] = job.payload_json.decode()
            rows[i]["p"] = None
    capped = sorted(caps)
    return (now, orjson.dumps(rows).decode(), capped, [caps[q] for q in capped], channel, look, with_nul)


def decide(
    jobs: Sequence[NewJob],
    batch: list[int],
    rows: list[asyncpg.Record],
    caps: dict[str, int],
    outcomes: list[EnqueueOutcome | None],
    lost_connection: bool,
) -> list[int]:
    """Fill in the outcomes of one round; returns the jobs to run again."""
    retry: set[int] = set()
    for kind, ord_, stored, now, ids in rows:
        if kind == "A":
            # Built here from what was sent and the server's time, by the rule the statement
            # applied: due = run_at, else now + delay; SCHEDULED when due later than now.
            by_id = {jobs[i].id: i for i in batch}
            for job_id in ids or ():
                i = by_id[job_id]
                new = jobs[i]
                due = new.run_at if new.run_at is not None else now + new.delay
                state = JobState.SCHEDULED if due > now else JobState.PENDING
                outcomes[i] = Accepted(
                    Job(new.id, new.queue, new.task, load_json(new.payload_json), new.priority, state, 0,
                        new.max_retries, new.idempotency_key, now, due, timeout=new.timeout)
                )  # fmt: skip
            continue
        i = batch[ord_ - 1]
        if kind == "S":
            # Stored already. After a lost connection that is this very statement's commit.
            job = job_from_json(stored)
            outcomes[i] = Accepted(job) if lost_connection else Duplicate(job)
        elif kind == "D":
            outcomes[i] = Duplicate(job_from_json(stored))
        else:  # beaten to its key or id: the next round finds the winner
            retry.add(i)
    for i in batch:
        queue = jobs[i].queue
        if outcomes[i] is None and i not in retry:
            if queue in caps:
                outcomes[i] = Rejected(queue, caps[queue])
            else:
                retry.add(i)
    return sorted(retry)
