"""The app the scheduler fault test runs in subprocesses: one schedule every second, catching up
each missed tick, so that any tick lost or fired twice shows in the store."""

from __future__ import annotations

from jobqueue import JobQueue

app = JobQueue()


@app.periodic(every=1, catch_up="all")
@app.task(name="tick")
async def tick(payload: object) -> object:
    return payload
