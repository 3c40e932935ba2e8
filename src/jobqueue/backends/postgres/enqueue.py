"""Enqueue in rounds: the Python half of the ``enqueue`` statement.

The statement takes a batch that holds no job id or idempotency key twice. A batch that does (the
same job sent twice, two jobs with one key) is split into rounds, each its own statement (its own
transaction, or a later statement of the caller's transaction): a job that repeats an earlier one
goes to a later round and finds it stored there, so later jobs of a batch see earlier ones.
Jobs beaten to their key or id by a concurrent producer are run again too, and then find the
winner. Outcomes are filled in batch order whatever the round. A batch holding jobs with parents
runs the ``enqueue_dependent`` statement instead, in rounds cut as dependencies.py says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from jobqueue.backends.postgres.dependencies import add_parents, settle_dependents, split_in_order
from jobqueue.backends.postgres.rows import job_from_json
from jobqueue.errors import BackendError
from jobqueue.job import Job, JobState, NewJob, load_json
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, MissingParent, Rejected

#: Runs the named statement with these arguments: (rows, whether a connection was lost meanwhile).
Execute = Callable[[str, tuple[Any, ...]], Awaitable[tuple[list[asyncpg.Record], bool]]]


#: How a NUL character is written in JSON (orjson escapes it; a raw one is not valid JSON).
NUL_ESCAPE = b"\\u0000"

#: Payload bytes sent in one statement at most (PostgreSQL refuses a parameter of 1 GiB or more).
MAX_STATEMENT_BYTES = 64 * 1024 * 1024
#: What a parent's id costs a statement, about (a UUID in JSON), counted as payload bytes.
PARENT_BYTES = 40


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
    # Jobs with parents take a statement of their own, so that a batch without any costs what it
    # did before dependencies existed.
    dependent = any(job.depends_on for job in jobs)
    statement, split = ("enqueue_dependent", split_in_order) if dependent else ("enqueue", split_repeats)

    async def run(batch: list[NewJob], caps: dict[str, int], look: bool) -> tuple[list[asyncpg.Record], bool]:
        rows = job_rows(batch)
        if dependent:
            add_parents(batch, rows)
        return await execute(statement, round_args(batch, rows, caps, channel, look, now()))

    outcomes: list[EnqueueOutcome] = []
    start = size = 0
    for end, job in enumerate(jobs):
        weight = len(job.payload_json)
        if dependent:
            weight += PARENT_BYTES * len(job.depends_on)
        size += weight
        if size > MAX_STATEMENT_BYTES and end > start:
            outcomes += await _rounds(jobs[start:end], capacity, run, split)
            start, size = end, weight
    return outcomes + await _rounds(jobs[start:], capacity, run, split)


#: Runs one round: (the jobs, their queues' capacities, whether to look for stored ids first).
Round = Callable[[list[NewJob], dict[str, int], bool], Awaitable[tuple[list[asyncpg.Record], bool]]]
#: Picks the next round from the jobs still pending: (the round, the jobs left for later rounds).
Split = Callable[[Sequence[NewJob], list[int]], tuple[list[int], list[int]]]


def split_repeats(jobs: Sequence[NewJob], pending: list[int]) -> tuple[list[int], list[int]]:
    """Every pending job except those that repeat the id or key of one before them in the round."""
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
    return batch, later


async def _rounds(
    jobs: Sequence[NewJob], capacity: Mapping[str, int] | None, run: Round, split: Split
) -> list[EnqueueOutcome]:
    outcomes: list[EnqueueOutcome | None] = [None] * len(jobs)
    pending = list(range(len(jobs)))
    first_round, lost_connection = True, False
    for _ in range(len(jobs) + 3):
        if not pending:
            return outcomes  # type: ignore[return-value]  # every slot is filled
        batch, later = split(jobs, pending)
        caps = {} if capacity is None else {jobs[i].queue: capacity[jobs[i].queue] for i in batch
                                            if jobs[i].queue in capacity}  # fmt: skip
        # The first round leaves ids already stored to the insert's ON CONFLICT (they come back
        # as K), which saves an index probe per job on the common path; later rounds look.
        looked = not first_round
        rows, lost = await run([jobs[i] for i in batch], caps, looked)
        first_round = False
        lost_connection = lost_connection or lost
        retry = decide(jobs, batch, rows, caps, outcomes, lost_connection, looked)
        pending = sorted(later + retry)
    raise BackendError("enqueue: jobs kept racing concurrent producers; giving up")


def job_rows(batch: list[NewJob]) -> list[dict[str, Any]]:
    """The jobs of a round as the objects of the statement's ``$2`` (see queries.sql)."""
    rows = [
        {"id": j.id, "q": j.queue, "t": j.task, "p": orjson.Fragment(j.payload_json), "pr": j.priority,
         "mr": j.max_retries, "k": j.idempotency_key, "kt": j.key_ttl, "d": j.delay, "ra": j.run_at,
         "to": j.timeout}
        for j in batch
    ]  # fmt: skip
    # Only where set: jobs without a rate key send what they did before keys existed.
    for job, row in zip(batch, rows, strict=True):
        if job.rate_key is not None:
            row["rk"] = job.rate_key
    return rows


def round_args(
    batch: list[NewJob],
    rows: list[dict[str, Any]],
    caps: dict[str, int],
    channel: str | None,
    look: bool,
    now: float | None,
) -> tuple[Any, ...]:
    """The statement's parameters for one round, ``rows`` being :func:`job_rows` of ``batch``."""
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
    looked: bool = True,
) -> list[int]:
    """Fill in the outcomes of one round; returns the jobs to run again. ``looked``: the round
    looked for ids already stored (without, a job sent again may seem to miss a pruned parent)."""
    retry: set[int] = set()
    dependents: list[tuple[str, str, list[str]]] = []
    server_now = 0.0
    for kind, ord_, stored, now, ids in rows:
        if kind == "A":
            server_now = now
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
                        new.max_retries, new.idempotency_key, now, due, timeout=new.timeout,
                        rate_key=new.rate_key)
                )  # fmt: skip
            continue
        if ord_ is None:  # a job stored with parents: B, F or R (dependencies.sql)
            dependents.append((kind, stored, ids))
            continue
        i = batch[ord_ - 1]
        if kind == "S":
            # Stored already. After a lost connection that is this very statement's commit.
            job = job_from_json(stored)
            outcomes[i] = Accepted(job) if lost_connection else Duplicate(job)
        elif kind == "D":
            outcomes[i] = Duplicate(job_from_json(stored))
        elif kind == "M" and looked:
            outcomes[i] = MissingParent(stored)
        else:  # beaten to its key or id: the next round finds the winner
            retry.add(i)
    if dependents:
        settle_dependents(jobs, batch, dependents, outcomes, server_now)
    for i in batch:
        queue = jobs[i].queue
        if outcomes[i] is None and i not in retry:
            if queue in caps:
                outcomes[i] = Rejected(queue, caps[queue])
            else:
                retry.add(i)
    return sorted(retry)
