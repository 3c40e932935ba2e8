"""Retention: the cleaner deletes old finished jobs and expired idempotency keys, on every backend.

Every worker runs one (``WorkerConfig.retention``; ``None`` turns it off). Pruning is idempotent
and cheap when there is nothing to delete, so several workers running it on one store is harmless.
Cut-offs are computed from this host's clock; retention windows are hours, so a skew of seconds
between hosts and the store does not matter.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from jobqueue.backends.base import Backend, PruneParams, PruneResult
from jobqueue.clock import Clock, SystemClock

log = logging.getLogger("jobqueue.worker")

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished jobs are kept, in seconds (``None``: forever), and how often to prune.

    The defaults keep a completed job (and so its result, which a duplicate submission returns)
    as long as its idempotency key lives by default (24 h), and dead-lettered jobs a week for
    inspection and replay. Expired idempotency keys are always deleted.
    """

    completed: float | None = 24 * HOUR
    dead_lettered: float | None = 7 * 24 * HOUR
    cancelled: float | None = 24 * HOUR
    #: Seconds between prunes (jittered +/-20 %).
    interval: float = 60.0

    def __post_init__(self) -> None:
        for name in ("completed", "dead_lettered", "cancelled"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"retention {name} must be >= 0 seconds or None")
        if self.interval <= 0:
            raise ValueError("retention interval must be > 0")

    def params(self, now: float) -> PruneParams:
        def cutoff(keep: float | None) -> float | None:
            return None if keep is None else now - keep

        return PruneParams(cutoff(self.completed), cutoff(self.dead_lettered), cutoff(self.cancelled))


class Cleaner:
    """Prunes ``backend`` by ``retention``: :meth:`run_once` for tests, :meth:`run` as a service."""

    def __init__(self, backend: Backend, retention: Retention, clock: Clock | None = None) -> None:
        self.backend = backend
        self.retention = retention
        self.clock: Clock = clock or SystemClock()

    async def run_once(self) -> PruneResult:
        result = await self.backend.prune(self.retention.params(self.clock.time()))
        if result.jobs or result.keys:
            log.info("worker.pruned jobs=%d keys=%d", result.jobs, result.keys)
        return result

    async def run(self) -> None:
        """Prune every ``interval`` until cancelled; a failed prune is logged and tried again."""
        while True:
            await asyncio.sleep(self.retention.interval * random.uniform(0.8, 1.2))
            try:
                await self.run_once()
            except Exception as exc:
                log.error("worker.prune_failed: %s", exc)
