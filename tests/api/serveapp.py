"""The app the ``jobqueue serve`` subprocess tests run (``tests.api.serveapp:app``)."""

from __future__ import annotations

from jobqueue import JobQueue, PermanentError

app = JobQueue()


@app.default_handler
async def echo(payload: object) -> object:
    return payload


@app.task(name="fail", max_retries=0)
async def fail(payload: object) -> None:
    raise PermanentError(f"refused {payload}")
