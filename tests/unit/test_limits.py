"""Rates and queue limits: the forms people write, and the token bucket every store reproduces."""

from __future__ import annotations

from typing import Any

import pytest

from jobqueue.errors import ValidationError
from jobqueue.limits import QueueLimits, Rate


@pytest.mark.parametrize(
    ("text", "count", "per", "shown"),
    [("100/s", 100, 1.0, "100/s"), ("1000/h", 1000, 3600.0, "1000/h"), ("5/10s", 5, 10.0, "5/10s"),
     ("30 / m", 30, 60.0, "30/m"), ("1/d", 1, 86_400.0, "1/d"), ("2/90m", 2, 5400.0, "2/90m"),
     ("3/1.5s", 3, 1.5, "3/1.5s")],
)  # fmt: skip
def test_rates_are_read_and_written_back(text: str, count: int, per: float, shown: str) -> None:
    rate = Rate.parse(text)
    assert (rate.count, rate.per, rate.burst, str(rate)) == (count, per, count, shown)
    assert Rate.parse(str(rate)) == rate


@pytest.mark.parametrize("text", ["", "fast", "10", "/s", "10/x", "0/s", "10/0s", "-1/s", "1/400d", 10])
def test_bad_rates_are_refused_naming_the_rate(text: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Rate.parse(text)  # type: ignore[arg-type]
    assert caught.value.field == "rate"


def test_a_bucket_holds_its_burst_and_refills_one_token_per_interval() -> None:
    rate = Rate(2, 1.0, 4)  # a token every 0.5 s, at most 4 held
    assert rate.available(None, 100.0) == 4
    tat = rate.spend(None, 100.0, 4)
    assert tat == 102.0 and rate.available(tat, 100.0) == 0
    assert rate.next_token_at(tat) == 100.5
    assert rate.available(tat, 100.5) == 1 and rate.available(tat, 100.49) == 0
    assert rate.available(tat, 101.0) == 2 and rate.available(tat, 150.0) == 4
    # Over any span T, at most burst + T * count / per tokens are spent.
    spent, now, state = 0, 100.0, None
    while now < 110.0:
        take = rate.available(state, now)
        state, spent = rate.spend(state, now, take), spent + take
        now += 0.01
    assert spent <= 4 + 10 * 2


def test_queue_limits_round_trip_their_dict_form_and_check_values() -> None:
    limits = QueueLimits.of("100/s", 5, burst=10, key_rate="1/s", key_concurrency=1)
    assert limits.to_dict() == {"rate": "100/s", "burst": 10, "concurrency": 5, "key_rate": "1/s",
                                "key_burst": 1, "key_concurrency": 1}  # fmt: skip
    assert QueueLimits.from_dict(limits.to_dict()) == limits
    assert bool(limits) and limits.holds_slots and not QueueLimits() and not QueueLimits.of("1/s").holds_slots
    refused: list[tuple[dict[str, Any], str]] = [
        ({"concurrency": 0}, "concurrency"), ({"key_concurrency": True}, "key_concurrency"), ({"burst": 3}, "burst"),
        ({"rate": "1/s", "burst": 0}, "burst"), ({"other": 1}, "other"), ({"key_rate": 5}, "key_rate"),
        ({"key_burst": 2}, "key_burst"), ({"key_rate": "1/s", "key_burst": "2"}, "key_burst"),
    ]  # fmt: skip
    for bad, field in refused:
        with pytest.raises(ValidationError) as caught:
            QueueLimits.from_dict(bad)
        assert caught.value.field == field


def test_an_odd_period_is_written_as_text_that_reads_back() -> None:
    rate = Rate(1, 1e-7, 1)
    assert str(rate) == "1/0.0000001s" and Rate.parse(str(rate)).per == rate.per
