"""How fast the dashboard answers over a big store, and what an open tab costs the server.

For each backend: a store with ``--queues`` queues and ``--jobs`` jobs (some completed, some
dead-lettered) and ten worker reports, served by ``jobqueue api`` in its own process. Then:

- the overview (``/ui/api/overview?fresh=1``, read from the store each time): request latency over
  loopback, an upper bound of the server's time. Target (issue 18): under 200 ms;
- a page of 50 jobs at the start, in the middle and at the end of the store (cursor paging), and
  one filtered by queue and state: later pages must not be slower than the first;
- an open tab: what the page asks every 2 s (the overview every tab shares, and the new chart
  points), from ``--tabs`` simulated tabs for ``--seconds``; the server process's CPU time from
  /proc, less the same time with no tab (the chart sampler alone), per tab. Target: under 2 % of
  a core per tab.

    .venv/bin/python benchmarks/dashboard.py [--backend sqlite|postgres|redis|all] [--jobs N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from jobqueue.backends import create_backend
from jobqueue.backends.params import ClaimParams, Completion, Failure, Lease
from jobqueue.job import NewJob
from jobqueue.outcomes import Accepted
from jobqueue.status import WorkerReport

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
TICKS = os.sysconf("SC_CLK_TCK")


def store_url(name: str, tmp: Path) -> str:
    if name == "sqlite":
        return f"sqlite:///{tmp / 'dashboard.db'}"
    if name == "postgres":
        return f"{POSTGRES_URL}?schema=jqdash_{uuid.uuid4().hex[:8]}"
    return f"{REDIS_URL}?prefix=jqdash-{uuid.uuid4().hex[:8]}"


async def seed(url: str, jobs: int, queues: int) -> list[str]:
    """Fill the store; the ids at every tenth of it (cursors for the paging test)."""
    backend = create_backend(url)
    await backend.open()
    marks: list[str] = []
    batch = 5000
    try:
        for start in range(0, jobs, batch):
            new = [NewJob({"n": n, "to": f"user{n}@example.com"}, queue=f"queue-{n % queues:03}", task="emails.send",
                          max_retries=0) for n in range(start, min(jobs, start + batch))]  # fmt: skip
            outcomes = await backend.enqueue(new)
            ids = [o.job.id for o in outcomes if isinstance(o, Accepted)]
            if start % max(batch, jobs // 10) == 0:
                marks.append(ids[0])
        for queue in range(queues):  # some finished jobs in every queue: each state has a count
            claimed = await backend.claim(ClaimParams([f"queue-{queue:03}"], "seeder", 60))
            await backend.complete([Completion(Lease(j.id, j.lease_token), {"ok": True}) for j in claimed[:50]])
            await backend.fail([Failure(Lease(j.id, j.lease_token), "RuntimeError: boom", None) for j in claimed[50:]])
        for n in range(10):
            now = time.time()
            report = WorkerReport(f"host-{n}:{1000 + n}:bench", f"host-{n}", 1000 + n, ("queue-000", "queue-001"),
                                  10, 3, now, now, "0.1.0", {"completed": 100, "failed": 2}, (1, 2, 3))  # fmt: skip
            await backend.report_worker(report.id, report.to_json(), ttl=3600)
    finally:
        await backend.close()
    return marks


async def drop(url: str) -> None:
    backend = create_backend(url)
    await backend.open()
    try:
        drop_store = getattr(backend, "drop", None)
        if drop_store is not None:
            await drop_store()
        elif "schema=" in url:
            conn = await __import__("asyncpg").connect(POSTGRES_URL)
            await conn.execute(f'DROP SCHEMA "{url.partition("schema=")[2]}" CASCADE')
            await conn.close()
    finally:
        await backend.close()


class Server:
    def __init__(self, url: str) -> None:
        cmd = [sys.executable, "-m", "jobqueue", "api", "--backend", url, "--port", "0", "--log-level", "WARNING"]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if match := re.search(r"on (http://\S+) ", line):
                self.url = match[1]
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return
        raise SystemExit(f"the server did not start ({self.proc.wait()})")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def latency_ms(client: httpx.Client, path: str, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, answer.text
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def tab(url: str, stop: threading.Event) -> None:
    """What one open overview tab asks every 2 s."""
    seq = 0
    with httpx.Client(base_url=url) as client:
        while not stop.is_set():
            client.get("/ui/api/overview")
            points = client.get("/ui/api/pulse", params={"after": seq}).json()["points"]
            seq = points[-1][0] if points else seq
            stop.wait(2.0)


def cpu_per_second(server: Server, tabs: int, seconds: float) -> float:
    stop = threading.Event()
    threads = [threading.Thread(target=tab, args=(server.url, stop)) for _ in range(tabs)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every tab has asked for the whole history once
    before = server.cpu_seconds()
    time.sleep(seconds)
    used = server.cpu_seconds() - before
    stop.set()
    for thread in threads:
        thread.join()
    return used / seconds


def measure(name: str, jobs: int, queues: int, tabs: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = store_url(name, Path(tmp))
        began = time.perf_counter()
        marks = asyncio.run(seed(url, jobs, queues))
        print(f"  {name}: seeded {jobs:,} jobs in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        server = Server(url)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                latency_ms(client, "/ui/api/overview?fresh=1", 3)  # warm up
                overview = latency_ms(client, "/ui/api/overview?fresh=1", 30)
                first = latency_ms(client, "/jobs?limit=50", 15)
                middle = latency_ms(client, f"/jobs?limit=50&cursor={marks[len(marks) // 2]}", 15)
                last = latency_ms(client, f"/jobs?limit=50&cursor={marks[-1]}", 15)
                filtered = latency_ms(client, f"/jobs?limit=50&queue=queue-050&state=PENDING&cursor={marks[-1]}", 15)
            idle = cpu_per_second(server, 0, seconds)
            busy = cpu_per_second(server, tabs, seconds)
        finally:
            server.stop()
            asyncio.run(drop(url))
    return {"overview p50": overview[0], "overview p95": overview[1], "page 1": first[0], "page mid": middle[0],
            "page end": last[0], "page end, queue+state": filtered[0], "idle cpu %": idle * 100,
            "per tab cpu %": max(0.0, busy - idle) / tabs * 100}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="all", choices=["sqlite", "postgres", "redis", "all"])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--queues", type=int, default=100)
    parser.add_argument("--tabs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="100,000 jobs, 10 s of tabs")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.seconds = 100_000, 10.0
    names = ["sqlite", "postgres", "redis"] if args.backend == "all" else [args.backend]
    rows = {name: measure(name, args.jobs, args.queues, args.tabs, args.seconds) for name in names}
    columns = list(next(iter(rows.values())))
    print(f"\n{args.jobs:,} jobs in {args.queues} queues; {args.tabs} tabs for {args.seconds:g} s (times in ms)\n")
    print("| backend | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.2f}" if "cpu" in c else f"{row[c]:.1f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
