"""The side-by-side benchmark harness runs end to end on jobqueue (tiny sizes, no venvs built)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.backends import require_redis

COMPARE = Path(__file__).resolve().parents[2] / "benchmarks" / "compare"


def env(tmp_path: Path) -> dict[str, str]:
    require_redis()  # the handlers' side channel
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(COMPARE), str(COMPARE / "adapters")]),
        BENCH_SIDE_KEY=f"jqtest-bench-{uuid.uuid4().hex[:12]}",
        BENCH_SQLITE_DIR=str(tmp_path / "sqlite"),
    )


def step(tmp_path: Path, *args: str) -> dict[str, Any]:
    adapter = COMPARE / "adapters" / "bench_jobqueue.py"
    done = subprocess.run(
        [sys.executable, str(adapter), *args], env=env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_every_step_of_the_protocol_reports_its_figures(tmp_path: Path) -> None:
    assert step(tmp_path, "--variant", "sqlite", "--step", "single", "--n", "50")["jobs_per_s"] > 0
    assert step(tmp_path, "--variant", "sqlite", "--step", "batch", "--n", "50", "--batch", "20")["n"] == 50
    processed = step(tmp_path, "--variant", "sqlite", "--step", "process", "--n", "50")
    assert processed["jobs_per_s"] > 0 and processed["steady_jobs_per_s"] > 0 and processed["first_job_s"] > 0
    latency = step(tmp_path, "--variant", "memory", "--step", "latency", "--offered", "20", "--idle", "0")
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"] < 5_000


def test_the_runner_writes_the_results_and_the_table(tmp_path: Path) -> None:
    out = tmp_path / "results"
    cmd = [sys.executable, str(COMPARE / "run.py"), "--only", "jobqueue:memory", "jobqueue:sqlite",
           "--variants", "main", "--runs", "1", "--n", "40", "--offered", "10", "--out", str(out),
           "--python", f"jobqueue={sys.executable}"]  # fmt: skip
    # Memory and SQLite only: the PostgreSQL and Redis rows reset their database, not for a test run.
    done = subprocess.run(cmd, env=env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (report_path,) = out.glob("*.json")
    report = json.loads(report_path.read_text())
    rows = {(r["name"], r["processes"]): r for r in report["rows"]}
    memory = rows[("jobqueue-memory", 1)]
    assert set(memory["steps"]) == {"single", "batch", "process", "latency"}
    assert memory["steps"]["process"]["jobs_per_s"]["median"] > 0
    assert rows[("jobqueue-sqlite x2 processes", 2)]["scaling"]
    table = report_path.with_suffix(".md").read_text()
    assert "| **jobqueue-memory** |" in table and "## jobqueue with 1, 2 and 4 worker processes" in table
    assert "## Failed steps" not in table, table
