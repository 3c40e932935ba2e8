"""The app ``benchmarks/worker.py`` runs in a ``jobqueue worker`` process: one no-op task."""

from __future__ import annotations

from jobqueue import JobQueue

app = JobQueue()  # the URL comes from JOBQUEUE_URL


@app.task(name="noop")
async def noop(payload: object) -> None:
    return None
