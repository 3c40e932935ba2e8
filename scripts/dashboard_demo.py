"""A busy little app for the dashboard's screenshots (``scripts/screenshots``): a few queues, a
schedule, a limit, handlers that take a while and some that fail."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from jobqueue import JobQueue

app = JobQueue(limits={"billing": {"rate": "40/s", "concurrency": 4}})
rng = random.Random(7)


@app.task(name="emails.send", queue="emails")
async def send_email(payload: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(rng.uniform(0.005, 0.03))
    return {"sent_to": payload["to"]}


@app.task(name="reports.render", queue="reports", timeout=30)
async def render_report(payload: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(rng.uniform(0.5, 2.5))
    return {"pages": rng.randint(2, 40)}


@app.task(name="billing.charge", queue="billing", max_retries=2)
async def charge(payload: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(rng.uniform(0.01, 0.05))
    if payload["amount"] % 7 == 0:
        raise RuntimeError(f"card declined for customer {payload['customer']}")
    return {"charged": payload["amount"]}


app.schedule("hourly-digest", task="reports.render", every=3600, payload={"kind": "digest"})
app.schedule("nightly-invoices", task="billing.charge", cron="0 2 * * *", payload={"customer": "all", "amount": 1})
