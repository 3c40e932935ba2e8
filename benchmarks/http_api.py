"""HTTP API throughput: ``POST /jobs``, ``POST /jobs/batch``, and 503 latency under a flood.

Starts ``jobqueue api`` (the API alone, no workers: only acceptance is measured) on a fresh SQLite
file with the default durability (every accepted job is fsynced before its 202), and drives it
with ``wrk`` on the same machine (``apt-get install wrk``; the script refuses to guess without it,
since a Python load generator would measure itself). Three scenarios:

``single``  ``POST /jobs`` with one small job per request, 50 connections
``batch``   ``POST /jobs/batch`` with 1,000 jobs per request, 4 connections
``flood``   ``POST /jobs`` against a full queue (capacity 100, filled first), 50 connections: every
            answer is a 503; its latency percentiles are what counts

Accepted jobs per second come from the server's own count (``/metrics`` ``totals.enqueued``; each
run has a fresh server), not from the client's, and are checked against the jobs stored. The Go
original accepted 4,047 jobs/s in its own benchmark; the targets are from issue 4.

Run from the repository root::

    .venv/bin/python benchmarks/http_api.py                 # all three, 10 s each, 3 runs
    .venv/bin/python benchmarks/http_api.py --duration 5 --runs 1 --scenario single
    .venv/bin/python benchmarks/http_api.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ORIGINAL_JOBS_PER_S = 4_047
BATCH = 1_000
#: (scenario, connections, target description, check on the result).
SCENARIOS: dict[str, tuple[int, str]] = {
    "single": (50, ">= 4,000 accepted jobs/s"),
    "batch": (4, ">= 40,000 accepted jobs/s"),
    "flood": (50, "503 p99 < 50 ms"),
}


@dataclass
class Result:
    scenario: str
    connections: int
    runs: list[dict[str, float]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(run[key] for run in self.runs)

    def spread(self, key: str) -> tuple[float, float]:
        values = [run[key] for run in self.runs]
        return min(values), max(values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@contextmanager
def api_server(tmp: Path, *args: str) -> Iterator[str]:
    """``jobqueue api`` on a fresh SQLite file; yields its URL once ``/health`` answers."""
    db = tmp / f"bench-{time.monotonic_ns()}.db"
    port = free_port()
    cmd = [sys.executable, "-m", "jobqueue", "api", "--backend", f"sqlite:///{db}", "--port", str(port),
           "--log-level", "WARNING", *args]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                get_json(f"{url}/health")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the API did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)


def lua_post(tmp: Path, body: str) -> Path:
    script = tmp / f"post-{len(body)}.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{body}]==]\n'
    )
    return script


def run_wrk(url: str, script: Path, connections: int, duration: float) -> dict[str, float]:
    """wrk's figures: requests/s, latency percentiles (ms), non-2xx answers, socket errors."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    figures: dict[str, float] = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])}  # type: ignore[index]
    for pct in ("50", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]
            figures[f"p{pct}_ms"] = float(match[1]) * scale
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non_2xx"] = float(non2xx[1]) if non2xx else 0.0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    figures["socket_errors"] = float(sum(int(g) for g in errors.groups())) if errors else 0.0
    return figures


def measure_accepting(tmp: Path, scenario: str, connections: int, duration: float) -> dict[str, float]:
    if scenario == "single":
        script, path, per_request = lua_post(tmp, '{"payload": "process-order-42", "priority": 5}'), "/jobs", 1
    else:
        jobs = [{"payload": f"process-order-{n}", "priority": n % 10} for n in range(BATCH)]
        script, path, per_request = lua_post(tmp, json.dumps({"jobs": jobs})), "/jobs/batch", BATCH
    with api_server(tmp) as url:
        figures = run_wrk(url + path, script, connections, duration)
        time.sleep(0.5)  # requests in flight when wrk stopped are still answered
        metrics = get_json(f"{url}/metrics")
    total, stored = metrics["totals"]["enqueued"], metrics["queues"]["default"]["depth"]
    if stored != total:
        raise AssertionError(f"the server counted {total} accepted jobs but stores {stored}")
    figures["accepted_jobs_per_s"] = total / duration
    figures["jobs_per_request"] = per_request
    return figures


def measure_flood(tmp: Path, connections: int, duration: float) -> dict[str, float]:
    script = lua_post(tmp, '{"payload": "flood", "priority": 1}')
    with api_server(tmp, "--capacity", "100") as url:
        fill = json.dumps({"jobs": [{"payload": n} for n in range(100)]}).encode()
        request = urllib.request.Request(f"{url}/jobs/batch", fill, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10):
            pass
        figures = run_wrk(url + "/jobs", script, connections, duration)
        depth = get_json(f"{url}/metrics")["queues"]["default"]["depth"]
    if depth != 100:
        raise AssertionError(f"the full queue holds {depth} jobs, not its capacity of 100")
    return figures


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | connections | requests/s | accepted jobs/s | vs original | p50 / p99 latency | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        rps = r.median("requests_per_s")
        latency = f"{r.median('p50_ms'):.1f} / {r.median('p99_ms'):.1f} ms"
        if r.scenario == "flood":
            jobs, versus = "0 (all 503)", ""
            ok = r.median("p99_ms") < 50
        else:
            low, high = r.spread("accepted_jobs_per_s")
            jobs = f"{r.median('accepted_jobs_per_s'):,.0f} ({low:,.0f}-{high:,.0f})"
            versus = f"{r.median('accepted_jobs_per_s') / ORIGINAL_JOBS_PER_S:.1f}x"
            ok = r.median("accepted_jobs_per_s") >= (4_000 if r.scenario == "single" else 40_000)
        target = f"{SCENARIOS[r.scenario][1]}: {'met' if ok else 'MISSED'}"
        lines.append(f"| {r.scenario} | {r.connections} | {rps:,.0f} | {jobs} | {versus} | {latency} | {target} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default: all")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--tmpdir", type=Path, help="where the SQLite files go (default: the system temp dir)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed as the load generator: apt-get install wrk")
    if load_average() > 0.5:
        print(f"warning: load average {load_average():.2f}; figures on a busy machine are low", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp_name:
        tmp = Path(tmp_name)
        for scenario in args.scenario or list(SCENARIOS):
            connections = SCENARIOS[scenario][0]
            result = Result(scenario, connections)
            for n in range(args.runs):
                if scenario == "flood":
                    figures = measure_flood(tmp, connections, args.duration)
                else:
                    figures = measure_accepting(tmp, scenario, connections, args.duration)
                result.runs.append(figures)
                shown = {k: round(v, 1) for k, v in figures.items()}
                print(f"  {scenario} run {n + 1}: {shown}", file=sys.stderr)
            results.append(result)
    print(table(results))
    cpus, sqlite_version = os.cpu_count(), sqlite3.sqlite_version
    runs = f"median of {args.runs} run(s) of {args.duration:g} s"
    print(f"\nPython {platform.python_version()}, SQLite {sqlite_version}, {cpus} CPUs, wrk -t2 on the same "
          f"machine, load average {load_average():.2f} at the end; {runs}.")  # fmt: skip
    if args.json:
        data = {"results": [asdict(r) for r in results], "python": platform.python_version(), "cpus": cpus,
                "sqlite": sqlite_version, "duration": args.duration}  # fmt: skip
        args.json.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
