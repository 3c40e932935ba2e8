"""The conformance suite, part 6: queues paused and resumed in the store, for every worker."""

from __future__ import annotations

import asyncio

from jobqueue.backends.base import Backend
from jobqueue.backends.params import Completion, Failure, Lease
from jobqueue.clock import FakeClock
from jobqueue.job import JobState, NewJob
from jobqueue.outcomes import Rejected
from jobqueue.testing.helpers import claim, lease_of, put, state_of

S = JobState
BOTH = ("mail", "default")


class QueuePauseSuite:
    """A paused queue gives no job to any claim; everything else goes on."""

    async def test_a_paused_queue_gives_no_job_and_the_others_go_on(self, backend: Backend) -> None:
        mail, other = await put(backend, NewJob("m", queue="mail", priority=9), NewJob("d"))
        assert await backend.pause_queue("mail", True) is True
        assert await backend.paused_queues() == ["mail"]
        assert [job.id for job in await claim(backend, queues=BOTH)] == [other.id]
        assert await claim(backend, queues=("mail",)) == []
        assert await backend.pause_queue("mail", False) is False
        assert await backend.paused_queues() == []
        assert [job.id for job in await claim(backend, queues=BOTH)] == [mail.id]

    async def test_a_paused_queue_takes_jobs_and_keeps_its_capacity(self, backend: Backend, clock: FakeClock) -> None:
        await backend.pause_queue("mail", True)
        stored = await put(backend, NewJob(1, queue="mail"), NewJob(2, queue="mail", delay=5))
        assert await backend.enqueue([NewJob(3, queue="mail")], {"mail": 2}) == [Rejected("mail", 2)]
        clock.advance(10)  # the delayed one comes due, and still waits for the resume
        assert await claim(backend, queues=("mail",)) == []
        assert (await backend.stats()).queues["mail"].waiting == 2
        await backend.pause_queue("mail", False)
        assert {job.id for job in await claim(backend, queues=("mail",))} == {job.id for job in stored}

    async def test_jobs_running_when_paused_finish_and_a_retry_waits(self, backend: Backend) -> None:
        await put(backend, NewJob(1, queue="mail"), NewJob(2, queue="mail"))
        first, second = await claim(backend, queues=("mail",))
        await backend.pause_queue("mail", True)
        assert await backend.heartbeat([lease_of(first), lease_of(second)]) == [True, True]
        assert await backend.complete([Completion(lease_of(first), "done")]) == [True]
        assert await backend.fail([Failure(lease_of(second), "boom", 0.0)]) == [True]
        assert await claim(backend, queues=("mail",)) == []
        assert await state_of(backend, second.id) is S.FAILED
        await backend.pause_queue("mail", False)
        (retried,) = await claim(backend, queues=("mail",))
        assert retried.id == second.id and retried.attempt == 2

    async def test_pausing_twice_is_one_pause_and_initial_keeps_a_stored_state(self, backend: Backend) -> None:
        await backend.pause_queue("mail", True)
        await backend.pause_queue("mail", True)
        await backend.pause_queue("mail", False)
        assert await backend.paused_queues() == []
        # Configured to start paused: a queue resumed by hand stays resumed across restarts...
        assert await backend.pause_queue("mail", True, initial=True) is False
        # ... and one never seen starts paused, once.
        assert await backend.pause_queue("reports", True, initial=True) is True
        await backend.pause_queue("reports", False)
        assert await backend.pause_queue("reports", True, initial=True) is False
        assert await backend.paused_queues() == []

    async def test_a_paused_queue_is_no_work_for_a_waiting_worker(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob(1, queue="mail"), NewJob(2, queue="mail", delay=0.01))
        await backend.pause_queue("mail", True)
        clock.advance(1)
        await backend.wait_for_work(["mail"], 0.01)  # drain any earlier wake-up
        # Due jobs of a paused queue must not end a wait at once: a worker would spin.
        assert await backend.wait_for_work(["mail"], 0.05) is False

    async def test_a_resume_wakes_a_waiting_worker(self, backend: Backend) -> None:
        (job,) = await put(backend, NewJob(1, queue="mail"))
        await backend.pause_queue("mail", True)
        await backend.wait_for_work(["mail"], 0.01)
        waiter = asyncio.create_task(backend.wait_for_work(["mail"], 30))
        await asyncio.sleep(0)
        await backend.pause_queue("mail", False)
        assert await asyncio.wait_for(waiter, 5) is True
        assert [j.id for j in await claim(backend, queues=("mail",))] == [job.id]

    async def test_queue_names_are_checked(self, backend: Backend) -> None:
        for bad in ("", "-x", "a b", "q\x00"):
            try:
                await backend.pause_queue(bad, True)
            except ValueError:
                continue
            raise AssertionError(f"pause_queue({bad!r}) was accepted")

    async def test_a_stale_lease_of_a_paused_queue_is_still_stale(self, backend: Backend) -> None:
        await put(backend, NewJob(1, queue="mail"))
        (job,) = await claim(backend, queues=("mail",))
        await backend.pause_queue("mail", True)
        assert await backend.complete([Completion(Lease(job.id, job.lease_token + 1), None)]) == [False]
