"""Retention: how long finished jobs are kept before they are pruned, on every backend.

One policy for all: a worker's cleaner prunes by it (``WorkerConfig.retention``), and the Redis
backend's own scripts apply it as they finish jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    #: Seconds between a worker's prunes (jittered +/-20 %).
    interval: float = 60.0

    def __post_init__(self) -> None:
        for name in ("completed", "dead_lettered", "cancelled"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"retention {name} must be >= 0 seconds or None")
        if self.interval <= 0:
            raise ValueError("retention interval must be > 0")

    def cutoffs(self, now: float) -> tuple[float | None, float | None, float | None]:
        """Finished before these times, (completed, dead-lettered, cancelled) jobs may go."""

        def cutoff(keep: float | None) -> float | None:
            return None if keep is None else now - keep

        return cutoff(self.completed), cutoff(self.dead_lettered), cutoff(self.cancelled)
