"""The job model: states, the transition table, job records and their validation.

Limits (each enforced by :class:`NewJob` with a :class:`~jobqueue.errors.ValidationError` that
names the field):

==================  ==========================================================================
payload             any JSON value except ``null``; not an empty string; at most
                    ``MAX_PAYLOAD_BYTES`` (1 MiB) once serialized
task, queue         1 to 128 characters of letters, digits, ``_ . : -``; not starting with
                    ``.``, ``:`` or ``-``
priority            integer from ``MIN_PRIORITY`` (-1000) to ``MAX_PRIORITY`` (1000); higher runs
                    first, FIFO within one priority
max_retries         integer from 0 to ``MAX_RETRIES_LIMIT`` (100): retries after the first attempt
idempotency_key     1 to ``MAX_KEY_LENGTH`` (255) characters
key_ttl             seconds a key stays reserved, > 0 (default 24 h)
delay / run_at      delay from 0 to ``MAX_DELAY`` (100 years) seconds, or an absolute POSIX time up
                    to ``MAX_RUN_AT`` (the end of year 9999, the last date ISO 8601 can show); not
                    both
timeout             seconds, > 0 and at most one day, or ``None`` for the task's default
depends_on          up to ``MAX_PARENTS`` (10,000) ids of stored jobs (the job's parents), or none
on_parent_failure   ``"fail"`` (default) or ``"run"``: what a parent dead-lettered or cancelled
                    does to the job (it is dead-lettered too, or it runs all the same)
rate_key            1 to 255 characters, or none: the key of the queue's per-key rate and
                    concurrency limits (a tenant, an API host; see :mod:`jobqueue.limits`)
==================  ==========================================================================
"""

from __future__ import annotations

import dataclasses
import enum
import math
import operator
import random
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from jobqueue.clock import to_datetime
from jobqueue.errors import ValidationError

MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_KEY_LENGTH = 255
MIN_PRIORITY = -1000
MAX_PRIORITY = 1000
MAX_RETRIES_LIMIT = 100
MAX_TIMEOUT = 86_400.0
MAX_RUN_AT = 253_402_300_799.0  # 9999-12-31T23:59:59Z
MAX_DELAY = 100 * 365.25 * 86_400
MAX_PARENTS = 10_000
DEFAULT_MAX_RETRIES = 3
DEFAULT_KEY_TTL = 24 * 3600.0
DEFAULT_QUEUE = "default"
DEFAULT_TASK = "default"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")


class JobState(enum.StrEnum):
    """Where a job is in its life. The values are the upper-case names the original API uses."""

    PENDING = "PENDING"
    #: Waiting for its parents (``depends_on``) to complete.
    BLOCKED = "BLOCKED"
    SCHEDULED = "SCHEDULED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    DEAD_LETTERED = "DEAD_LETTERED"
    CANCELLED = "CANCELLED"


S = JobState

#: Every allowed transition, and the operation that makes it. Backends claim a due SCHEDULED or
#: FAILED job in one step, so those direct edges to PROCESSING are listed too.
TRANSITIONS: dict[tuple[JobState, JobState], str] = {
    (S.PENDING, S.PROCESSING): "claim",
    (S.SCHEDULED, S.PENDING): "due",
    (S.SCHEDULED, S.PROCESSING): "claim",
    (S.FAILED, S.PENDING): "due",
    (S.FAILED, S.PROCESSING): "claim",
    (S.PROCESSING, S.COMPLETED): "complete",
    (S.PROCESSING, S.FAILED): "fail",
    (S.PROCESSING, S.DEAD_LETTERED): "fail",
    (S.PROCESSING, S.PENDING): "release",
    (S.DEAD_LETTERED, S.PENDING): "replay",
    (S.PENDING, S.CANCELLED): "cancel",
    (S.SCHEDULED, S.CANCELLED): "cancel",
    (S.FAILED, S.CANCELLED): "cancel",
    (S.PROCESSING, S.CANCELLED): "cancel",
    (S.BLOCKED, S.PENDING): "unblock",
    (S.BLOCKED, S.SCHEDULED): "unblock",
    (S.BLOCKED, S.DEAD_LETTERED): "parent failed",
    (S.BLOCKED, S.CANCELLED): "cancel",
}

#: States that count against a queue's capacity: the job is waiting to run.
WAITING_STATES = frozenset({S.PENDING, S.BLOCKED, S.SCHEDULED, S.FAILED})
#: States a job never leaves (except DEAD_LETTERED, which a replay can revive).
FINISHED_STATES = frozenset({S.COMPLETED, S.DEAD_LETTERED, S.CANCELLED})


