"""Rows of the ``jobs`` table as :class:`~jobqueue.job.Job` and back, and the count changes
every write makes to ``queue_counts``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from jobqueue.backends.sqlite.sql import Q
from jobqueue.job import Job, JobState, dump_json, load_json

STATES = {s.value: s for s in JobState}
#: The states of new jobs that wait for a claim (not handed to a worker, BLOCKED or dead at birth).
CLAIMABLE = frozenset({JobState.PENDING, JobState.SCHEDULED})


def job_of(row: Sequence[Any]) -> Job:
    """A job from a row in ``{job_columns}`` order (payload and result as JSON text)."""
    result, parents = row[16], row[21]
    return Job(
        row[0], row[1], row[2], load_json(row[3]), row[4], STATES[row[5]], row[6], row[7], row[8],
        row[9], row[10], row[11], row[12], row[13], row[14], row[15],
        None if result is None else load_json(result),
        row[17], row[18], row[19], row[20], () if parents is None else tuple(load_json(parents)),
        rate_key=row[22],
    )  # fmt: skip


def row_of(job: Job) -> list[Any]:
    """``job`` as the row :func:`job_of` reads."""
    return [
        job.id, job.queue, job.task, dump_json(job.payload).decode(), job.priority, job.state.value,
        job.retry_count, job.max_retries, job.idempotency_key, job.created_at, job.run_at, job.started_at,
        job.finished_at, job.last_attempt, job.next_retry_at, job.error,
        None if job.result is None else dump_json(job.result).decode(),
        job.timeout, job.lease_expires_at, job.worker_id, job.lease_token,
        dump_json(job.parents).decode() if job.parents else None, job.rate_key,
    ]  # fmt: skip


class Counts:
    """Net changes to ``queue_counts`` made by one operation, written once at its end."""

    __slots__ = ("_delta",)

    def __init__(self) -> None:
        self._delta: dict[tuple[str, str], int] = {}

    def add(self, queue: str, state: str, n: int = 1) -> None:
        key = (queue, state)
        self._delta[key] = self._delta.get(key, 0) + n

    def move(self, queue: str, old: str, new: str, n: int = 1) -> None:
        self.add(queue, old, -n)
        self.add(queue, new, n)

    def write(self, conn: sqlite3.Connection) -> None:
        changes = [(queue, state, n) for (queue, state), n in self._delta.items() if n]
        if changes:
            conn.executemany(Q["add_counts"], changes)
