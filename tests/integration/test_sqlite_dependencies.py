"""SQLite's ``depends_on`` across processes: children enqueued by one process while another
completes their parents (and is killed midway) are never left BLOCKED behind a finished parent."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from pathlib import Path

import pytest

from jobqueue.backends import ClaimParams
from jobqueue.backends.sqlite import SQLiteBackend
from jobqueue.job import JobState, NewJob
from jobqueue.outcomes import Accepted
from tests.integration.test_sqlite_durability import all_jobs, child, expect, read_rest, send

pytestmark = pytest.mark.slow

#: argv: db, file of "<id> <token>" lines. Completes those leases one by one after "go",
#: printing each id once completed.
COMPLETER = textwrap.dedent(
    """
    import asyncio, sys
    from jobqueue.backends import Completion, Lease
    from jobqueue.backends.sqlite import SQLiteBackend

    async def main() -> None:
        leases = [line.split() for line in open(sys.argv[2]).read().splitlines()]
        async with SQLiteBackend(sys.argv[1]) as backend:
            print("OPEN", flush=True)
            sys.stdin.readline()
            for job_id, token in leases:
                assert await backend.complete([Completion(Lease(job_id, int(token)), None)]) == [True]
                print(job_id, flush=True)
            print("DONE", flush=True)

    asyncio.run(main())
    """
)

#: argv: db, file of parent ids. After "go", enqueues one child per parent, printing
#: "<child id> <parent id>".
ENQUEUER = textwrap.dedent(
    """
    import asyncio, sys
    from jobqueue.backends.sqlite import SQLiteBackend
    from jobqueue.job import NewJob
    from jobqueue.outcomes import Accepted

    async def main() -> None:
        parents = open(sys.argv[2]).read().split()
        async with SQLiteBackend(sys.argv[1]) as backend:
            print("OPEN", flush=True)
            sys.stdin.readline()
            for parent in parents:
                (outcome,) = await backend.enqueue([NewJob("c", queue="children", depends_on=[parent])])
                assert type(outcome) is Accepted, outcome
                print(outcome.job.id, parent, flush=True)
            print("DONE", flush=True)

    asyncio.run(main())
    """
)


async def leased_parents(db: Path, count: int) -> list[tuple[str, int]]:
    async with SQLiteBackend(db) as backend:
        outcomes = await backend.enqueue([NewJob(n) for n in range(count)])
        assert all(type(o) is Accepted for o in outcomes)
        jobs = await backend.claim(ClaimParams(["default"], "w", count, 300.0))
        return [(job.id, job.lease_token) for job in jobs]


@pytest.mark.parametrize("kill_completer", [False, True], ids=["all-complete", "completer-killed"])
def test_children_enqueued_while_another_process_completes_their_parents_are_released(
    tmp_path: Path, kill_completer: bool
) -> None:
    db, count = tmp_path / "jobs.db", 300
    leases = asyncio.run(leased_parents(db, count))
    (tmp_path / "leases").write_text("".join(f"{job_id} {token}\n" for job_id, token in leases))
    (tmp_path / "parents").write_text("".join(f"{job_id}\n" for job_id, _ in leases))
    with contextlib.ExitStack() as stack:
        completer = stack.enter_context(child(COMPLETER, str(db), str(tmp_path / "leases"), cwd=tmp_path))
        enqueuer = stack.enter_context(child(ENQUEUER, str(db), str(tmp_path / "parents"), cwd=tmp_path))
        for proc in (completer, enqueuer):
            expect(proc, "OPEN")
        for proc in (completer, enqueuer):
            send(proc, "go")
        if kill_completer:
            for _ in range(count // 3):
                assert completer.stdout is not None and completer.stdout.readline()
            completer.kill()
        else:
            assert read_rest(completer).splitlines()[-1] == "DONE"
        lines = read_rest(enqueuer).splitlines()
        assert lines[-1] == "DONE", lines[-3:]
    parent_of = dict(line.split() for line in lines[:-1])
    jobs = asyncio.run(all_jobs(db))
    children = [job for job in jobs.values() if job.queue == "children"]
    assert len(children) == count
    completed = {job.id for job in jobs.values() if job.state is JobState.COMPLETED}
    if not kill_completer:
        assert len(completed) == count
    for job in children:
        assert job.parents == (parent_of[job.id],)
        expected = JobState.PENDING if parent_of[job.id] in completed else JobState.BLOCKED
        assert job.state is expected, (job.id, job.state)
