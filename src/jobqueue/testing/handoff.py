"""The conformance suite of the optional :class:`~jobqueue.backends.base.Handoff` capability."""

from __future__ import annotations

from jobqueue.backends.base import Backend, Handoff
from jobqueue.backends.params import ClaimParams
from jobqueue.job import NewJob
from jobqueue.testing.helpers import claim, put


class HandoffSuite:
    """For a backend that hands new jobs to waiting workers (SQLite does): needs the ``backend`` fixture."""

    async def test_a_waiting_worker_gets_new_work_once_and_gives_back_the_rest_when_forgotten(
        self, backend: Backend
    ) -> None:
        # Whatever a backend hands to a worker that found nothing, each job reaches one worker
        # once, and jobs its claims have not taken go back to the queue when it is forgotten.
        assert isinstance(backend, Handoff)
        waiting = ClaimParams(["default"], "w1", 2)
        assert await backend.claim_or_wait(waiting) == []
        await put(backend, *(NewJob(n) for n in range(3)))
        taken = await backend.claim_or_wait(ClaimParams(["default"], "w1", 1))
        assert len(taken) == 1 and taken[0].worker_id == "w1"
        await backend.forget_worker("w1")
        others = await claim(backend, limit=10)
        assert sorted(j.payload for j in [*taken, *others]) == [0, 1, 2]
        assert await backend.claim_or_wait(waiting) == []  # nothing is handed out twice
