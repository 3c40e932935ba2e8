"""procrastinate on PostgreSQL: ``defer_async`` one job at a time, ``batch_defer_async`` in bulk.

Mode (ANCHORS.md): PsycopgConnector (its default pool), an async task, ``procrastinate worker
--concurrency 10`` with listen/notify (the default), stock asyncio event loop. ``--log-level
warning``: at the default INFO the worker logs lines per job to stderr, which the protocol pipes
and never reads.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager

import protocol
import psycopg
from procrastinate import App, PsycopgConnector
from psycopg import sql

# Making the app does not connect; the producer and the worker open it.
app = App(connector=PsycopgConnector(conninfo=protocol.PG_DSN))


# Named explicitly: the producer runs this file as __main__, the worker imports it as bench_procrastinate
# (which is also why procrastinate warns "App is instantiated in the main Python module": harmless here).
@app.task(name="noop")
async def noop(enqueued_at: float) -> None:
    await protocol.record_started_async(enqueued_at)


async def reset() -> None:
    async with await psycopg.AsyncConnection.connect(protocol.PG_ADMIN_DSN, autocommit=True) as conn:
        name = sql.Identifier(protocol.PG_DATABASE)
        await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


class Producer:
    async def enqueue_one(self, enqueued_at: float) -> None:
        await noop.defer_async(enqueued_at=enqueued_at)

    async def enqueue_many(self, times: list[float]) -> None:
        await noop.batch_defer_async(*({"enqueued_at": t} for t in times))


@asynccontextmanager
async def producer():
    async with app.open_async():
        yield Producer()


CLI = [sys.executable, "-m", "procrastinate", "--app", "bench_procrastinate.app", "--log-level", "warning"]


def main(args) -> protocol.Adapter:
    return protocol.Adapter(
        name="procrastinate",
        mode=f"postgres, PsycopgConnector; worker --concurrency {args.concurrency} (async task, listen/notify), "
        "stock asyncio",
        versions=protocol.versions_of("procrastinate", "psycopg", "psycopg-binary", "psycopg-pool", "redis"),
        reset=reset,
        producer=producer,
        worker_command=lambda concurrency: [*CLI, "worker", "--concurrency", str(concurrency)],
        has_batch=True,
        bulk_api="Task.batch_defer_async(x1000)",
    )


if __name__ == "__main__":
    protocol.main({"main": main})
