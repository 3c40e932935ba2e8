"""The history checker itself: it must see what it is there to catch."""

from __future__ import annotations

from jobqueue import Job, JobState
from tests.faults.history import check


def job(job_id: str, state: JobState, result: object = None) -> Job:
    return Job(job_id, "default", "mark", None, 0, state, 0, 3, None, 0.0, 0.0, result=result)


def test_a_clean_history_has_no_violations() -> None:
    attempts = [["mark", "a", "1", "10"], ["mark", "b", "1", "10"], ["mark", "b", "2", "11"]]
    report = check({"a", "b"}, attempts, [job("a", JobState.COMPLETED, [10, 1]), job("b", JobState.COMPLETED, [11, 2])])
    assert report.violations == 0 and report.ran_more_than_once == 1 and report.completed == 2


def test_it_catches_lost_unfinished_unstarted_and_fenced() -> None:
    attempts = [["mark", "b", "1", "10"], ["mark", "d", "1", "10"], ["mark", "d", "2", "11"]]
    stored = [
        job("b", JobState.PENDING),  # accepted, never finished
        job("c", JobState.COMPLETED, [10, 1]),  # completed, but nobody ran it
        job("d", JobState.COMPLETED, [10, 1]),  # completed by its first attempt after a second began
    ]
    report = check({"a", "b", "d"}, attempts, stored)
    assert (report.lost, report.unfinished, report.completed_unstarted, report.fenced_completions) == (
        ["a"],
        ["b"],
        ["c"],
        ["d"],
    )
    assert report.violations == 4