def can_transition(source: JobState, target: JobState) -> bool:
    """Whether the state machine allows ``source -> target``."""
    return (source, target) in TRANSITIONS


_id_lock = threading.Lock()
_last_ms = 0
_last_seq = 0


def id_floor(at: float) -> str:
    """A string that sorts after the ids of jobs created before ``at`` (POSIX seconds) and before
    those created at or after it: a cursor for "created since", as ids are UUIDv7."""
    h = f"{max(0, int(at * 1000)):012x}"[-12:]
    return f"{h[:8]}-{h[8:12]}-0000-0000-000000000000"


def new_job_id() -> str:
    """A UUIDv7 string: sorts by creation time, strictly increasing within one process."""
    global _last_ms, _last_seq
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_seq += 1
            if _last_seq > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                ms += 1
                _last_seq = random.getrandbits(8)
        else:
            _last_seq = random.getrandbits(8)
        _last_ms = ms
        seq = _last_seq
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | random.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def dump_json(value: Any) -> bytes:
    """Serialize a JSON value; raises ``TypeError`` for anything JSON cannot hold."""
    return orjson.dumps(value)


def load_json(data: bytes | str) -> Any:
    return orjson.loads(data)


def check_name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        raise ValidationError(field_name, "must be 1-128 characters of letters, digits, '_', '.', ':' or '-'")
    return value


def _check_int(field_name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field_name, "must be an integer")
    if not low <= value <= high:
        raise ValidationError(field_name, f"must be between {low} and {high}")
    return value


def _check_seconds(field_name: str, value: object, *, allow_zero: bool, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(field_name, "must be a finite number of seconds")
    if value < 0 or (value == 0 and not allow_zero) or value > high:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValidationError(field_name, f"must be {bound}" + ("" if high == math.inf else f" and <= {high}"))
    return float(value)


def _check_key(field_name: str, key: object) -> None:
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or "\x00" in key):
        # No NUL: PostgreSQL text cannot hold one, and every backend answers alike.
        raise ValidationError(field_name, f"must be a string of 1 to {MAX_KEY_LENGTH} characters, without NUL")


