"""Jobs with parents (``depends_on``) on Redis: the arguments and outcomes of ``enqueue_linked``.

The work itself is in the Lua scripts (``lua/dependencies.lua``): a child is linked to its parents
by the script that stores it, and its edges are resolved by the script that finishes each parent,
so every step is atomic. A batch without parents never comes here: it goes to ``enqueue`` as
before, and the scripts that finish a job look for children only when its hash says it has some.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from jobqueue.backends.redis.codec import job_of
from jobqueue.backends.redis.wire import Arg
from jobqueue.job import Job, JobState, NewJob
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, MissingParent, Rejected

#: Most edges (parents named) one enqueue script links, so that none holds Redis for long: a
#: larger batch is sent as several scripts. One job's own edges (up to MAX_PARENTS) go in one.
LINK_CHUNK = 20_000


def heavy_parts(jobs: Sequence[NewJob]) -> list[Sequence[NewJob]] | None:
    """The batch cut into consecutive parts of at most ``LINK_CHUNK`` edges each (a job with more
    is a part alone), or ``None`` if it fits in one script."""
    if len(jobs) < 2 or sum(len(new.depends_on) for new in jobs) <= LINK_CHUNK:
        return None
    parts: list[Sequence[NewJob]] = []
    start = edges = 0
    for i, new in enumerate(jobs):
        if i > start and edges + len(new.depends_on) > LINK_CHUNK:
            parts.append(jobs[start:i])
            start, edges = i, 0
        edges += len(new.depends_on)
    parts.append(jobs[start:])
    return parts


def add_links(args: list[Arg], linked: Sequence[tuple[int, NewJob]]) -> None:
    """Append what ``lua/enqueue_linked.lua`` reads after the jobs: 3 values per job with parents
    (the index of its first argument, whether it runs if a parent fails, its parents as JSON),
    then how many there are."""
    for index, new in linked:
        args += (index, "1" if new.runs_if_parents_fail else "0", orjson.dumps(new.depends_on))
    args.append(len(linked))


def linked_outcomes(
    jobs: Sequence[NewJob], reply: Sequence[Any], capacity: Mapping[str, int] | None
) -> tuple[list[EnqueueOutcome], bool]:
    """The outcome of each job from ``enqueue_linked``'s reply, and whether any was accepted:
    1 due, 2 BLOCKED, bytes the error of a child dead-lettered at once, -k its k-th parent not
    stored, 0 rejected, a list the holder's fields."""
    now = float(reply[0])
    outcomes: list[EnqueueOutcome] = []
    accepted = False
    for new, result in zip(jobs, reply[1:], strict=True):
        if isinstance(result, list):
            outcomes.append(Duplicate(job_of(result)))
            continue
        if result == 0:
            assert capacity is not None
            outcomes.append(Rejected(new.queue, capacity[new.queue]))
            continue
        if isinstance(result, int) and result < 0:
            outcomes.append(MissingParent(new.depends_on[-result - 1]))
            continue
        due = now + new.delay if new.run_at is None else new.run_at
        job = Job(
            new.id, new.queue, new.task, orjson.loads(new.payload_json), new.priority,
            JobState.SCHEDULED if due > now else JobState.PENDING, 0, new.max_retries, new.idempotency_key,
            now, due, timeout=new.timeout, parents=tuple(new.depends_on), rate_key=new.rate_key,
        )  # fmt: skip
        if result == 2:
            job.state = JobState.BLOCKED
        elif isinstance(result, bytes):
            job.state, job.error, job.finished_at = JobState.DEAD_LETTERED, result.decode(), now
        outcomes.append(Accepted(job))
        accepted = True
    return outcomes, accepted
