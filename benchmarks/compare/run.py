"""Measure jobqueue and the other Python queues side by side, with one protocol, in one run.

    python3 benchmarks/compare/run.py            # the full run: N=20,000, 3 runs of each row
    python3 benchmarks/compare/run.py --quick    # a smoke run: N=2,000, 1 run, main rows only
    python3 benchmarks/compare/run.py --variants all   # also the other queues' alternative modes

Each queue is installed into its own virtual environment under ``benchmarks/.venvs/`` (they pin
conflicting versions of redis and others), from ``benchmarks/compare/requirements/<queue>.txt``;
jobqueue's venv takes this checkout (editable) plus matplotlib for the chart. Then every row runs
the protocol of ``protocol.py`` (single enqueue, batch enqueue, processing, latency), one row at
a time, each step in a fresh subprocess that first wipes the queue's state (FLUSHDB, a new
PostgreSQL database and schema, a new SQLite file). Results go to
``benchmarks/results/<date>[-quick].json``, ``.md`` (the table) and ``.png`` (the chart).

This script needs only the standard library; run it with any Python 3.11+.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENVS = ROOT / "benchmarks" / ".venvs"
RESULTS = ROOT / "benchmarks" / "results"
STEPS = ("single", "batch", "process", "latency")


@dataclass(frozen=True)
class Row:
    queue: str  # the venv and adapter: benchmarks/compare/adapters/bench_<queue>.py
    variant: str = "main"
    main: bool = True  # the queue's main configuration (ANCHORS.md's); quick runs only these
    processes: int = 1  # jobqueue's scaling rows
    steps: tuple[str, ...] = STEPS

    @property
    def key(self) -> str:
        return f"{self.queue}:{self.variant}:{self.processes}"


ROWS = [
    Row("jobqueue", "memory"),
    Row("jobqueue", "sqlite"),
    Row("jobqueue", "sqlite-inproc", main=False),
    Row("jobqueue", "sqlite-full", main=False),
    Row("jobqueue", "postgres"),
    Row("jobqueue", "redis"),
    Row("celery", "main"),
    Row("celery", "threads", main=False),
    Row("rq", "main"),
    Row("rq", "simple", main=False),
    Row("dramatiq"),
    Row("huey"),
    Row("arq"),
    Row("arq", "poll0.01", main=False),
    Row("saq"),
    Row("taskiq"),
    Row("taskiq", "stream", main=False),
    Row("procrastinate"),
    Row("pgqueuer"),
    Row("pgqueuer", "default", main=False),
]
SCALING = [
    Row("jobqueue", backend, main=backend == "sqlite", processes=p, steps=("process",))
    for backend in ("sqlite", "postgres", "redis")
    for p in (1, 2, 4)
]


# ---- virtual environments ------------------------------------------------------------------------


#: Interpreters given with --python QUEUE=PATH, used instead of the queue's own venv.
GIVEN_PYTHON: dict[str, Path] = {}


def venv_python(queue: str) -> Path:
    return GIVEN_PYTHON.get(queue) or VENVS / queue / "bin" / "python"


def ensure_venv(queue: str) -> None:
    if queue in GIVEN_PYTHON:
        return
    requirements = HERE / "requirements" / f"{queue}.txt"
    wanted = requirements.read_text()
    extra: list[str] = []
    if queue == "jobqueue":
        extra = ["-e", str(ROOT)]
        wanted += (ROOT / "pyproject.toml").read_text()
    digest = hashlib.sha256(wanted.encode()).hexdigest()
    stamp = VENVS / queue / ".requirements.sha256"
    if stamp.exists() and stamp.read_text() == digest and venv_python(queue).exists():
        return
    print(f"installing {queue} into {VENVS / queue} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENVS / queue)], check=True)
    pip = [str(venv_python(queue)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements), *extra], check=True)
    stamp.write_text(digest)


# ---- running steps --------------------------------------------------------------------------------


def adapter_cmd(row: Row, *args: str) -> list[str]:
    adapter = HERE / "adapters" / f"bench_{row.queue}.py"
    return [str(venv_python(row.queue)), str(adapter), "--variant", row.variant, "--processes", str(row.processes),
            *args]  # fmt: skip


def adapter_env() -> dict[str, str]:
    paths = [str(HERE), str(HERE / "adapters")]
    # Bytecode is cached as usual: a worker that imports the adapter per job (RQ's forking one)
    # would otherwise compile it for every job.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return dict(env, PYTHONPATH=os.pathsep.join(paths))


def invoke(row: Row, step: str, size: dict[str, int], timeout: float) -> dict[str, Any]:
    args = ["--step", step, "--n", str(size["n"]), "--offered", str(size["offered"]), "--timeout", str(timeout)]
    with subprocess.Popen(
        adapter_cmd(row, *args), env=adapter_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout + 60)
        except subprocess.TimeoutExpired:
            proc.terminate()  # SIGTERM: the adapter stops its worker on the way out
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            return {"error": f"no answer within {timeout + 60:.0f} s"}
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    return dict(json.loads(lines[-1]))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if "error" not in r and "skipped" not in r]
    out: dict[str, Any] = {"runs": runs}
    if not good:
        out["skipped" if runs and "skipped" in runs[0] else "error"] = runs[0].get("skipped") or runs[0].get("error")
        return out
    for key, value in good[0].items():
        if isinstance(value, (int, float)) and key != "n":
            values = [r[key] for r in good]
            out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    out["n"] = good[0].get("n")
    return out


def measure(row: Row, runs: int, size: dict[str, int], timeout: float) -> dict[str, Any]:
    info = invoke(row, "info", size, timeout)
    per_step: dict[str, list[dict[str, Any]]] = {step: [] for step in row.steps}
    for run in range(runs):
        for step in row.steps:
            started = time.monotonic()
            # Write back what earlier steps (another queue's database, a venv install) left dirty
            # in the page cache, so that its writeback does not stall this step's disk writes.
            os.sync()
            result = invoke(row, step, size, timeout)
            per_step[step].append(result)
            shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
            print(f"  run {run + 1} {step:8} {time.monotonic() - started:5.1f} s  {shown}", flush=True)
    shape = {"queue": row.queue, "variant": row.variant, "main": row.main, "processes": row.processes}
    summaries = {step: summarize(results) for step, results in per_step.items()}
    return {**info, **shape, "scaling": row.steps == ("process",), "steps": summaries}


# ---- the report ------------------------------------------------------------------------------------


def cell(step: dict[str, Any] | None, key: str, fmt: str) -> str:
    if step is None:
        return "-"
    if key not in step:
        return "no bulk API" if step.get("skipped") else ("failed" if step.get("error") else "-")
    m = step[key]
    if m["min"] == m["max"]:
        return format(m["median"], fmt)
    return f"{m['median']:{fmt}} ({m['min']:{fmt}}-{m['max']:{fmt}})"


def markdown(report: dict[str, Any]) -> str:
    p = report["protocol"]
    lines = [
        f"# Side-by-side benchmark, {report['date']}",
        "",
        f"Machine: {report['machine']['cpus']} CPUs, Python {report['machine']['python']}, load average "
        f"{report['machine']['load_before']} at the start. N={p['n']:,} jobs; batch {p['batch']:,} per call; one "
        f"worker process at concurrency {p['concurrency']}; latency over {p['offered']:,} jobs offered at "
        f"{p['rate']:.0f} jobs/s. Each cell: median of {p['runs']} run(s) (min-max). "
        "jobs/s counted from worker spawn (start-up included); steady = first to last job.",
        "",
        "| queue (mode below) | enqueue single jobs/s | enqueue batch jobs/s | processed jobs/s | steady jobs/s "
        "| spawn to 1st job s | latency p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        if r["scaling"]:
            continue
        s = r["steps"]
        name = f"**{r['name']}**" if r["main"] else r["name"]
        n = s.get("process", {}).get("n")
        if n and n != p["n"]:
            name += f" (N={n:,})"
        lines.append(
            f"| {name} | {cell(s.get('single'), 'jobs_per_s', ',.0f')} | {cell(s.get('batch'), 'jobs_per_s', ',.0f')} "
            f"| {cell(s.get('process'), 'jobs_per_s', ',.0f')} | {cell(s.get('process'), 'steady_jobs_per_s', ',.0f')} "
            f"| {cell(s.get('process'), 'first_job_s', '.2f')} | {cell(s.get('latency'), 'p50_ms', '.2f')} "
            f"| {cell(s.get('latency'), 'p95_ms', '.2f')} | {cell(s.get('latency'), 'p99_ms', '.2f')} "
            f"| {cell(s.get('latency'), 'max_ms', '.1f')} |"
        )
    scaling = [r for r in report["rows"] if r["scaling"]]
    if scaling:
        lines += ["", "## jobqueue with 1, 2 and 4 worker processes (processing, concurrency 10 each)", "",
                  "| backend | processes | processed jobs/s | steady jobs/s |", "|---|---:|---:|---:|"]  # fmt: skip
        for r in scaling:
            s = r["steps"]["process"]
            lines.append(f"| {r['variant']} | {r['processes']} | {cell(s, 'jobs_per_s', ',.0f')} "
                         f"| {cell(s, 'steady_jobs_per_s', ',.0f')} |")  # fmt: skip
    lines += [
        "",
        "## Modes and versions",
        "",
        "| queue | mode | batch API | versions | notes |",
        "|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        if not r["scaling"]:
            versions = ", ".join(r["versions"])
            lines.append(f"| {r['name']} | {r['mode']} | {r['bulk_api']} | {versions} | {r['notes']} |")
    failures = [
        f"- {r['name']} {step}: {v.get('error')}"
        for r in report["rows"]
        for step, v in r["steps"].items()
        if "error" in v
    ]
    if failures:
        lines += ["", "## Failed steps", "", *failures]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=2,000, 200 latency jobs, 1 run, main rows only")
    parser.add_argument("--runs", type=int, help="runs of each step (default 3; quick: 1)")
    parser.add_argument(
        "--only", nargs="+", metavar="QUEUE[:VARIANT]", help="only these queues or rows (huey jobqueue:sqlite)"
    )
    parser.add_argument(
        "--variants",
        choices=["main", "all"],
        help="main: each queue's main mode; all: also the other queues' alternative modes (default: main plus "
        "jobqueue's own variants; quick: main)",
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip jobqueue's 1/2/4-process rows")
    parser.add_argument("--timeout", type=float, default=600.0, help="longest a step may take, seconds")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the json, md and png go")
    parser.add_argument("--n", type=int, help="jobs per enqueue and processing step (default 20,000; quick: 2,000)")
    parser.add_argument("--offered", type=int, help="jobs offered in the latency step (default 1,000; quick: 200)")
    parser.add_argument(
        "--python", action="append", default=[], metavar="QUEUE=PATH", help="use this interpreter, not a venv"
    )
    args = parser.parse_args()
    for given in args.python:
        queue, _, path = given.partition("=")
        GIVEN_PYTHON[queue] = Path(path)
    runs = args.runs or (1 if args.quick else 3)
    size = {"n": 2_000, "offered": 200} if args.quick else {"n": 20_000, "offered": 1_000}
    size = {"n": args.n or size["n"], "offered": args.offered or size["offered"]}

    def wanted(row: Row) -> bool:
        if args.variants == "all" or row.main:
            return True
        # By default the full run has every jobqueue row; the other queues' alternative modes
        # (none of which led a column in the runs of 2026-11-29) only with --variants all.
        return args.variants is None and not args.quick and row.queue == "jobqueue"

    rows = [r for r in ROWS if wanted(r)]
    if not args.no_scaling:
        rows += [r for r in SCALING if wanted(r)]
    if args.only:
        rows = [r for r in rows if r.queue in args.only or f"{r.queue}:{r.variant}" in args.only]
    for queue in dict.fromkeys(r.queue for r in rows):
        ensure_venv(queue)
    ensure_venv("jobqueue")  # draws the chart

    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_before": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        },
        "protocol": {**size, "batch": 1_000, "concurrency": 10, "rate": 200.0, "runs": runs, "quick": args.quick},
        "rows": [],
    }
    started = time.monotonic()
    for row in rows:
        label = f"{row.queue} {row.variant}" + (f" x{row.processes}" if row.processes > 1 else "")
        print(f"{label} ({time.monotonic() - started:.0f} s so far)", flush=True)
        report["rows"].append(measure(row, runs, size, args.timeout))
    report["elapsed_s"] = time.monotonic() - started

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / (report["date"] + ("-quick" if args.quick else ""))
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    chart = [str(venv_python("jobqueue")), str(HERE / "chart.py"), str(stem.with_suffix(".json"))]
    if subprocess.run(chart).returncode != 0:
        print("no chart: matplotlib failed (see above)", file=sys.stderr)
    print(f"wrote {stem}.json, .md and .png in {report['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