def serialize_payload(payload: object) -> bytes:
    """Validate a payload and return its JSON form."""
    if payload is None:
        raise ValidationError("payload", "is required and must not be null")
    if payload == "":
        raise ValidationError("payload", "must not be an empty string")
    try:
        data = dump_json(payload)
    except TypeError as exc:
        raise ValidationError("payload", f"must be JSON-serializable ({exc})") from None
    if data == b"null":  # NaN and infinities serialize as null
        raise ValidationError("payload", "must be a JSON value other than null (NaN is not JSON)")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ValidationError("payload", f"is {len(data)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    return data


def parent_failed_error(parent_id: str, parent_state: JobState | str) -> str:
    """The error of a job dead-lettered because a parent was (``"parent job <id> was
    dead-lettered"`` or ``"... was cancelled"``), alike on every backend."""
    return f"parent job {parent_id} was {str(parent_state).lower().replace('_', '-')}"


def _check_parents(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValidationError("depends_on", "must be a list of job ids")
    if not all(isinstance(p, str) and 0 < len(p) <= MAX_KEY_LENGTH and "\x00" not in p for p in value):
        raise ValidationError("depends_on", "must hold job ids (strings of 1 to 255 characters, without NUL)")
    parents = tuple(dict.fromkeys(value))  # a parent named twice is one parent
    if len(parents) > MAX_PARENTS:
        raise ValidationError("depends_on", f"names {len(parents)} jobs; the limit is {MAX_PARENTS}")
    return parents


@dataclass(slots=True)
class NewJob:
    """A job to enqueue. Fields are validated on construction.

    ``delay`` (seconds from the store's now) and ``run_at`` (absolute POSIX time) are alternatives;
    a job due later is stored SCHEDULED, otherwise PENDING. A job with ``depends_on`` is stored
    BLOCKED until every parent has COMPLETED (see :class:`~jobqueue.backends.base.Backend`).
    """

    payload: Any
    task: str = DEFAULT_TASK
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    max_retries: int = DEFAULT_MAX_RETRIES
    idempotency_key: str | None = None
    key_ttl: float = DEFAULT_KEY_TTL
    delay: float = 0.0
    run_at: float | None = None
    timeout: float | None = None
    depends_on: Sequence[str] = ()
    on_parent_failure: str = "fail"
    rate_key: str | None = None
    id: str = field(default_factory=new_job_id)
    payload_json: bytes = b""

    def __post_init__(self) -> None:
        self.payload_json = serialize_payload(self.payload)
        check_name("task", self.task)
        check_name("queue", self.queue)
        _check_int("priority", self.priority, MIN_PRIORITY, MAX_PRIORITY)
        _check_int("max_retries", self.max_retries, 0, MAX_RETRIES_LIMIT)
        _check_key("idempotency_key", self.idempotency_key)
        _check_key("rate_key", self.rate_key)
        self.key_ttl = _check_seconds("key_ttl", self.key_ttl, allow_zero=False)
        self.delay = _check_seconds("delay", self.delay, allow_zero=True, high=MAX_DELAY)
        if self.run_at is not None:
            if self.delay:
                raise ValidationError("run_at", "give either delay or run_at, not both")
            self.run_at = _check_seconds("run_at", self.run_at, allow_zero=True, high=MAX_RUN_AT)
        if self.timeout is not None:
            self.timeout = _check_seconds("timeout", self.timeout, allow_zero=False, high=MAX_TIMEOUT)
        if self.depends_on:
            self.depends_on = _check_parents(self.depends_on)
        if self.on_parent_failure not in ("fail", "run"):
            raise ValidationError("on_parent_failure", "must be 'fail' or 'run'")

    @property
    def runs_if_parents_fail(self) -> bool:
        return self.on_parent_failure == "run"

    def due_at(self, now: float) -> float:
        """When the job becomes claimable, given the store's current time."""
        return self.run_at if self.run_at is not None else now + self.delay


@dataclass(slots=True)
class Job:
    """A stored job as a backend returns it (a snapshot; changing it changes nothing stored).

    Times are POSIX timestamps in seconds. ``retry_count`` counts failed attempts so far, so the
    attempt now running (or next to run) is ``retry_count + 1``. ``lease_token`` fences an attempt:
    it changes at every claim, and only the holder of the current token may complete, fail,
    heartbeat or release the job. ``parents`` are the ids the job was enqueued ``depends_on``, in
    order; ``parent_results`` is filled in by the worker for the handler of a job with parents:
    the result of each parent that COMPLETED, by id (stores return ``None``). ``rate_key`` is the
    key of its queue's per-key limits, as enqueued. ``cancelled`` is set by the worker, for a
    handler that checks it (``current_job().cancelled``), once the attempt is no longer its own:
    the job was cancelled or its lease was recovered; whatever the handler returns is discarded.
    """

    id: str
    queue: str
    task: str
    payload: Any
    priority: int
    state: JobState
    retry_count: int
    max_retries: int
    idempotency_key: str | None
    created_at: float
    run_at: float
    started_at: float | None = None
    finished_at: float | None = None
    last_attempt: float | None = None
    next_retry_at: float | None = None
    error: str | None = None
    result: Any = None
    timeout: float | None = None
    lease_expires_at: float | None = None
    worker_id: str | None = None
    lease_token: int = 0
    parents: tuple[str, ...] = ()
    parent_results: dict[str, Any] | None = None
    rate_key: str | None = None
    cancelled: bool = False

    def copy(self) -> Job:
        """A shallow copy (several times faster than ``copy.copy`` on a slotted dataclass)."""
        return Job(*_job_values(self))

    @property
    def attempt(self) -> int:
        """The number of the current (or next) attempt, starting at 1."""
        return self.retry_count + 1

    @property
    def retries_left(self) -> int:
        return max(0, self.max_retries - self.retry_count)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: states as upper-case strings, times as ISO 8601 UTC."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            if name in ("parent_results", "cancelled"):
                continue
            value = getattr(self, name)
            if name.endswith("_at") or name == "last_attempt":
                dt = to_datetime(value)
                value = None if dt is None else dt.isoformat()
            elif name == "state":
                value = str(value)
            out[name] = value
        return out


_job_values = operator.attrgetter(*(f.name for f in dataclasses.fields(Job)))


@dataclass(frozen=True, slots=True)
class RegisteredTask:
    """The job defaults of a task as a worker registered them in the store, so that a job
    submitted by the task's name from anywhere (HTTP, another language, a producer without the
    handler) gets the same queue, priority, retries and timeout as one enqueued by the app."""

    name: str
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: float | None = None

    def to_json(self) -> str:
        return dump_json([self.queue, self.priority, self.max_retries, self.timeout]).decode()

    @classmethod
    def from_json(cls, name: str, data: str | bytes) -> RegisteredTask:
        queue, priority, max_retries, timeout = load_json(data)
        return cls(name, queue, priority, max_retries, timeout)
