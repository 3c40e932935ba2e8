"""Rows of the ``jobs`` table, as asyncpg records or as JSON, read as :class:`~jobqueue.job.Job`."""

from __future__ import annotations

import asyncpg

from jobqueue.job import Job, JobState, load_json

_STATES = {s.value: s for s in JobState}


def job_of(row: asyncpg.Record, at: int = 0) -> Job:
    """A job from the ``{job_columns}`` of a record, starting at column ``at``."""
    r = row
    result, parents = r[at + 16], r[at + 21]
    return Job(
        r[at], r[at + 1], r[at + 2], load_json(r[at + 3]), r[at + 4], _STATES[r[at + 5]], r[at + 6], r[at + 7],
        r[at + 8], r[at + 9], r[at + 10], r[at + 11], r[at + 12], r[at + 13], r[at + 14], r[at + 15],
        None if result is None else load_json(result), r[at + 17], r[at + 18], r[at + 19], r[at + 20],
        () if parents is None else tuple(parents), rate_key=r[at + 22],
    )  # fmt: skip


def job_from_json(text: str) -> Job:
    """A job from ``row_to_json`` of a jobs row (extra columns ignored)."""
    row = load_json(text)
    return Job(
        row["id"], row["queue"], row["task"], row["payload"], row["priority"], _STATES[row["state"]],
        row["retry_count"], row["max_retries"], row["idempotency_key"], row["created_at"], row["run_at"],
        row["started_at"], row["finished_at"], row["last_attempt"], row["next_retry_at"], row["error"],
        row["result"], row["timeout"], row["lease_expires_at"], row["worker_id"], row["lease_token"],
        tuple(row["parents"] or ()), rate_key=row.get("rate_key"),
    )  # fmt: skip
