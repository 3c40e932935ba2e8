"""The due-time benchmark runs end to end (memory, its quick size), so that it cannot rot."""

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
