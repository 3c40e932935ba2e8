"""Rate and concurrency limits on SQLite: read, checked and spent in the write transaction of the
claim (or of the enqueue handing a job to a waiting worker) that takes the jobs.

Storage: ``queue_settings.limits`` holds a queue's limits in force (:func:`dump_limits`; NULL:
none), ``rate_buckets`` one GCRA bucket per queue (key ``''``) and per (queue, ``rate_key``),
each a ``tat`` (see :mod:`jobqueue.limits`, whose :class:`~jobqueue.limits.Rate` does the math
here too, so every store counts tokens alike), and ``jobs.rate_key`` each job's key; a key's
PROCESSING jobs are counted through the partial index ``jobs_running_keys``.

Atomicity: every claim and hand-off holds SQLite's write lock (``BEGIN IMMEDIATE``, one for all
the processes on the file) from the read of the limits to the commit of the jobs it took and the
tokens it spent, so concurrent claims never exceed a limit together.

Cost: an unlimited queue's claim reads the limits in the statement it already ran (a row ahead
of the jobs from ``claim_candidates``, which a queue without limits does not have). A limited
queue's claim reads its PROCESSING count and bucket in that same row; keys cost one lookup each
(:meth:`Gate.key_room`), and the buckets one write per claim.

Order: a limited queue's jobs are taken in claim order, those the limits admit, skipping (and
leaving untouched) the jobs of a key at its limit; the keys found full are then left out of the
scan (``limited_candidates``), so thousands of one key's jobs at the head of the queue cost one
walk past them, and a claim still returns ``min(limit, admitted)`` jobs.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from jobqueue.backends.sqlite.sql import Q
from jobqueue.job import NewJob, dump_json, load_json
from jobqueue.limits import QueueLimits, Rate

NO_LIMITS = QueueLimits()
#: How many more jobs a key may start when it has no limit of its own (beyond any claim's size).
_UNBOUNDED = 1 << 62
#: Buckets written per statement (three parameters each, well under SQLite's limit of 32,766).
_BUCKETS_PER_STATEMENT = 512


def dump_limits(limits: QueueLimits) -> str:
    """The stored form: numbers, so that a rate's period comes back exactly as it was given
    (the text form of ``QueueLimits.to_dict`` rounds an odd period such as a third of a second)."""
    return dump_json(
        {
            "rate": _dump_rate(limits.rate),
            "concurrency": limits.concurrency,
            "key_rate": _dump_rate(limits.key_rate),
            "key_concurrency": limits.key_concurrency,
        }
    ).decode()


@functools.lru_cache(maxsize=1024)
def load_limits(text: str) -> QueueLimits:
    """Limits from their stored form, parsed once per distinct text (claims read it every time)."""
    data = load_json(text)
    rate, key_rate = _load_rate(data.get("rate")), _load_rate(data.get("key_rate"))
    return QueueLimits(rate, data.get("concurrency"), key_rate, data.get("key_concurrency"))


def _dump_rate(rate: Rate | None) -> list[Any] | None:
    return None if rate is None else [rate.count, rate.per, rate.burst]


def _load_rate(stored: list[Any] | None) -> Rate | None:
    return None if stored is None else Rate(int(stored[0]), float(stored[1]), int(stored[2]))


class Gate:
    """What one limited queue's limits admit within one transaction, and the tokens taken."""

    __slots__ = ("_keys", "keyed", "limits", "now", "queue", "room", "taken", "tat")

    def __init__(self, queue: str, limits: QueueLimits, running: int | None, tat: float | None, now: float) -> None:
        self.queue, self.limits, self.tat, self.now = queue, limits, tat, now
        room: int | None = None  # how many more jobs the queue's own limits admit (None: any)
        if limits.concurrency is not None:
            room = max(0, limits.concurrency - (running or 0))
        if limits.rate is not None:
            tokens = limits.rate.available(tat, now)
            room = tokens if room is None else min(room, tokens)
        self.room = room
        self.keyed = limits.key_concurrency is not None or limits.key_rate is not None
        self._keys: dict[str, list[Any]] = {}  # key -> [room, tat]
        #: The keys of the jobs taken so far (None for a job without one), in order.
        self.taken: list[str | None] = []

    def look_up(self, conn: sqlite3.Connection, keys: Iterable[str | None], handed: str | None = None) -> None:
        """Read the state of those of ``keys`` not read yet, in one statement (``handed``: the key
        of a job stored as running, being handed, that is not to count)."""
        if not self.keyed:
            return
        new = [key for key in dict.fromkeys(keys) if key is not None and key not in self._keys]
        if not new:
            return
        key_concurrency, key_rate, now = self.limits.key_concurrency, self.limits.key_rate, self.now
        for key, running, tat in conn.execute(Q["key_gates"], (self.queue, dump_json(new).decode())):
            if key == handed:
                running -= 1
            room = _UNBOUNDED
            if key_concurrency is not None:
                room = max(0, key_concurrency - running)
            if key_rate is not None:
                room = min(room, key_rate.available(tat, now))
            self._keys[key] = [room, tat]

    def key_room(self, conn: sqlite3.Connection, key: str, handed: str | None = None) -> int:
        """How many more jobs of ``key`` the per-key limits admit (read once per key)."""
        state = self._keys.get(key)
        if state is None:
            self.look_up(conn, (key,), handed)
            state = self._keys[key]
        room_left: int = state[0]
        return room_left

    def admits(self, conn: sqlite3.Connection, key: str | None, handed: str | None = None) -> bool:
        if self.room == 0:
            return False
        return key is None or not self.keyed or self.key_room(conn, key, handed) > 0

    def take(self, key: str | None) -> bool:
        """Count a job admitted (after :meth:`admits`); ``True`` when that fills its key."""
        if self.room is not None:
            self.room -= 1
        self.taken.append(key)
        if key is None or not self.keyed:
            return False
        state = self._keys[key]
        state[0] -= 1
        return bool(state[0] == 0)

    def spend(self, conn: sqlite3.Connection, keys: Sequence[str | None]) -> None:
        """Spend a token of each bucket for each job taken (``keys``: theirs), in one statement."""
        if not keys:
            return
        rate, key_rate, now = self.limits.rate, self.limits.key_rate, self.now
        rows = []
        if rate is not None:
            rows.append((self.queue, "", rate.spend(self.tat, now, len(keys))))
        if key_rate is not None:
            for key, n in Counter(key for key in keys if key is not None).items():
                rows.append((self.queue, key, key_rate.spend(self._keys[key][1], now, n)))
        for start in range(0, len(rows), _BUCKETS_PER_STATEMENT):
            chunk = rows[start : start + _BUCKETS_PER_STATEMENT]
            conn.execute(_set_buckets(len(chunk)), [value for row in chunk for value in row])


