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


def test_it_catches_lost_unfinished_unstarted_fenced_and_an_attempt_run_twice() -> None:
    attempts = [["mark", "b", "1", "10"], ["mark", "d", "1", "10"], ["mark", "d", "2", "11"], ["mark", "e", "1", "10"],
                ["mark", "e", "1", "11"]]  # fmt: skip
    stored = [
        job("b", JobState.PENDING),  # accepted, never finished
        job("c", JobState.COMPLETED, [10, 1]),  # completed, but nobody ran it
        job("d", JobState.COMPLETED, [10, 1]),  # completed by its first attempt after a second began
        job("e", JobState.COMPLETED, [11, 1]),  # two workers ran attempt 1 at once
    ]
    report = check({"a", "b", "d", "e"}, attempts, stored)
    found = (report.lost, report.unfinished, report.completed_unstarted, report.fenced_completions)
    assert found == (["a"], ["b"], ["c"], ["d"]) and report.attempt_run_twice == ["e"]
    assert report.violations == 5


def test_an_attempt_run_twice_is_only_counted_where_a_crash_may_undo_a_claim() -> None:
    attempts = [["mark", "e", "1", "10"], ["mark", "e", "1", "11"]]
    report = check({"e"}, attempts, [job("e", JobState.COMPLETED, [11, 1])], claims_durable=False)
    assert report.attempt_run_twice == ["e"] and report.violations == 0
