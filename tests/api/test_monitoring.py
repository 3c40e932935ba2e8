"""``docs/monitoring/``: the Grafana dashboard and the Prometheus alert rules name only metrics
that ``/metrics`` exposes, and JSON logs carry the documented fields."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # ships no type hints; a test-only read
from prometheus_client.parser import text_string_to_metric_families

from jobqueue.api import create_app
from jobqueue.app import JobQueue
from jobqueue.backends.memory import MemoryBackend
from jobqueue.limits import QueueLimits
from jobqueue.logs import JsonFormatter, configure_logging
from jobqueue.status import WorkerReport
from jobqueue.worker import Worker, WorkerConfig
from tests.api.conftest import client_for

MONITORING = Path(__file__).resolve().parents[2] / "docs" / "monitoring"


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"][0]["rules"]
    return rules


async def exposed_samples() -> set[str]:
    """The sample names of /metrics for a queue with a capacity, limits, a worker and a request."""
    queue = JobQueue(backend=MemoryBackend(), capacity=10)
    await queue.open()
    await queue.set_limits("default", QueueLimits.of("10/s", 2))
    report = WorkerReport("w", "h", 1, ("default",), 4, 1, 1.0, 2.0, "0", {"completed": 3, "failed": 1}, (1,))
    await queue.backend.report_worker("w", report.to_json(), ttl=60)
    async with client_for(create_app(queue)) as client:
        await client.post("/jobs", json={"payload": 1})
        body = (await client.get("/metrics", params={"format": "prometheus"})).text
    await queue.close()
    return {sample.name for family in text_string_to_metric_families(body) for sample in family.samples}


async def test_the_dashboard_and_the_alerts_name_only_metrics_that_are_exposed() -> None:
    exposed = await exposed_samples()
    expressions = dashboard_expressions() + [rule["expr"] for rule in alert_rules()]
    referenced = {name for expr in expressions for name in re.findall(r"\bjobqueue_[a-z_]+", expr)}
    assert referenced and referenced <= exposed, sorted(referenced - exposed)


def test_the_alerts_cover_what_operators_page_on() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert {"JobqueueDeadLettersGrowing", "JobqueueNoWorkers", "JobqueueHighErrorRate"} <= set(rules)
    for rule in rules.values():
        assert rule["expr"].strip() and rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


async def test_json_logs_carry_the_job_fields() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)  # pytest's own handlers, put back after
    configure_logging("INFO", "json", stream)
    try:
        app = JobQueue(backend=MemoryBackend())

        @app.task(name="shout")
        async def shout(payload: str) -> str:
            return payload.upper()

        @app.task(name="breaks", max_retries=0)
        async def breaks(payload: str) -> None:
            raise ValueError(payload)

        await app.open()
        done, dead = await shout.enqueue("hi"), await breaks.enqueue("no")
        await Worker(app, WorkerConfig(reaper_interval=None)).drain()
        await app.close()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    events = {line["job_id"]: line for line in lines if line.get("event", "").startswith("job.")}
    completed, failed = events[done.id], events[dead.id]
    assert (completed["event"], completed["outcome"], completed["task"], completed["queue"]) == (
        "job.completed", "completed", "shout", "default")  # fmt: skip
    assert completed["attempt"] == 1 and completed["duration"] >= 0 and completed["error"] is None
    assert completed["worker_id"] and completed["level"] == "INFO" and completed["logger"] == "jobqueue.worker"
    assert completed["time"].endswith("+00:00") and completed["message"].startswith("job.completed id=")
    assert (failed["outcome"], failed["error"]) == ("dead_lettered", "ValueError: no")


def test_json_access_log_and_exceptions() -> None:
    formatter = JsonFormatter()
    access = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "POST", "/jobs", "1.1", 202), None)  # fmt: skip
    line = json.loads(formatter.format(access))
    assert (line["client"], line["method"], line["path"], line["http_version"], line["status"]) == (
        "127.0.0.1:5000", "POST", "/jobs", "1.1", 202)  # fmt: skip
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        failed = logging.LogRecord("jobqueue", logging.ERROR, "", 0, "it broke", None, sys.exc_info())
    out = json.loads(formatter.format(failed))
    assert out["message"] == "it broke" and "RuntimeError: boom" in out["exception"]
