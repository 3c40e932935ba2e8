"""The conformance suite, part 9: what a dashboard reads (failed attempts with their tracebacks,
lookups by idempotency key, the arrival counter, and the reports of live workers)."""

from __future__ import annotations

import json

import pytest

from jobqueue.backends.base import Backend
from jobqueue.backends.params import MAX_ATTEMPT_ERRORS, Completion, Failure, Lease, PruneParams
from jobqueue.clock import FakeClock
from jobqueue.errors import ValidationError
from jobqueue.job import JobState, NewJob
from jobqueue.testing.helpers import claim, dead_job, lease_of, put

S = JobState


class InsightSuite:
    """Failed attempts, key lookups, the arrival counter and worker reports."""

    async def test_each_failed_attempt_is_kept_with_its_traceback(self, backend: Backend, clock: FakeClock) -> None:
        (job,) = await put(backend, NewJob("x", max_retries=3))
        (first,) = await claim(backend)
        clock.advance(2)
        trace = 'Traceback (most recent call last):\n  File "t.py", line 1\nValueError: <b>&</b>'
        assert await backend.fail([Failure(lease_of(first), "ValueError: bad", 0.0, traceback=trace)]) == [True]
        (second,) = await claim(backend)
        clock.advance(1)
        assert await backend.fail([Failure(lease_of(second), "lease expired", None)]) == [True]
        one, two = await backend.attempt_errors(job.id)
        assert (one.attempt, one.error, one.traceback, one.worker_id) == (1, "ValueError: bad", trace, "worker-1")
        assert one.started_at == pytest.approx(first.last_attempt)
        assert one.failed_at == pytest.approx(first.last_attempt + 2)  # type: ignore[operator]
        assert (two.attempt, two.error, two.traceback) == (2, "lease expired", None)
        assert two.started_at == pytest.approx(second.last_attempt)

    async def test_a_stale_failure_records_no_attempt(self, backend: Backend) -> None:
        (job,) = await put(backend, NewJob("x", max_retries=3))
        (claimed,) = await claim(backend)
        assert await backend.fail([Failure(Lease(job.id, claimed.lease_token + 1), "late", 0.0)]) == [False]
        assert await backend.complete([Completion(lease_of(claimed), "ok")]) == [True]
        assert await backend.attempt_errors(job.id) == []
        assert await backend.attempt_errors("no-such-job") == []
        assert await backend.attempt_errors("a\x00b") == []

    async def test_only_the_latest_attempts_are_kept(self, backend: Backend) -> None:
        total = MAX_ATTEMPT_ERRORS + 3
        (job,) = await put(backend, NewJob("x", max_retries=total))
        for n in range(total):
            (claimed,) = await claim(backend)
            await backend.fail([Failure(lease_of(claimed), f"boom {n + 1}", 0.0, traceback="t" * 20_000)])
        errors = await backend.attempt_errors(job.id)
        assert [e.attempt for e in errors] == list(range(4, total + 1))
        assert errors[-1].error == f"boom {total}"
        assert errors[-1].traceback is not None and 0 < len(errors[-1].traceback) <= 8_000

    async def test_attempts_outlive_a_replay_and_go_with_the_job(self, backend: Backend, clock: FakeClock) -> None:
        job = await dead_job(backend)
        await backend.replay_dead(job.id)
        (again,) = await claim(backend)
        await backend.complete([Completion(lease_of(again), None)])
        assert [(e.attempt, e.error) for e in await backend.attempt_errors(job.id)] == [(1, "boom")]
        assert await backend.delete([job.id]) == [True]
        assert await backend.attempt_errors(job.id) == []
        pruned = await dead_job(backend)
        clock.advance(10)
        await backend.prune(PruneParams(dead_before=clock.time()))
        assert await backend.get(pruned.id) is None
        assert await backend.attempt_errors(pruned.id) == []

    async def test_a_job_is_found_by_its_idempotency_key(self, backend: Backend, clock: FakeClock) -> None:
        keyed, _ = await put(backend, NewJob("x", idempotency_key="order-<7>", key_ttl=100), NewJob("y"))
        found = await backend.find_by_key("order-<7>")
        assert found is not None and found.id == keyed.id and found.payload == "x"
        (claimed,) = await claim(backend, limit=1)
        await backend.complete([Completion(lease_of(claimed), {"ok": True})])
        found = await backend.find_by_key("order-<7>")
        assert found is not None and found.state is S.COMPLETED and found.result == {"ok": True}
        for unknown in ("order-8", "", "a\x00b"):
            assert await backend.find_by_key(unknown) is None

    async def test_the_arrival_counter_grows_with_every_job_accepted(self, backend: Backend) -> None:
        before = await backend.enqueued_total()
        await put(backend, NewJob(1), NewJob(2), NewJob(3))
        await put(backend, NewJob(4))
        after = await backend.enqueued_total()
        assert after - before >= 4
        (claimed,) = await claim(backend, limit=1)
        await backend.complete([Completion(lease_of(claimed), None)])
        await backend.delete([claimed.id])
        assert await backend.enqueued_total() >= after  # finishing or deleting jobs takes nothing off

    async def test_worker_reports_are_listed_replaced_and_expire(self, backend: Backend, clock: FakeClock) -> None:
        assert await backend.worker_reports() == []
        await backend.report_worker("w-b", json.dumps({"id": "w-b", "n": 1}), ttl=10)
        await backend.report_worker("w-a", json.dumps({"id": "w-a", "n": 1}), ttl=30)
        await backend.report_worker("w-b", json.dumps({"id": "w-b", "n": 2}), ttl=10)
        assert [json.loads(r) for r in await backend.worker_reports()] == [{"id": "w-a", "n": 1}, {"id": "w-b", "n": 2}]
        clock.advance(11)
        assert [json.loads(r)["id"] for r in await backend.worker_reports()] == ["w-a"]
        await backend.report_worker("w-b", json.dumps({"id": "w-b", "n": 3}), ttl=10)  # back after a stall
        await backend.remove_worker_report("w-a")
        await backend.remove_worker_report("never-reported")
        assert [json.loads(r)["n"] for r in await backend.worker_reports()] == [3]

    async def test_bad_worker_reports_are_refused(self, backend: Backend) -> None:
        for worker_id, report, ttl in (("", "{}", 1.0), ("w", "{}", 0.0), ("w", "x" * 70_000, 1.0), ("w\x00", "{}", 1)):
            with pytest.raises(ValidationError):
                await backend.report_worker(worker_id, report, ttl)
        assert await backend.worker_reports() == []

    async def test_a_key_is_not_found_on_a_later_job_that_took_its_jobs_id(self, backend: Backend) -> None:
        (keyed,) = await put(backend, NewJob("x", idempotency_key="order-9", id="fixed-id-1"))
        (claimed,) = await claim(backend)
        await backend.complete([Completion(lease_of(claimed), None)])
        assert await backend.delete([keyed.id]) == [True]
        await put(backend, NewJob("y", id="fixed-id-1"))  # the same id, no key
        assert await backend.find_by_key("order-9") is None
