"""Handlers for the process-pool tests; child processes import them from here by name."""

from __future__ import annotations

import os

from jobqueue import JobQueue, PermanentError, Retry, current_job

app = JobQueue("memory://")


@app.task(name="pid", pool="process")
def pid(payload: object) -> dict[str, int]:
    return {"pid": os.getpid(), "attempt": current_job().attempt}


@app.task(name="parents", pool="process")
def parents(payload: object) -> dict[str, object]:
    job = current_job()
    return {"parents": list(job.parents), "results": job.parent_results}


@app.task(name="spin", pool="process", timeout=0.5, max_retries=0)
def spin(payload: object) -> None:
    while True:  # CPU-bound and never returns: only killing the process stops it
        pass


@app.task(name="raises", pool="process", max_retries=0)
def raises(payload: object) -> None:
    raise ValueError(f"bad payload {payload!r}")


@app.task(name="retry_me", pool="process")
def retry_me(payload: object) -> str:
    if current_job().attempt == 1:
        raise Retry(delay=30, reason="later")
    return "second time"


@app.task(name="permanent", pool="process")
def permanent(payload: object) -> None:
    raise PermanentError("never")


@app.task(name="exit", pool="process", max_retries=0)
def exit_now(payload: object) -> None:
    os._exit(3)


def plain(payload: int) -> int:
    """A plain function: runs in a process when the worker's default pool is "process"."""
    return payload * 2


app.task(name="plain")(plain)
