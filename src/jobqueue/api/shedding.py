"""Load shedding: refusals for a queue found full, answered without asking the store.

Under a flood most submissions are refused. Each refusal would cost a store round trip (a write
transaction, since the capacity check and the insert are one), and those round trips delay the
submissions that could be accepted. After the store refuses a job for capacity, further jobs for
that queue are refused at once for ``window`` seconds. When the window ends, one submission (the
probe) goes to the store while the others are still refused; its answer either opens the queue
again or starts a new window. Without a probe, every request arriving as the window ended would
go to the store at once, and the flood's tail latency would come back.

A refusal only says "try later", so giving one a moment early is harmless. Jobs with an
idempotency key always go to the store, where the key may be held: a 409 with the job says more
than a 503.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field


class Admission(enum.Enum):
    """What to do with a submission, given what is known of its queue."""

    #: No hint: ask the store.
    ASK = "ask"
    #: The queue was full a moment ago: refuse without asking.
    REFUSE = "refuse"
    #: The window ended: this request asks the store for all the others (see :meth:`Shedder.settle`).
    PROBE = "probe"


@dataclass(slots=True)
class Shedder:
    """Per-queue refusal windows. ``window`` 0 turns shedding off."""

    window: float
    _until: dict[str, float] = field(default_factory=dict)
    _probing: set[str] = field(default_factory=set)

    def admit(self, queue: str, keyed: bool) -> Admission:
        """Whether a submission to ``queue`` asks the store, probes it, or is refused at once."""
        until = self._until.get(queue)
        if until is None or keyed:
            return Admission.ASK
        if queue in self._probing or time.monotonic() < until:
            return Admission.REFUSE
        self._probing.add(queue)
        return Admission.PROBE

    def settle(self, queue: str, admission: Admission, full: bool | None) -> None:
        """Record the store's answer: ``full`` True (refused), False (accepted), None (no answer)."""
        if admission is Admission.PROBE:
            self._probing.discard(queue)
        if full:
            if self.window:
                self._until[queue] = time.monotonic() + self.window
        elif full is False:
            self._until.pop(queue, None)
