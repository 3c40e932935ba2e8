"""Backend-call throughput: the memory and SQLite backends driven directly, with no worker.

Four scenarios, each timed with ``time.perf_counter`` on a fresh backend (a fresh temporary
database file for SQLite) and repeated ``--runs`` times (median and min-max reported):

``single``      N sequential ``await backend.enqueue([job])`` calls from one coroutine
``concurrent``  50 coroutines, each enqueueing one job per call sequentially (SQLite group commit)
``batch``       N jobs enqueued in calls of 1,000
``claim``       N jobs queued (untimed), then ``claim(limit=100)`` + ``complete()`` until empty

Jobs (``NewJob``) are built before the clock starts, so the figures are the backend's cost alone;
the cost of building them is printed once for reference. SQLite runs twice: ``durability="full"``
(the default: enqueue commits are fsynced, worker updates are not) and ``durability="normal"``.

Run from the repository root::

    .venv/bin/python benchmarks/backend_ops.py                # everything, full sizes
    .venv/bin/python benchmarks/backend_ops.py --quick        # small sizes, a smoke test
    .venv/bin/python benchmarks/backend_ops.py --backend sqlite --json results.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jobqueue.backends import Backend, ClaimParams, Completion, Lease
from jobqueue.backends.memory import MemoryBackend
from jobqueue.backends.sqlite import SQLiteBackend
from jobqueue.job import JobState, NewJob

QUEUE = "default"
PRODUCERS = 50
BATCH = 1_000
CLAIM_LIMIT = 100

#: Jobs per scenario: (full, --quick).
SIZES: dict[str, tuple[int, int]] = {
    "single": (5_000, 500),
    "concurrent": (10_000, 1_000),
    "batch": (20_000, 2_000),
    "claim": (20_000, 2_000),
}

#: Targets (jobs/s) on the reference 2-core machine: (minimum, label shown in the table).
TARGETS: dict[tuple[str, str], tuple[float, str]] = {
    ("sqlite-full", "single"): (2_000.0, "~2,500"),
    ("sqlite-full", "concurrent"): (10_000.0, ">= 10,000"),
    ("sqlite-full", "batch"): (200_000.0, ">= 200,000"),
    ("sqlite-full", "claim"): (50_000.0, ">= 50,000"),
    ("memory", "batch"): (200_000.0, ">= 200,000"),
    ("memory", "claim"): (200_000.0, ">= 200,000"),
}

SCENARIO_LABELS = {
    "single": "single enqueue (1 producer)",
    "concurrent": f"single enqueue ({PRODUCERS} producers)",
    "batch": f"batch enqueue ({BATCH:,}/call)",
    "claim": f"claim {CLAIM_LIMIT} + complete",
}


def make_jobs(n: int) -> list[NewJob]:
    return [NewJob({"n": i, "kind": "bench"}) for i in range(n)]


# ---- scenarios: each returns (seconds, backend calls made) -------------------------------------


async def run_single(backend: Backend, jobs: Sequence[NewJob]) -> tuple[float, int]:
    start = time.perf_counter()
    for job in jobs:
        await backend.enqueue([job])
    return time.perf_counter() - start, len(jobs)


async def run_concurrent(backend: Backend, jobs: Sequence[NewJob]) -> tuple[float, int]:
    shares = [jobs[i::PRODUCERS] for i in range(PRODUCERS)]

    async def producer(share: Sequence[NewJob]) -> None:
        for job in share:
            await backend.enqueue([job])

    start = time.perf_counter()
    await asyncio.gather(*(producer(share) for share in shares))
    return time.perf_counter() - start, len(jobs)


async def run_batch(backend: Backend, jobs: Sequence[NewJob]) -> tuple[float, int]:
    chunks = [jobs[i : i + BATCH] for i in range(0, len(jobs), BATCH)]
    start = time.perf_counter()
    for chunk in chunks:
        await backend.enqueue(chunk)
    return time.perf_counter() - start, len(chunks)


async def run_claim(backend: Backend, jobs: Sequence[NewJob]) -> tuple[float, int]:
    for i in range(0, len(jobs), BATCH):  # untimed setup
        await backend.enqueue(jobs[i : i + BATCH])
    params = ClaimParams([QUEUE], "bench-worker", CLAIM_LIMIT)
    calls = 0
    start = time.perf_counter()
    while True:
        claimed = await backend.claim(params)
        calls += 1
        if not claimed:
            break
        await backend.complete([Completion(Lease(job.id, job.lease_token)) for job in claimed])
        calls += 1
    return time.perf_counter() - start, calls


Scenario = Callable[[Backend, Sequence[NewJob]], Awaitable[tuple[float, int]]]
SCENARIOS: dict[str, Scenario] = {
    "single": run_single,
    "concurrent": run_concurrent,
    "batch": run_batch,
    "claim": run_claim,
}
#: The state every job must be in once a scenario has run (checked after the clock stops).
EXPECTED_STATE = {
    "single": JobState.PENDING,
    "concurrent": JobState.PENDING,
    "batch": JobState.PENDING,
    "claim": JobState.COMPLETED,
}


# ---- running -----------------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    scenario: str
    jobs: int
    calls: int
    runs: list[float] = field(default_factory=list)  # jobs/s of each run

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def to_json(self) -> dict[str, Any]:
        target = TARGETS.get((self.backend, self.scenario))
        return {
            **asdict(self),
            "median_jobs_per_s": self.median,
            "min_jobs_per_s": min(self.runs),
            "max_jobs_per_s": max(self.runs),
            "median_us_per_call": 1e6 * self.jobs / self.median / self.calls,
            "target_jobs_per_s": None if target is None else target[0],
        }


def backend_factories(choice: str, tmp: Path) -> dict[str, Callable[[int], Backend]]:
    factories: dict[str, Callable[[int], Backend]] = {}
    if choice in ("memory", "all"):
        factories["memory"] = lambda run: MemoryBackend()
    if choice in ("sqlite", "all"):
        for durability in ("full", "normal"):
            factories[f"sqlite-{durability}"] = lambda run, d=durability: SQLiteBackend(
                tmp / f"{d}-{run}.db", durability=d
            )
    return factories


async def measure(factory: Callable[[int], Backend], scenario: str, n: int, run: int) -> tuple[float, int]:
    jobs = make_jobs(n)
    backend = factory(run)
    await backend.open()
    try:
        gc.collect()
        seconds, calls = await SCENARIOS[scenario](backend, jobs)
        stats = await backend.stats()
        counts = stats.queues[QUEUE].counts
        if counts[EXPECTED_STATE[scenario]] != n:
            raise AssertionError(f"{scenario}: expected {n} jobs {EXPECTED_STATE[scenario]}, got {dict(counts)}")
    finally:
        await backend.close()
    return seconds, calls


def remove_databases(tmp: Path) -> None:
    for leftover in tmp.iterdir():  # the database and its -wal and -shm files
        leftover.unlink()


async def run_all(
    choice: str, scenarios: Sequence[str], quick: bool, runs: int, tmp: Path, progress: bool
) -> list[Row]:
    rows: list[Row] = []
    for name, factory in backend_factories(choice, tmp).items():
        for scenario in scenarios:
            n = SIZES[scenario][1 if quick else 0]
            row = Row(name, scenario, n, 0)
            for run in range(runs):
                seconds, row.calls = await measure(factory, scenario, n, run)
                row.runs.append(n / seconds)
                remove_databases(tmp)  # a fresh database per run
            rows.append(row)
            if progress:
                print(f"  {name:<13} {scenario:<10} {row.median:>12,.0f} jobs/s", file=sys.stderr, flush=True)
    return rows


def construction_rate(n: int) -> float:
    start = time.perf_counter()
    make_jobs(n)
    return n / (time.perf_counter() - start)


# ---- reporting ---------------------------------------------------------------------------------


def verdict(row: Row) -> str:
    target = TARGETS.get((row.backend, row.scenario))
    if target is None:
        return ""
    minimum, label = target
    return f"{label} {'ok' if row.median >= minimum else 'MISSED'}"


def markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| backend | scenario | jobs | jobs/s (median) | min - max | µs/call | target |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        us_per_call = 1e6 * row.jobs / row.median / row.calls
        lines.append(
            f"| {row.backend} | {SCENARIO_LABELS[row.scenario]} | {row.jobs:,} | {row.median:,.0f} "
            f"| {min(row.runs):,.0f} - {max(row.runs):,.0f} | {us_per_call:,.0f} | {verdict(row)} |"
        )
    return "\n".join(lines)


def environment(tmp: Path, args: argparse.Namespace, load: float, newjob_rate: float) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1min_before": load,
        "tmpdir": str(tmp.parent),
        "newjob_per_s": newjob_rate,
        "quick": args.quick,
        "runs": args.runs,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller N (a smoke test, not a measurement)")
    parser.add_argument("--backend", choices=("memory", "sqlite", "all"), default="all")
    parser.add_argument("--scenario", choices=list(SCENARIOS), action="append", help="repeatable; default: all four")
    parser.add_argument("--runs", type=int, default=3, help="runs per row (median reported); default 3")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--tmpdir", type=Path, help="where the databases go (default: the system temp dir)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.scenario = list(dict.fromkeys(args.scenario or SCENARIOS))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average is {load:.2f}; other processes will skew the figures", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="jobqueue-bench-", dir=args.tmpdir) as name:
        tmp = Path(name)
        newjob_rate = construction_rate(10_000)
        print(f"building NewJob: {newjob_rate:,.0f} jobs/s (not included below)", file=sys.stderr)
        rows = asyncio.run(run_all(args.backend, args.scenario, args.quick, args.runs, tmp, progress=True))
        env = environment(tmp, args, load, newjob_rate)
    print(markdown(rows))
    print(
        f"\nPython {env['python']}, SQLite {env['sqlite']}, {env['cpus']} CPUs, load before {load:.2f}, "
        f"databases in {env['tmpdir']}; median of {args.runs} run(s){' (--quick)' if args.quick else ''}."
    )
    if args.json is not None:
        args.json.write_text(json.dumps({"environment": env, "rows": [r.to_json() for r in rows]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
