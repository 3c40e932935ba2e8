"""The app the browser tests serve (``tests.browser.uiapp:app``)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from jobqueue import JobQueue

app = JobQueue()


@app.task(name="ui.until_file", max_retries=0)
def until_file(payload: dict[str, Any]) -> dict[str, Any]:
    """Fails until the file the payload names exists: a job that fails, then succeeds on replay."""
    path = payload["path"]
    if not os.path.exists(path):
        raise FileNotFoundError(f"no file at {path} yet")
    return {"found": path}


@app.task(name="ui.echo")
async def echo(payload: Any) -> Any:
    return payload


@app.task(name="ui.forever")
async def forever(payload: Any) -> None:
    """Runs until cancelled."""
    await asyncio.Event().wait()


@app.task(name="ui.explode", max_retries=0)
async def explode(payload: dict[str, Any]) -> None:
    raise ValueError(payload["message"])


# Paused, so it fires only when a test runs it from the page.
app.schedule("ui-digest", task="ui.echo", every=3600, payload={"digest": True}, paused=True)
