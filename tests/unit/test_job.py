from __future__ import annotations

import math
import re
from typing import Any

import pytest

from jobqueue.backends.params import ListParams
from jobqueue.errors import ValidationError
from jobqueue.job import (
    FINISHED_STATES,
    MAX_KEY_LENGTH,
    MAX_PAYLOAD_BYTES,
    TRANSITIONS,
    WAITING_STATES,
    Job,
    JobState,
    NewJob,
    can_transition,
    new_job_id,
)

S = JobState


def test_transition_table_is_the_documented_state_machine() -> None:
    assert set(TRANSITIONS) == {
        (S.PENDING, S.PROCESSING),
        (S.SCHEDULED, S.PENDING),
        (S.SCHEDULED, S.PROCESSING),
        (S.FAILED, S.PENDING),
        (S.FAILED, S.PROCESSING),
        (S.PROCESSING, S.COMPLETED),
        (S.PROCESSING, S.FAILED),
        (S.PROCESSING, S.DEAD_LETTERED),
        (S.PROCESSING, S.PENDING),
        (S.DEAD_LETTERED, S.PENDING),
        (S.PENDING, S.CANCELLED),
        (S.SCHEDULED, S.CANCELLED),
        (S.FAILED, S.CANCELLED),
        (S.PROCESSING, S.CANCELLED),
        (S.BLOCKED, S.PENDING),
        (S.BLOCKED, S.SCHEDULED),
        (S.BLOCKED, S.DEAD_LETTERED),
        (S.BLOCKED, S.CANCELLED),
    }


def test_completed_and_cancelled_are_terminal() -> None:
    for state in JobState:
        assert not can_transition(S.COMPLETED, state)
        assert not can_transition(S.CANCELLED, state)
    assert can_transition(S.DEAD_LETTERED, S.PENDING)


def test_waiting_and_running_jobs_can_be_cancelled() -> None:
    assert {src for (src, dst) in TRANSITIONS if dst is S.CANCELLED} == WAITING_STATES | {S.PROCESSING}


def test_every_state_is_reachable_from_pending() -> None:
    reached, frontier = {S.PENDING}, [S.PENDING]
    while frontier:
        src = frontier.pop()
        for a, b in TRANSITIONS:
            if a is src and b not in reached:
                reached.add(b)
                frontier.append(b)
    assert reached | {S.SCHEDULED, S.BLOCKED} == set(JobState)  # both entered at enqueue
    assert reached >= FINISHED_STATES


def test_states_are_upper_case_strings() -> None:
    assert [str(s) for s in JobState] == [s.name for s in JobState]


def test_ids_are_uuid7_and_increase() -> None:
    ids = [new_job_id() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i) for i in ids)


def test_defaults() -> None:
    job = NewJob("process-order-42")
    assert (job.task, job.queue, job.priority, job.max_retries) == ("default", "default", 0, 3)
    assert job.key_ttl == 24 * 3600 and job.idempotency_key is None
    assert job.payload_json == b'"process-order-42"'


@pytest.mark.parametrize("payload", [None, "", float("nan"), object(), {"a": {1, 2}}])
def test_invalid_payloads(payload: object) -> None:
    with pytest.raises(ValidationError) as info:
        NewJob(payload)
    assert info.value.field == "payload"


def test_payload_size_limit() -> None:
    NewJob("x" * (MAX_PAYLOAD_BYTES - 2))
    with pytest.raises(ValidationError, match="limit"):
        NewJob("x" * (MAX_PAYLOAD_BYTES - 1))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("task", ""),
        ("task", "has space"),
        ("queue", "-leading"),
        ("queue", "x" * 129),
        ("priority", 1001),
        ("priority", -1001),
        ("priority", 1.5),
        ("priority", True),
        ("max_retries", -1),
        ("max_retries", 101),
        ("idempotency_key", ""),
        ("idempotency_key", "k" * (MAX_KEY_LENGTH + 1)),
        ("key_ttl", 0),
        ("delay", -1),
        ("delay", math.inf),
        ("delay", 101 * 365.25 * 86_400),
        ("run_at", 253_402_300_800),
        ("timeout", 0),
        ("timeout", 86_401),
    ],
)
def test_field_limits(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        NewJob("x", **{field: value})  # type: ignore[arg-type]
    assert info.value.field == field


def test_valid_edges() -> None:
    NewJob({"k": 1}, task="emails.send:v2", queue="q_1", priority=1000, max_retries=0, idempotency_key="k" * 255)
    NewJob(0, priority=-1000, max_retries=100, timeout=86_400, delay=0)


def test_delay_and_run_at_are_exclusive() -> None:
    with pytest.raises(ValidationError) as info:
        NewJob("x", delay=5, run_at=1e9)
    assert info.value.field == "run_at"


def test_due_at() -> None:
    assert NewJob("x", delay=5).due_at(100.0) == 105.0
    assert NewJob("x", run_at=50).due_at(100.0) == 50.0


def test_job_to_dict_uses_upper_case_states_and_iso_times() -> None:
    job = Job("id", "q", "t", {"a": 1}, 1, S.DEAD_LETTERED, 2, 3, None, 0.0, 1.5)
    data = job.to_dict()
    assert data["state"] == "DEAD_LETTERED"
    assert data["created_at"] == "1970-01-01T00:00:00+00:00"
    assert data["run_at"] == "1970-01-01T00:00:01.500000+00:00"
    assert data["finished_at"] is None
    assert data["retry_count"] == 2 and data["max_retries"] == 3
    assert job.attempt == 3 and job.retries_left == 1


def test_an_idempotency_key_may_not_hold_nul() -> None:
    with pytest.raises(ValidationError, match="idempotency_key"):
        NewJob(1, idempotency_key="order\x0042")


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"queue": "q\x00"}, "queue"), ({"task": "bad name"}, "task"), ({"cursor": "\x00"}, "cursor")],
)
def test_list_filters_are_checked_like_names(fields: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ListParams(**fields)  # type: ignore[arg-type]


def test_parents_are_validated_and_named_once() -> None:
    job = NewJob("x", depends_on=["a", "b", "a"])
    assert job.depends_on == ("a", "b") and job.on_parent_failure == "fail" and not job.runs_if_parents_fail
    assert NewJob("x", depends_on=["a"], on_parent_failure="run").runs_if_parents_fail
    bad_lists: list[Any] = ["a", [1], [""], ["a\x00"], ["x" * 256], [str(i) for i in range(10_001)]]
    for bad in bad_lists:
        with pytest.raises(ValidationError) as caught:
            NewJob("x", depends_on=bad)
        assert caught.value.field == "depends_on"
    with pytest.raises(ValidationError) as caught:
        NewJob("x", on_parent_failure="ignore")
    assert caught.value.field == "on_parent_failure"