@functools.cache
def _set_buckets(rows: int) -> str:
    return Q["set_buckets"].replace("{rows}", ", ".join(["(?, ?, ?)"] * rows))


def admitted(
    conn: sqlite3.Connection, queue: str, head: Sequence[Any], rows: list[Any], now: float, limit: int
) -> tuple[Gate, list[tuple[int, int, str]]]:
    """The claim's candidates of a limited queue, in claim order, as many as its limits admit
    (at most ``limit``): ``head`` is the row ``claim_candidates`` put first, ``rows`` the jobs it
    found after (at most ``limit``). The gate's ``taken`` are the keys of the candidates."""
    gate = Gate(queue, load_limits(head[1]), head[2], head[3], now)
    chosen = _admitted(conn, gate, queue, rows, now, limit)
    if gate.limits.holds_slots:
        conn.execute(Q["set_slot_waited"], (queue, len(chosen) < limit))
    return gate, chosen


def _admitted(
    conn: sqlite3.Connection, gate: Gate, queue: str, rows: list[Any], now: float, limit: int
) -> list[tuple[int, int, str]]:
    want = limit if gate.room is None else min(limit, gate.room)
    chosen: list[tuple[int, int, str]] = []
    if want <= 0:
        return chosen
    full: set[str] = set()  # keys at their limit: the next scan leaves them out
    asked = limit
    while True:
        gate.look_up(conn, (row[3] for row in rows))
        for seq, priority, state, key in rows:
            if key is not None and key in full:
                continue
            # The queue's own room lasts until the claim has its ``want``: only a key's limit
            # holds a job back here, and take() answers whether it filled the job's key.
            if not gate.admits(conn, key):
                full.add(key)
                continue
            if gate.take(key):
                full.add(key)
            chosen.append((-priority, seq, state))
            if len(chosen) == want:
                return chosen
        if len(rows) < asked:
            return chosen  # the queue has no more due jobs
        last_seq, last_priority = rows[-1][0], rows[-1][1]
        asked = max(want - len(chosen), limit)
        args = {"queue": queue, "now": now, "priority": last_priority, "seq": last_seq,
                "full": dump_json(sorted(full)).decode(), "limit": asked}  # fmt: skip
        rows = conn.execute(Q["limited_candidates"], args).fetchall()


