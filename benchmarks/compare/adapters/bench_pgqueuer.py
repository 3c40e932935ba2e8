"""PgQueuer on PostgreSQL (asyncpg): ``Queries.enqueue`` one job at a time, or with lists in bulk.

Mode (ANCHORS.md): the worker is ``pgqueuer.run`` (what ``pgq run`` calls) on uvloop, with a factory
holding one asyncpg connection. "main" caps it at the protocol's concurrency: batch_size=5,
max_concurrent_tasks=10 (PgQueuer wants a cap of at least twice the batch size); "default" is
PgQueuer's defaults, batch_size=10 and no cap (so it ignores ``--concurrency``). The job's payload
is its enqueue time as text.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager

import asyncpg
import protocol
from pgqueuer import AsyncpgDriver, Job, PgQueuer, Queries


@asynccontextmanager
async def create_pgqueuer():
    """The worker's factory, for ``pgqueuer.run("bench_pgqueuer:create_pgqueuer")``."""
    conn = await asyncpg.connect(protocol.PG_DSN)
    try:
        pgq = PgQueuer(AsyncpgDriver(conn))

        @pgq.entrypoint("noop")
        async def noop(job: Job) -> None:
            await protocol.record_started_async(float(job.payload))

        yield pgq
    finally:
        await conn.close()


async def reset() -> None:
    admin = await asyncpg.connect(protocol.PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{protocol.PG_DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{protocol.PG_DATABASE}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(protocol.PG_DSN)
    try:
        await Queries(AsyncpgDriver(conn)).install()
    finally:
        await conn.close()


class Producer:
    def __init__(self, queries: Queries) -> None:
        self.queries = queries

    async def enqueue_one(self, enqueued_at: float) -> None:
        await self.queries.enqueue("noop", repr(enqueued_at).encode())

    async def enqueue_many(self, times: list[float]) -> None:
        await self.queries.enqueue(["noop"] * len(times), [repr(t).encode() for t in times], [0] * len(times))


@asynccontextmanager
async def producer():
    conn = await asyncpg.connect(protocol.PG_DSN)
    try:
        yield Producer(Queries(AsyncpgDriver(conn)))
    finally:
        await conn.close()


# What ``pgq run`` does, minus its CLI: pgqueuer 1.6.0's ``--log-level`` option breaks under the current
# typer (0.29: "'str' object has no attribute 'name'"), and the CLI would also log to the worker's stderr.
WORKER = (
    "import sys, uvloop, pgqueuer; batch, cap = sys.argv[1:]; "
    "uvloop.run(pgqueuer.run('bench_pgqueuer:create_pgqueuer', batch_size=int(batch), "
    "max_concurrent_tasks=None if cap == 'None' else int(cap)))"
)


def run_options(concurrency: int | None) -> dict[str, int | None]:
    """``pgqueuer.run``'s batch_size and max_concurrent_tasks: capped at a concurrency, or (None) the defaults."""
    if concurrency is None:
        return {"batch_size": 10, "max_concurrent_tasks": None}
    return {"batch_size": max(1, concurrency // 2), "max_concurrent_tasks": concurrency}


def adapter(name: str, capped: bool, args) -> protocol.Adapter:
    def worker_command(concurrency: int) -> list[str]:
        options = run_options(concurrency if capped else None)
        return [sys.executable, "-c", WORKER, *(str(v) for v in options.values())]

    options = ", ".join(f"{k}={v}" for k, v in run_options(args.concurrency if capped else None).items())
    return protocol.Adapter(
        name=name,
        mode=f"postgres, asyncpg; pgqueuer.run({options}), uvloop",
        versions=protocol.versions_of("pgqueuer", "asyncpg", "uvloop", "redis"),
        reset=reset,
        producer=producer,
        worker_command=worker_command,
        has_batch=True,
        bulk_api="Queries.enqueue(list x1000)",
        use_uvloop=True,
    )


if __name__ == "__main__":
    protocol.main(
        {
            "main": lambda args: adapter("pgqueuer", True, args),
            "default": lambda args: adapter("pgqueuer-default", False, args),
        }
    )
