"""SQLite keeps its promises across processes: what it acknowledged survives ``kill -9``, the
idempotency and capacity checks hold when several processes enqueue into one file at once, and a
periodic schedule's tick becomes one job however many processes fire it.

Each test runs producers as child processes. They talk to the parent through their standard
streams only: a child prints a line after each acknowledged enqueue (flushed at once), and waits
for a line from the parent where the test needs a barrier. Nothing here sleeps to wait for work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from jobqueue.backends import ListParams
from jobqueue.backends.sqlite import SQLiteBackend
from jobqueue.job import Job, JobState
from jobqueue.outcomes import StoredSchedule

pytestmark = pytest.mark.slow

#: Enqueues 50 jobs one by one and then 100 in one batch, printing "<id> <n>" for each accepted job
#: once ``enqueue`` has returned, then blocks with the backend still open (no clean shutdown).
PRODUCER = textwrap.dedent(
    """
    import asyncio, sys
    from jobqueue.outcomes import Accepted
    from jobqueue.backends.sqlite import SQLiteBackend
    from jobqueue.job import NewJob

    def say(line: str) -> None:
        sys.stdout.write(line + "\\n")  # one write: a kill cannot split the line
        sys.stdout.flush()

    async def main() -> None:
        backend = SQLiteBackend(sys.argv[1])
        await backend.open()
        say("OPEN")
        for n in range(50):
            (outcome,) = await backend.enqueue([NewJob(payload={"n": n}, queue="q")])
            assert type(outcome) is Accepted, outcome
            say(f"{outcome.job.id} {n}")
        batch = [NewJob(payload={"n": n}, queue="q") for n in range(50, 150)]
        outcomes = await backend.enqueue(batch)
        for n, outcome in enumerate(outcomes, start=50):
            assert type(outcome) is Accepted, outcome
            say(f"{outcome.job.id} {n}")
        say("DONE")
        sys.stdin.readline()  # block, backend still open, until killed

    asyncio.run(main())
    """
)

#: Waits for "go" on stdin, then offers jobs and prints one line per outcome:
#: "<kind> <key or -> <job id or ->", and "DONE" at the end.
#: argv: db, mode ("keys" or "capacity"), count, name (also seeds the order of the keys).
CONTENDER = textwrap.dedent(
    """
    import asyncio, random, sys
    from jobqueue.outcomes import Accepted, Duplicate, Rejected
    from jobqueue.backends.sqlite import SQLiteBackend
    from jobqueue.job import NewJob

    async def main() -> None:
        path, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
        backend = SQLiteBackend(path)
        await backend.open()
        print("OPEN", flush=True)
        sys.stdin.readline()  # the parent's "go": both processes start together
        order = list(range(count))
        random.Random(sys.argv[4]).shuffle(order)  # different orders, so that the two race on many keys
        for n in order:
            if mode == "keys":
                key = f"key-{n}"
                new = NewJob(payload={"n": n, "pid": sys.argv[4]}, queue="q", idempotency_key=key)
                (outcome,) = await backend.enqueue([new])
            else:
                key = "-"
                new = NewJob(payload={"n": n, "pid": sys.argv[4]}, queue="q")
                (outcome,) = await backend.enqueue([new], capacity={"q": 100})
            if type(outcome) is Accepted:
                print("accepted", key, outcome.job.id, flush=True)
            elif type(outcome) is Duplicate:
                print("duplicate", key, outcome.job.id, flush=True)
            else:
                assert type(outcome) is Rejected, outcome
                print("rejected", key, "-", flush=True)
        await backend.close()
        print("DONE", flush=True)

    asyncio.run(main())
    """
)

#: Registers the schedule "every-minute", waits for "go", then fires its ticks 1..count in order
#: (as a scheduler that is on time would), printing "fired <n> <job id>" or "spent <n> -" for
#: each, and "DONE". argv: db, count, name.
SCHEDULER = textwrap.dedent(
    """
    import asyncio, sys
    from jobqueue.backends.params import Tick
    from jobqueue.backends.sqlite import SQLiteBackend
    from jobqueue.job import NewJob
    from jobqueue.outcomes import Accepted, StoredSchedule

    async def main() -> None:
        path, count, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        backend = SQLiteBackend(path)
        await backend.open()
        await backend.register_schedules([StoredSchedule("every-minute", "{}")])
        print("OPEN", flush=True)
        sys.stdin.readline()
        for n in range(1, count + 1):
            tick = Tick("every-minute", 60.0 * n, NewJob(payload={"n": n, "by": name}, task="report"))
            outcome = await backend.fire(tick)
            if outcome is None:
                print("spent", n, "-", flush=True)
            else:
                assert type(outcome) is Accepted, outcome
                print("fired", n, outcome.job.id, flush=True)
        await backend.close()
        print("DONE", flush=True)

    asyncio.run(main())
    """
)


@contextmanager
def child(script: str, *args: str, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """A child Python process with piped stdin/stdout; always reaped (killed if still running)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait(timeout=30)


