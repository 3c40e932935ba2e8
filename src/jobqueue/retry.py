"""Retry policy: exponential backoff with jitter, and what a failed attempt becomes.

These are pure functions of (attempt, random source) so that tests can pin them with a seeded RNG.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from jobqueue.errors import ValidationError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait before retry number ``n`` (1 for the first retry).

    The default is the original JobQueue's: 0.5 s doubling per retry, +/-25 % jitter, capped at
    10 s. ``jitter="full"`` draws uniformly from ``[0, backoff]`` instead (AWS "full jitter"), which
    spreads a burst of failures the most.
    """

    base: float = 0.5
    factor: float = 2.0
    max_delay: float = 10.0
    jitter: Literal["proportional", "full", "none"] = "proportional"
    jitter_ratio: float = 0.25

    def __post_init__(self) -> None:
        if self.base < 0 or self.max_delay < 0:
            raise ValidationError("retry_policy", "base and max_delay must be >= 0")
        if self.factor < 1:
            raise ValidationError("retry_policy", "factor must be >= 1")
        if not 0 <= self.jitter_ratio <= 1:
            raise ValidationError("retry_policy", "jitter_ratio must be between 0 and 1")

    def backoff(self, retry: int) -> float:
        """The delay before retry ``retry`` without jitter, capped at ``max_delay``."""
        if retry < 1:
            raise ValueError("retry numbers start at 1")
        # Cap the exponent first so that a large retry number cannot overflow a float.
        exponent = min(retry - 1, 1024)
        try:
            raw = self.base * self.factor**exponent
        except OverflowError:
            raw = self.max_delay
        return min(self.max_delay, raw)

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """The delay before retry ``retry``, jittered with ``rng`` (the module RNG by default)."""
        backoff = self.backoff(retry)
        draw = (rng or _rng).random()
        if self.jitter == "none":
            return backoff
        if self.jitter == "full":
            return backoff * draw
        spread = 1 + self.jitter_ratio * (2 * draw - 1)
        return min(self.max_delay, backoff * spread)


_rng = random.Random()

DEFAULT_RETRY_POLICY = RetryPolicy()


def after_failure(
    retry_count: int,
    max_retries: int,
    policy: RetryPolicy,
    *,
    requested_delay: float | None = None,
    permanent: bool = False,
    rng: random.Random | None = None,
) -> float | None:
    """What a failed attempt becomes: the delay before the next attempt, or ``None`` to dead-letter.

    The one place this is decided, for a handler's exception, a timeout, a lost worker (an expired
    lease) and a ``Retry`` alike. ``retry_count`` counts the failed attempts *before* this one; a
    job has ``max_retries`` retries after its first attempt. ``permanent`` (a ``PermanentError``)
    dead-letters at once; ``requested_delay`` (a handler's ``Retry(delay)``) replaces the policy's
    backoff, but not the attempt budget.
    """
    retry = retry_count + 1
    if permanent or retry > max_retries:
        return None
    if requested_delay is not None:
        return requested_delay
    return policy.delay(retry, rng)
