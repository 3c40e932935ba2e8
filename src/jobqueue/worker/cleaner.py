"""The cleaner: prunes old finished jobs and expired idempotency keys, on every backend.

Every worker runs one (``WorkerConfig.retention``; ``None`` turns it off). Pruning is idempotent
and cheap when there is nothing to delete, so several workers running it on one store is harmless.
Cut-offs are computed from this host's clock; retention windows are hours, so a skew of seconds
between hosts and the store does not matter.
"""

from __future__ import annotations

import logging
import random

from jobqueue.backends.base import Backend
from jobqueue.backends.params import PruneParams
from jobqueue.clock import Clock, SystemClock
from jobqueue.outcomes import PruneResult
from jobqueue.retention import Retention
from jobqueue.worker.service import PeriodicService
from jobqueue.worker.signals import WorkerSignals

log = logging.getLogger("jobqueue.worker")


class Cleaner(PeriodicService):
    """Prunes ``backend`` by ``retention`` every ``retention.interval`` seconds (jittered +/-20 %)."""

    name = "cleaner"

    def __init__(
        self, backend: Backend, retention: Retention, clock: Clock | None = None, signals: WorkerSignals | None = None
    ) -> None:
        super().__init__(clock or SystemClock())
        self.backend = backend
        self.retention = retention
        self.signals = signals or WorkerSignals()

    def interval(self) -> float:
        return self.retention.interval * random.uniform(0.8, 1.2)

    async def run_once(self) -> PruneResult:
        result = await self.backend.prune(PruneParams(*self.retention.cutoffs(self.clock.time())))
        if result.jobs or result.keys:
            log.info("worker.pruned jobs=%d keys=%d", result.jobs, result.keys)
        self.signals.pruned.signal(result)
        return result
