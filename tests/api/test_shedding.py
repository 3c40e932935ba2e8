"""The load shedder: a refusal window per full queue, and one probe when it ends."""

from __future__ import annotations

from jobqueue.api.shedding import Admission, Shedder


def test_a_full_queue_is_refused_until_a_probe_finds_room() -> None:
    shedder = Shedder(window=60.0)
    assert shedder.admit("q", keyed=False) is Admission.ASK  # nothing known yet
    shedder.settle("q", Admission.ASK, full=True)
    assert shedder.admit("q", keyed=False) is Admission.REFUSE
    assert shedder.admit("other", keyed=False) is Admission.ASK  # queues are independent
    assert shedder.admit("q", keyed=True) is Admission.ASK  # a keyed job may be a duplicate: ask

    shedder._until["q"] = 0.0  # the window ends
    assert shedder.admit("q", keyed=False) is Admission.PROBE
    assert shedder.admit("q", keyed=False) is Admission.REFUSE  # one probe at a time
    shedder.settle("q", Admission.PROBE, full=True)  # still full: a new window
    assert shedder.admit("q", keyed=False) is Admission.REFUSE

    shedder._until["q"] = 0.0
    assert shedder.admit("q", keyed=False) is Admission.PROBE
    shedder.settle("q", Admission.PROBE, full=False)  # room again
    assert shedder.admit("q", keyed=False) is Admission.ASK


def test_a_probe_without_an_answer_lets_the_next_one_try() -> None:
    shedder = Shedder(window=60.0)
    shedder.settle("q", Admission.ASK, full=True)
    shedder._until["q"] = 0.0
    assert shedder.admit("q", keyed=False) is Admission.PROBE
    shedder.settle("q", Admission.PROBE, full=None)  # the store failed
    assert shedder.admit("q", keyed=False) is Admission.PROBE


def test_window_zero_never_sheds() -> None:
    shedder = Shedder(window=0.0)
    shedder.settle("q", Admission.ASK, full=True)
    assert shedder.admit("q", keyed=False) is Admission.ASK