def read_line(stream: IO[str] | None, proc: subprocess.Popen[str]) -> str:
    assert stream is not None
    line = stream.readline()
    if not line:
        proc.wait(timeout=30)
        assert proc.stderr is not None
        raise AssertionError(f"child exited ({proc.returncode}) early: {proc.stderr.read()}")
    return line.rstrip("\n")


def read_rest(proc: subprocess.Popen[str]) -> str:
    """Everything the child writes until it exits, read through the same buffer as ``read_line``."""
    assert proc.stdout is not None
    rest = proc.stdout.read()
    proc.wait(timeout=30)
    return rest


def expect(proc: subprocess.Popen[str], wanted: str) -> None:
    line = read_line(proc.stdout, proc)
    assert line == wanted, f"expected {wanted!r} from the child, got {line!r}"


def send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


async def all_jobs(db: Path) -> dict[str, Job]:
    backend = SQLiteBackend(db)
    await backend.open()
    try:
        jobs: dict[str, Job] = {}
        cursor: str | None = None
        while True:
            page = await backend.list_jobs(ListParams(cursor=cursor, limit=500))
            jobs.update((job.id, job) for job in page.jobs)
            if page.next_cursor is None:
                return jobs
            cursor = page.next_cursor
    finally:
        await backend.close()


def assert_acknowledged_jobs_survived(acknowledged: dict[str, int], stored: dict[str, Job]) -> None:
    missing = [job_id for job_id in acknowledged if job_id not in stored]
    assert not missing, f"{len(missing)} acknowledged jobs were lost, e.g. {missing[:3]}"
    for job_id, n in acknowledged.items():
        job = stored[job_id]
        assert job.state is JobState.PENDING
        assert job.payload == {"n": n}
        assert job.queue == "q"


@pytest.mark.parametrize("kill_after", [150, 20, 75], ids=["after-all", "during-singles", "around-the-batch"])
def test_acknowledged_jobs_survive_kill_9(tmp_path: Path, kill_after: int) -> None:
    """Every id the producer printed (so: every enqueue that returned) is in the file after SIGKILL.

    ``after-all`` kills once all 150 are acknowledged, with the backend still open and the WAL
    not checkpointed; the others kill the producer while it is still writing.
    """
    db = tmp_path / "jobs.db"
    acknowledged: dict[str, int] = {}
    with child(PRODUCER, str(db), cwd=tmp_path) as proc:
        expect(proc, "OPEN")
        while len(acknowledged) < kill_after:
            job_id, n = read_line(proc.stdout, proc).split()
            acknowledged[job_id] = int(n)
        if kill_after == 150:
            expect(proc, "DONE")
        os.kill(proc.pid, signal.SIGKILL)
        # Lines already written before the kill are acknowledgements too.
        rest = read_rest(proc)
        assert proc.returncode == -signal.SIGKILL
    complete_lines = rest.split("\n")[:-1]  # a line cut short by the kill acknowledges nothing
    for line in complete_lines:
        if line != "DONE":
            job_id, n = line.split()
            acknowledged[job_id] = int(n)

    stored = asyncio.run(all_jobs(db))
    assert len(acknowledged) >= kill_after
    assert_acknowledged_jobs_survived(acknowledged, stored)
    assert len(stored) <= 150
    assert all(job.state is JobState.PENDING for job in stored.values())
    if kill_after == 150:
        assert len(stored) == 150


