"""The due-time, scheduler and fan-in benchmarks run end to end (memory, small sizes), so that they cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_due_time_benchmark_prints_its_row() -> None:
    done = subprocess.run([sys.executable, "benchmarks/due_time.py", "--quick", "--backend", "memory"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("| memory |")]
    p99 = float(row.split("|")[4])
    assert 0 <= p99 < 5_000  # a figure, not a target: speed is judged in benchmarks/, not here


def test_the_scheduler_benchmark_prints_its_row() -> None:
    done = subprocess.run([sys.executable, "benchmarks/scheduler.py", "--schedules", "20", "--backend", "memory"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("| memory |")]
    assert row.split("|")[2].strip() == "200"  # 20 schedules, once a minute, for 10 minutes


def test_the_fan_in_benchmark_prints_its_row() -> None:
    done = subprocess.run([sys.executable, "benchmarks/fan_in.py", "--quick", "--backend", "memory"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("| memory |")]
    assert 0 <= float(row.split("|")[4]) < 60_000  # released after its last parent: a figure, not a target
