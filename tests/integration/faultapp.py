"""The app the worker fault tests run in subprocesses (``jobqueue worker tests.integration.faultapp:app``).

Every attempt appends ``<task> <job id> <attempt> <pid>`` to the ledger file named by
``JOBQUEUE_TEST_LEDGER`` (O_APPEND writes of one short line are atomic), so the test can count
attempts across processes. ``JOBQUEUE_TEST_PHASE=2`` makes blocking handlers return at once, for
the second worker that takes over.
"""

from __future__ import annotations

import asyncio
import os

from jobqueue import JobQueue
from jobqueue.task import current_job

app = JobQueue()


def _record(task: str) -> None:
    job = current_job()
    line = f"{task} {job.id} {job.attempt} {os.getpid()}\n".encode()
    fd = os.open(os.environ["JOBQUEUE_TEST_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _second_phase() -> bool:
    return os.environ.get("JOBQUEUE_TEST_PHASE") == "2"


@app.task(name="block")
async def block(payload: object) -> int:
    """Holds its lease until cancelled, except in phase 2."""
    _record("block")
    if not _second_phase():
        await asyncio.Event().wait()
    return os.getpid()


@app.task(name="sleep")
async def sleep(seconds: float) -> int:
    _record("sleep")
    if not _second_phase():
        await asyncio.sleep(seconds)
    return os.getpid()


@app.task(name="crash", max_retries=2)
def crash(payload: object) -> None:
    _record("crash")
    os._exit(1)


@app.task(name="record")
async def record(payload: object) -> int:
    _record("record")
    return os.getpid()


@app.task(name="stuck")
def stuck(seconds: float) -> int:
    """A thread handler that cannot be stopped: it sleeps on, past any grace (except in phase 2)."""
    import time

    _record("stuck")
    if not _second_phase():
        time.sleep(seconds)
    return os.getpid()


@app.task(name="mark")
async def mark(payload: object) -> list[int]:
    """Returns who completed it: [pid, attempt], for the history checker (tests/faults/history.py)."""
    _record("mark")
    return [os.getpid(), current_job().attempt]


@app.task(name="after")
async def after(payload: object) -> dict[str, object]:
    """A child: answers what it saw of its parents' results."""
    _record("after")
    return current_job().parent_results or {}


def _stamp(task: str, *fields: object) -> None:
    """A ledger line with times: ``<task> <job id> <attempt> <pid> <fields...>``."""
    job = current_job()
    line = " ".join(str(f) for f in (task, job.id, job.attempt, os.getpid(), *fields)) + "\n"
    fd = os.open(os.environ["JOBQUEUE_TEST_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@app.task(name="timed")
async def timed(seconds: float) -> None:
    """Records when it started and ended (``timed <id> <attempt> <pid> <start> <end> <rate key>``)."""
    import time

    started = time.time()
    await asyncio.sleep(seconds)
    _stamp("timed", started, time.time(), current_job().rate_key or "-")


@app.task(name="held", max_retries=5)
async def held(payload: object) -> None:
    """Runs until cancelled, and records that it was (``held-stopped``)."""
    import time

    _stamp("held", time.time())
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        _stamp("held-stopped", time.time())
        raise


@app.task(name="polite", max_retries=5)
def polite(payload: object) -> str:
    """A thread handler that checks ``current_job().cancelled`` and stops when it is set."""
    import time

    _stamp("polite", time.time())
    while not current_job().cancelled:
        time.sleep(0.01)
    _stamp("polite-stopped", time.time())
    return "a result nobody keeps"


@app.task(name="forever", pool="process", max_retries=5)
def forever(payload: object) -> None:
    """A process-pool handler that never returns: only killing its child stops it."""
    import time

    _stamp("forever", time.time())
    while True:
        time.sleep(0.01)