def run_contenders(db: Path, mode: str, count: int, cwd: Path) -> list[list[tuple[str, str, str]]]:
    """Two contenders released together by one "go"; returns each one's outcome lines.

    Both open the same new file at once, so this also covers creating a database concurrently.
    """
    with (
        child(CONTENDER, str(db), mode, str(count), "a", cwd=cwd) as a,
        child(CONTENDER, str(db), mode, str(count), "b", cwd=cwd) as b,
    ):
        expect(a, "OPEN")
        expect(b, "OPEN")
        send(a, "go")
        send(b, "go")
        results: list[list[tuple[str, str, str]]] = []
        for proc in (a, b):
            out = read_rest(proc)
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
            lines = out.splitlines()
            assert lines[-1] == "DONE", out[-500:]
            outcomes = [line.split() for line in lines[:-1]]
            assert all(len(parts) == 3 for parts in outcomes)
            results.append([(kind, key, job_id) for kind, key, job_id in outcomes])
    return results


def test_concurrent_processes_create_one_job_per_idempotency_key(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    count = 100
    results = run_contenders(db, "keys", count, tmp_path)

    owner: dict[str, str] = {}
    for outcomes in results:
        assert len(outcomes) == count
        for kind, key, job_id in outcomes:
            if kind == "accepted":
                assert key not in owner, f"{key} was accepted twice"
                owner[key] = job_id
    assert sorted(owner) == sorted(f"key-{n}" for n in range(count)), "every key must be accepted exactly once"
    for outcomes in results:
        for kind, key, job_id in outcomes:
            assert kind in ("accepted", "duplicate")
            assert job_id == owner[key], f"{key}: a duplicate must name the job that holds the key"

    stored = asyncio.run(all_jobs(db))
    assert sorted(stored) == sorted(owner.values())
    assert sorted(job.idempotency_key or "" for job in stored.values()) == sorted(owner)


def test_concurrent_processes_respect_capacity(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    results = run_contenders(db, "capacity", 150, tmp_path)

    accepted = [job_id for outcomes in results for kind, _, job_id in outcomes if kind == "accepted"]
    rejected = sum(1 for outcomes in results for kind, _, _ in outcomes if kind == "rejected")
    assert len(accepted) == 100, f"capacity 100, but {len(accepted)} were accepted"
    assert len(set(accepted)) == 100
    assert rejected == 200
    stored = asyncio.run(all_jobs(db))
    assert sorted(stored) == sorted(accepted)


def test_concurrent_processes_fire_each_tick_of_a_schedule_once(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    count, names = 50, ["a", "b", "c", "d"]
    with contextlib.ExitStack() as stack:
        procs = [stack.enter_context(child(SCHEDULER, str(db), str(count), name, cwd=tmp_path)) for name in names]
        for proc in procs:
            expect(proc, "OPEN")
        for proc in procs:
            send(proc, "go")
        fired: dict[int, list[tuple[str, str]]] = {}
        for name, proc in zip(names, procs, strict=True):
            out = read_rest(proc)
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
            lines = out.splitlines()
            assert lines[-1] == "DONE", out[-500:]
            assert len(lines) == count + 1
            for kind, n, job_id in (line.split() for line in lines[:-1]):
                if kind == "fired":
                    fired.setdefault(int(n), []).append((name, job_id))

    assert {n: len(by) for n, by in fired.items()} == dict.fromkeys(range(1, count + 1), 1), "one job per tick"
    stored = asyncio.run(all_jobs(db))
    assert len(stored) == count
    for tick_number, [(name, job_id)] in fired.items():
        assert stored[job_id].payload == {"n": tick_number, "by": name}
    (schedule,) = asyncio.run(stored_schedules(db))
    assert (schedule.last_tick, schedule.last_job_id) == (60.0 * count, fired[count][0][1])


async def stored_schedules(db: Path) -> list[StoredSchedule]:
    async with SQLiteBackend(db) as backend:
        return await backend.schedules()
