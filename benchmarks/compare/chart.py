"""Draw the PNG chart of a side-by-side results file: python chart.py benchmarks/results/<date>.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PANELS = [
    ("single", "jobs_per_s", "enqueue, one job per call (jobs/s)"),
    ("batch", "jobs_per_s", "enqueue, 1,000 per call (jobs/s)"),
    ("process", "jobs_per_s", "processed from worker spawn (jobs/s)"),
    ("latency", "p99_ms", "enqueue-to-start latency p99 (ms, less is better)"),
]
JOBQUEUE, OTHER = "#1f77b4", "#b0b0b0"


def draw(report: dict[str, Any], out: Path) -> None:
    rows = [r for r in report["rows"] if not r["scaling"]]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 0.35 * len(rows) + 1.8), sharey=True)
    names = [r["name"] for r in rows]
    for ax, (step, key, title) in zip(axes, PANELS, strict=True):
        medians, lows, highs = [], [], []
        for r in rows:
            m = r["steps"].get(step, {}).get(key)
            medians.append(m["median"] if m else 0.0)
            lows.append(m["median"] - m["min"] if m else 0.0)
            highs.append(m["max"] - m["median"] if m else 0.0)
        colors = [JOBQUEUE if r["queue"] == "jobqueue" else OTHER for r in rows]
        ax.barh(names, medians, xerr=[lows, highs], color=colors, ecolor="#444444", capsize=2)
        if step == "latency":
            ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    p = report["protocol"]
    fig.suptitle(f"{report['date']}: N={p['n']:,}, median of {p['runs']} run(s), bars show min-max", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    path = Path(sys.argv[1])
    draw(json.loads(path.read_text()), path.with_suffix(".png"))
