"""The history checker: what clients were told and what workers did, checked against the store.

A fault run records every job the store answered "accepted" for, and the ledger of attempts
(``tests/integration/faultapp.py``: task, job id, attempt, pid). :func:`check` then reads every
job back and counts what must be zero: accepted jobs lost or never finished, completions with no
attempt behind them, and completions by a fenced lease (one that is not the job's last attempt:
a worker that lost its lease must not land its outcome), and attempts run twice under one number
(the store handed out a lease it had not taken back). Jobs run more than once are counted, not
failed: that is at-least-once, and each run after the first must come with a new attempt number,
which the store issues only once the previous lease expired or was released, so a duplicate can
only come from a lease that ended without its outcome recorded. A store whose claims a crash may
undo (PostgreSQL's default durability commits them asynchronously, docs/postgres.md) reruns the
undone attempt under its own number: there, an attempt run twice is counted, not failed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from jobqueue import Job, JobState


@dataclass
class Report:
    accepted: int = 0
    completed: int = 0
    lost: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    completed_unstarted: list[str] = field(default_factory=list)
    fenced_completions: list[str] = field(default_factory=list)
    attempt_run_twice: list[str] = field(default_factory=list)
    ran_more_than_once: int = 0
    claims_durable: bool = True

    @property
    def violations(self) -> int:
        found = [self.lost, self.unfinished, self.completed_unstarted, self.fenced_completions]
        if self.claims_durable:
            found.append(self.attempt_run_twice)
        return sum(len(ids) for ids in found)

    def __str__(self) -> str:
        return (
            f"history: {self.accepted} accepted, {self.completed} completed; lost {len(self.lost)}, "
            f"unfinished {len(self.unfinished)}, completed without an attempt {len(self.completed_unstarted)}, "
            f"completed by a fenced lease {len(self.fenced_completions)}, an attempt run twice "
            f"{len(self.attempt_run_twice)}; run more than once {self.ran_more_than_once}"
        )


def check(accepted: set[str], attempts: list[list[str]], stored: list[Job], *, claims_durable: bool = True) -> Report:
    """``attempts``: ledger rows ``[task, job id, attempt, pid]``; ``stored``: every job read back;
    ``claims_durable``: whether a claim the store answered survives its crash."""
    by_id = {job.id: job for job in stored}
    runs = Counter(row[1] for row in attempts)
    last_attempt: dict[str, int] = {}
    for row in attempts:
        last_attempt[row[1]] = max(last_attempt.get(row[1], 0), int(row[2]))
    report = Report(accepted=len(accepted), claims_durable=claims_durable)
    for job_id in sorted(accepted):
        job = by_id.get(job_id)
        if job is None:
            report.lost.append(job_id)
        elif job.state is not JobState.COMPLETED:
            report.unfinished.append(job_id)
    for job in stored:
        if job.state is not JobState.COMPLETED:
            continue
        report.completed += 1
        if runs[job.id] == 0:
            report.completed_unstarted.append(job.id)
        elif isinstance(job.result, list) and job.result[1] != last_attempt[job.id]:
            report.fenced_completions.append(job.id)
    per_attempt = Counter((row[1], row[2]) for row in attempts)
    report.attempt_run_twice = sorted({job_id for (job_id, _), n in per_attempt.items() if n > 1})
    report.ran_more_than_once = sum(1 for n in runs.values() if n > 1)
    return report
