"""The backend conformance suite, for backends written outside this repository too.

Every backend of jobqueue passes this one suite; a backend of yours is done when it does. In a
test module of your project::

    import pytest
    from jobqueue.clock import FakeClock
    from jobqueue.testing import BackendSuite

    class TestMyBackend(BackendSuite):
        @pytest.fixture
        def clock(self) -> FakeClock:
            return FakeClock()

        @pytest.fixture
        async def backend(self, clock: FakeClock, tmp_path):
            backend = MyBackend(clock=clock)      # a fresh, empty store
            await backend.open()
            yield backend
            await backend.close()

The suite needs two fixtures: ``clock``, a :class:`~jobqueue.clock.FakeClock`, and ``backend``,
an opened backend on a fresh store whose notion of "now" is that clock (so the tests move time
forward instead of sleeping). Its tests are coroutines: run them with pytest-asyncio in auto mode
(``asyncio_mode = "auto"``). A backend with the :class:`~jobqueue.backends.base.Handoff`
capability adds :class:`HandoffSuite`.
"""

from jobqueue.testing.administration import AdminSuite
from jobqueue.testing.attempts import AttemptSuite
from jobqueue.testing.dependencies import DependencySuite
from jobqueue.testing.enqueueing import EnqueueSuite
from jobqueue.testing.handoff import HandoffSuite
from jobqueue.testing.insight import InsightSuite
from jobqueue.testing.limits import LimitSuite, RunningJobSuite
from jobqueue.testing.queues import QueuePauseSuite
from jobqueue.testing.schedules import ScheduleSuite


class BackendSuite(
    EnqueueSuite,
    AttemptSuite,
    AdminSuite,
    ScheduleSuite,
    DependencySuite,
    QueuePauseSuite,
    LimitSuite,
    RunningJobSuite,
    InsightSuite,
):
    """Every test of the conformance suite (see the module docstring for the fixtures it needs)."""


__all__ = [
    "AdminSuite",
    "AttemptSuite",
    "BackendSuite",
    "DependencySuite",
    "EnqueueSuite",
    "HandoffSuite",
    "InsightSuite",
    "LimitSuite",
    "QueuePauseSuite",
    "RunningJobSuite",
    "ScheduleSuite",
]