class Handing:
    """The limits of the queues an enqueue hands jobs of to waiting workers, in its transaction."""

    __slots__ = ("_first_waiting", "gates", "now")

    def __init__(self, now: float) -> None:
        self.now = now
        #: By queue: the gate of each limited queue this enqueue has handed (or tried to hand) a job of.
        self.gates: dict[str, Gate] = {}
        self._first_waiting: dict[str, int | None] = {}

    def may_try(self, conn: sqlite3.Connection, new: NewJob) -> bool:
        """Whether a job may be offered to a waiting worker (a queue not known to be limited yet
        may: its hand-off answers whether it is, and :meth:`admits` then decides)."""
        gate = self.gates.get(new.queue)
        return gate is None or self._admits(conn, gate, new, stored=False)

    def admits(self, conn: sqlite3.Connection, new: NewJob) -> bool:
        """``new`` has just been stored as handed, on a limited queue: whether its limits let it
        start (it is then counted), or it must wait (to be taken back)."""
        gate = self.gates.get(new.queue)
        if gate is None:
            limits, running, tat = conn.execute(Q["queue_gate"], (new.queue,)).fetchone()
            gate = self.gates[new.queue] = Gate(new.queue, load_limits(limits), running, tat, self.now)
            if not self._admits(conn, gate, new, stored=True):
                return False
        gate.take(new.rate_key)
        return True

    def _admits(self, conn: sqlite3.Connection, gate: Gate, new: NewJob, *, stored: bool) -> bool:
        # Not ahead of a due job held back (a claim would take that one first, or skip both).
        if new.queue not in self._first_waiting:
            row = conn.execute(Q["first_waiting"], (new.queue, self.now)).fetchone()
            self._first_waiting[new.queue] = None if row is None else row[0]
        first = self._first_waiting[new.queue]
        if first is not None and first >= new.priority:
            return False
        # Stored already (as running, to be taken back if need be), it is not to count against its key.
        return gate.admits(conn, new.rate_key, new.rate_key if stored else None)

    def spend(self, conn: sqlite3.Connection) -> None:
        for gate in self.gates.values():
            gate.spend(conn, gate.taken)


def slots_wanted(conn: sqlite3.Connection, queues: Iterable[str], now: float) -> int:
    """Of these queues with a concurrency limit, where a job has just left PROCESSING, how many
    were held back at their last claim (``slot_waited``) and have a due job waiting, which the
    free slot may admit: only then are workers woken (a worker idle for want of work, or one
    whose claims the slots never held back, would otherwise claim again after every job done). A job that
    comes later wakes them itself, and one that comes due ends their wait (``due_in``)."""
    return sum(
        conn.execute(Q["slot_waited"], (queue,)).fetchone() is not None
        and conn.execute(Q["first_waiting"], (queue, now)).fetchone() is not None
        for queue in queues
    )


def next_token(
    conn: sqlite3.Connection, queue: str, limits: QueueLimits, tat: float | None, now: float
) -> float | None:
    """When the next token of an empty bucket of ``queue`` comes (its own, or a key's), if one is empty."""
    soonest = None
    rate, key_rate = limits.rate, limits.key_rate
    if rate is not None and tat is not None and rate.available(tat, now) == 0:
        soonest = rate.next_token_at(tat)
    if key_rate is not None:
        # A bucket is empty once tat - now > (burst - 1) * interval (give or take the epsilon of
        # Rate.available, which has the last word): a seek to the first past that, not a scan.
        threshold = now + (key_rate.burst - 1) * key_rate.interval
        for (key_tat,) in conn.execute(Q["empty_key_buckets"], (queue, threshold)):
            if key_rate.available(key_tat, now) == 0:
                due = key_rate.next_token_at(key_tat)
                soonest = due if soonest is None else min(soonest, due)
                break
    return soonest


def first_due(conn: sqlite3.Connection, queues: Sequence[str], now: float) -> float | None:
    """When the earliest delayed or retried job of ``queues`` is due, or the next token of an
    empty bucket of theirs comes (``next_due`` answers both, for each queue not paused)."""
    soonest = None
    for queue in queues:
        for run_at, limits, tat in conn.execute(Q["next_due"], (queue, now)):
            due = run_at if run_at is not None else next_token(conn, queue, load_limits(limits), tat, now)
            if due is not None and (soonest is None or due < soonest):
                soonest = due
    return soonest
