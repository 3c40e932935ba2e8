from __future__ import annotations

import random

import pytest

from jobqueue.errors import ValidationError
from jobqueue.retry import RetryPolicy, after_failure


def test_default_is_the_originals_backoff() -> None:
    policy = RetryPolicy()
    assert [policy.backoff(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]


def test_proportional_jitter_stays_within_25_percent_and_the_cap() -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    for retry in range(1, 10):
        backoff = policy.backoff(retry)
        delays = [policy.delay(retry, rng) for _ in range(500)]
        assert min(delays) >= backoff * 0.75
        assert max(delays) <= min(10.0, backoff * 1.25)
        assert max(delays) - min(delays) > backoff * 0.2  # it really spreads


def test_full_jitter_draws_from_zero_to_backoff() -> None:
    policy = RetryPolicy(jitter="full")
    rng = random.Random(2)
    delays = [policy.delay(3, rng) for _ in range(1000)]
    assert 0 <= min(delays) < 0.2 and 1.8 < max(delays) <= 2.0


def test_no_jitter() -> None:
    assert RetryPolicy(jitter="none").delay(2) == 1.0


def test_seeded_rng_is_deterministic() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n, random.Random(7)) for n in range(1, 6)] == [
        policy.delay(n, random.Random(7)) for n in range(1, 6)
    ]


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert RetryPolicy(factor=10).backoff(10_000) == 10.0


def test_retry_or_dead_letter() -> None:
    policy = RetryPolicy(jitter="none")
    # max_retries=3: failures 1..3 retry, the 4th (retry_count 3 before it) dead-letters.
    assert [after_failure(n, 3, policy) for n in range(4)] == [0.5, 1.0, 2.0, None]
    assert after_failure(0, 0, policy) is None


@pytest.mark.parametrize("kwargs", [{"base": -1}, {"factor": 0.5}, {"jitter_ratio": 2}])
def test_invalid_policies(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().backoff(0)
