"""Rate and concurrency limits of a queue: kept in the store, enforced by every claim.

A queue may have any of four limits (:class:`QueueLimits`): a rate for the whole queue, a
concurrency for the whole queue, and the same two for each ``rate_key`` of its jobs (a tenant, an
API host). A job without a ``rate_key`` is held only by the queue's own limits.

Rates are token buckets (the GCRA form, one number of state per bucket): ``"100/s"`` refills one
token every 10 ms, and the bucket holds at most ``burst`` tokens (by default the count, 100), so
that over any span of T seconds at most ``burst + T * count / per`` jobs start. A claim spends a
token for each job it returns; a job over the limit stays waiting, untouched, and the wait of an
idle worker ends when the next token comes (no poll). The bucket's state is its *theoretical
arrival time* ``tat``: the time at which it will be full again (absent, or in the past: full).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jobqueue.errors import ValidationError

MAX_LIMIT = 1_000_000_000
MAX_CONCURRENCY = 1_000_000
MAX_RATE_PERIOD = 366 * 86_400.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([smhd])\s*")
#: Float slack when counting tokens, so that a token due at exactly now counts as come.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` jobs per ``per`` seconds, at most ``burst`` at once."""

    count: int
    per: float
    burst: int

    def __post_init__(self) -> None:
        for name, value in (("count", self.count), ("burst", self.burst)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
                raise ValidationError("rate", f"{name} must be an integer from 1 to {MAX_LIMIT}")
        per = self.per
        if isinstance(per, bool) or not isinstance(per, int | float) or not math.isfinite(per):
            raise ValidationError("rate", "the period must be a number of seconds")
        if not 0 < per <= MAX_RATE_PERIOD:
            raise ValidationError("rate", f"the period must be > 0 and at most {MAX_RATE_PERIOD:.0f} seconds")
        object.__setattr__(self, "per", float(per))

    @classmethod
    def parse(cls, text: str, burst: int | None = None) -> Rate:
        """``"100/s"``, ``"1000/h"``, ``"5/10s"``, ``"30/m"``, ``"1/d"``; ``burst`` defaults to the count."""
        match = _RATE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValidationError("rate", "must look like '100/s', '1000/h' or '5/10s' (units s, m, h, d)")
        count = int(match.group(1))
        per = float(match.group(2) or 1) * _UNITS[match.group(3)]
        return cls(count, per, count if burst is None else burst)

    @property
    def interval(self) -> float:
        """Seconds between two tokens."""
        return self.per / self.count

    def __str__(self) -> str:
        for unit, seconds in _UNITS.items():
            if self.per == seconds:
                return f"{self.count}/{unit}"
        for unit, seconds in reversed(_UNITS.items()):
            if (self.per / seconds).is_integer():
                return f"{self.count}/{int(self.per / seconds)}{unit}"
        # Plain decimals (never 1e-07), so that the text parses back.
        return f"{self.count}/{format(Decimal(repr(self.per)), 'f')}s"

    def available(self, tat: float | None, now: float) -> int:
        """Tokens in a bucket whose state is ``tat`` (``None``: never used), at ``now``."""
        if tat is None or tat <= now:
            return self.burst
        return max(0, min(self.burst, math.floor(self.burst - (tat - now) / self.interval + _EPSILON)))

    def spend(self, tat: float | None, now: float, tokens: int) -> float:
        """The bucket's state after ``tokens`` are taken at ``now`` (no more than :meth:`available`)."""
        return max(tat if tat is not None else now, now) + tokens * self.interval

    def next_token_at(self, tat: float) -> float:
        """When an empty bucket (state ``tat``) holds a token again."""
        return tat - (self.burst - 1) * self.interval


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """The limits of one queue; ``None`` is no limit. All ``None``: the queue is unlimited."""

    rate: Rate | None = None
    concurrency: int | None = None
    key_rate: Rate | None = None
    key_concurrency: int | None = None

    def __post_init__(self) -> None:
        for name in ("concurrency", "key_concurrency"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY
            ):
                message = f"must be an integer from 1 to {MAX_CONCURRENCY} (pause a queue to stop it)"
                raise ValidationError(name, message)
        for name in ("rate", "key_rate"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), Rate):
                raise ValidationError(name, "must be a Rate (Rate.parse('100/s'))")

    def __bool__(self) -> bool:
        return any(value is not None for value in (self.rate, self.concurrency, self.key_rate, self.key_concurrency))

    @property
    def holds_slots(self) -> bool:
        """A concurrency limit: a job leaving PROCESSING frees a slot, and must wake waiting workers."""
        return self.concurrency is not None or self.key_concurrency is not None

    @classmethod
    def of(
        cls,
        rate: str | Rate | None = None,
        concurrency: int | None = None,
        *,
        burst: int | None = None,
        key_rate: str | Rate | None = None,
        key_burst: int | None = None,
        key_concurrency: int | None = None,
    ) -> QueueLimits:
        """Limits from the short forms people write: ``QueueLimits.of("100/s", 10, key_rate="5/s")``."""
        return cls(
            _rate(rate, burst, "rate", "burst"),
            concurrency,
            _rate(key_rate, key_burst, "key_rate", "key_burst"),
            key_concurrency,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the HTTP API and the store: rates as text, bursts beside them."""
        return {
            "rate": None if self.rate is None else str(self.rate),
            "burst": None if self.rate is None else self.rate.burst,
            "concurrency": self.concurrency,
            "key_rate": None if self.key_rate is None else str(self.key_rate),
            "key_burst": None if self.key_rate is None else self.key_rate.burst,
            "key_concurrency": self.key_concurrency,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueueLimits:
        unknown = set(data) - {"rate", "burst", "concurrency", "key_rate", "key_burst", "key_concurrency"}
        if unknown:
            raise ValidationError(sorted(unknown)[0], "is not a queue limit")
        return cls.of(
            data.get("rate"),
            data.get("concurrency"),
            burst=data.get("burst"),
            key_rate=data.get("key_rate"),
            key_burst=data.get("key_burst"),
            key_concurrency=data.get("key_concurrency"),
        )


def _rate(value: str | Rate | None, burst: int | None, field: str, burst_field: str) -> Rate | None:
    """A rate from its short form, errors naming the field they came from (``key_burst``, say)."""
    if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= MAX_LIMIT):
        raise ValidationError(burst_field, f"must be an integer from 1 to {MAX_LIMIT}")
    if value is None:
        if burst is not None:
            raise ValidationError(burst_field, f"needs a {field}")
        return None
    try:
        if isinstance(value, Rate):
            return value if burst is None else Rate(value.count, value.per, burst)
        return Rate.parse(value, burst)
    except ValidationError as exc:
        raise ValidationError(field, exc.message) from None
