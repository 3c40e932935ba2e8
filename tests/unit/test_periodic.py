"""When schedules fire: intervals, cron in a time zone across DST changes, and catch-up policies."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from jobqueue.errors import ConfigurationError
from jobqueue.periodic import MAX_CATCH_UP, Schedule

PARIS = ZoneInfo("Europe/Paris")


def paris(*fields: int, fold: int = 0) -> float:
    return datetime(*fields, tzinfo=PARIS, fold=fold).timestamp()  # type: ignore[arg-type, misc]


def every(seconds: float, **options: object) -> Schedule:
    return Schedule("s", "t", every=seconds, **options)  # type: ignore[arg-type]


def cron(expression: str, **options: object) -> Schedule:
    return Schedule("s", "t", cron=expression, timezone="Europe/Paris", **options)  # type: ignore[arg-type]


def test_interval_ticks_are_multiples_since_the_epoch() -> None:
    assert every(5).next_after(12.0) == 15.0 and every(5).next_after(15.0) == 20.0
    assert every(0.5).next_after(1.2) == 1.5


def test_cron_in_a_time_zone_with_seconds() -> None:
    assert cron("0 9 * * *").next_after(paris(2026, 6, 1, 9, 0)) == paris(2026, 6, 2, 9, 0)
    assert cron("*/10 * * * * *").next_after(paris(2026, 6, 1, 9, 0, 5)) == paris(2026, 6, 1, 9, 0, 10)


def test_a_local_time_skipped_by_the_clocks_going_forward_does_not_fire() -> None:
    # 2026-03-29: 02:00 becomes 03:00 in Paris; there is no 02:30 that day.
    assert cron("30 2 * * *").next_after(paris(2026, 3, 28, 12, 0)) == paris(2026, 3, 30, 2, 30)
    assert cron("0 * * * *").next_after(paris(2026, 3, 29, 1, 0)) == paris(2026, 3, 29, 3, 0)


def test_a_local_time_repeated_by_the_clocks_going_back_fires_once() -> None:
    # 2026-10-25: 03:00 becomes 02:00 in Paris; 02:30 happens twice, and fires at the first.
    first = paris(2026, 10, 25, 2, 30, fold=0)
    assert cron("30 2 * * *").next_after(paris(2026, 10, 24, 12, 0)) == first
    assert cron("30 2 * * *").next_after(first) == paris(2026, 10, 26, 2, 30)
    # Every 15 minutes: the second 02:00-02:59 has no ticks of its own.
    assert cron("*/15 * * * *").next_after(paris(2026, 10, 25, 2, 45, fold=0)) == paris(2026, 10, 25, 3, 0)
    assert cron("*/15 * * * *").next_after(paris(2026, 10, 25, 2, 10, fold=1)) == paris(2026, 10, 25, 3, 0)


def test_catch_up_policies_after_time_away() -> None:
    # Last fired at 100; the scheduler looks again at 131: ticks 110, 120 and 130 were missed.
    assert every(10).due(100.0, since=0.0, now=131.0) == [130.0]
    assert every(10, catch_up="all").due(100.0, since=0.0, now=131.0) == [110.0, 120.0, 130.0]
    assert every(10, catch_up="skip").due(100.0, since=0.0, now=131.0) == [130.0]  # 1 s late: on time
    assert every(10, catch_up="skip").due(100.0, since=0.0, now=137.0) == []  # 7 s late: missed
    assert every(10).due(130.0, since=0.0, now=131.0) == []  # fired already
    # Never fired: nothing from before the scheduler first looked (``since``).
    assert every(10, catch_up="all").due(None, since=125.0, now=131.0) == [130.0]


def test_catching_up_a_week_is_bounded_and_immediate() -> None:
    week = 7 * 86400.0
    assert len(every(1, catch_up="all").due(0.0, since=0.0, now=week)) == MAX_CATCH_UP
    assert cron("* * * * * *").due(paris(2026, 1, 1), since=0.0, now=paris(2026, 1, 8)) == [paris(2026, 1, 8)]
    daily = cron("0 9 * * *", catch_up="all")
    assert daily.due(paris(2026, 1, 1, 9), since=0.0, now=paris(2026, 1, 3, 10)) == [
        paris(2026, 1, 2, 9),
        paris(2026, 1, 3, 9),
    ]


def test_the_stored_spec_round_trips() -> None:
    schedule = Schedule("nightly", "report", cron="0 3 * * *", timezone="Europe/Paris", payload={"x": [1]},
                        queue="reports", priority=5, catch_up="all")  # fmt: skip
    assert Schedule.from_spec("nightly", schedule.spec()) == schedule


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cron": "* * * * *", "every": 5},
        {"cron": "not cron"},
        {"every": 0},
        {"every": -1},
        {"every": 5, "timezone": "Mars/Olympus"},
        {"every": 5, "catch_up": "sometimes"},
    ],
)
def test_a_bad_schedule_is_refused_clearly(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Schedule("s", "t", **options)  # type: ignore[arg-type]


def test_missed_ticks_of_a_repeated_hour_are_found_from_its_second_pass() -> None:
    # Last fired at 02:00 (summer time); looking again at 02:10 (winter time), an hour later.
    quarter = cron("*/15 * * * *", catch_up="all")
    last, now = paris(2026, 10, 25, 2, 0, fold=0), paris(2026, 10, 25, 2, 10, fold=1)
    assert quarter.due(last, since=0.0, now=now) == [paris(2026, 10, 25, 2, m, fold=0) for m in (15, 30, 45)]


def test_threads_asking_at_once_get_their_own_answers() -> None:
    schedule = cron("*/5 * * * * *")
    starts = [paris(2026, 6, 1, 9, 0, s) for s in range(0, 60, 5)]
    expected = {start: schedule.next_after(start) for start in starts}
    wrong: list[float] = []

    def ask() -> None:
        for _ in range(200):
            for start in starts:
                if schedule.next_after(start) != expected[start]:
                    wrong.append(start)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


@pytest.mark.parametrize(
    "options",
    [{"every": 5, "priority": 5000}, {"every": 5, "queue": "no spaces"}, {"every": 5, "payload": {"d": object()}},
     {"cron": "0 0 30 2 *"}],
    ids=["priority", "queue", "payload", "never-fires"],
)  # fmt: skip
def test_a_schedule_whose_job_could_never_be_made_is_refused_when_declared(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Schedule("s", "t", **options)  # type: ignore[arg-type]
