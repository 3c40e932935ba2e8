"""``GET /metrics``: the original's JSON by default, Prometheus text when asked."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobqueue.api import create_app
from jobqueue.app import JobQueue
from jobqueue.errors import PermanentError
from jobqueue.serving import create_app_with_workers
from jobqueue.worker import Worker, WorkerConfig
from tests.api.conftest import AppFactory, client_for, submit


async def test_json_keeps_the_originals_keys(queue: JobQueue, make_app: AppFactory) -> None:
    queue.capacity = 2
    async with client_for(make_app()) as client:
        await submit(client, 1, idempotency_key="a")
        await submit(client, 2)
        assert (await client.post("/jobs", json={"payload": 3})).status_code == 503
        assert (await client.post("/jobs", json={"payload": 4, "idempotency_key": "a"})).status_code == 409
        response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["queue"] == {"current_size": 2, "max_size": 2, "total_enqueued": 2, "total_dequeued": 0,
                             "total_rejected": 1}  # fmt: skip
    assert body["dlq_size"] == 0 and body["idempotency_keys"] == 1
    assert body["queues"]["default"]["depth"] == 2 and body["queues"]["default"]["capacity"] == 2
    assert body["queues"]["default"]["states"]["PENDING"] == 2
    totals = body["totals"]
    assert (totals["enqueued"], totals["rejected"], totals["duplicates"], totals["started"]) == (2, 1, 1, 0)
    assert body["workers"] == 0


async def test_worker_counters_and_histograms_reach_prometheus(queue: JobQueue) -> None:
    def handler(payload: int) -> int:
        if payload % 3 == 0:
            raise PermanentError("multiple of three")
        return payload

    queue.default_handler(handler)
    worker = Worker(queue, WorkerConfig(concurrency=4))
    async with client_for(create_app_with_workers(queue, [worker])) as client:
        for n in range(1, 7):
            await submit(client, n)
        await worker.drain()
        json_body = (await client.get("/metrics")).json()
        text = (await client.get("/metrics", params={"format": "prometheus"})).text
    assert json_body["totals"]["started"] == 6 and json_body["totals"]["completed"] == 4
    assert json_body["totals"]["dead_lettered"] == 2 and json_body["dlq_size"] == 2 and json_body["workers"] == 4
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("jobqueue_jobs_completed_total", ())] == 4
    assert samples[("jobqueue_jobs_started_total", ())] == 6
    assert samples[("jobqueue_jobs_enqueued_total", ())] == 6
    assert samples[("jobqueue_dlq_size", ())] == 2
    assert samples[("jobqueue_queue_depth", (("queue", "default"),))] == 0
    assert samples[("jobqueue_jobs", (("queue", "default"), ("state", "COMPLETED")))] == 4
    assert samples[("jobqueue_job_duration_seconds_count", ())] == 6
    assert samples[("jobqueue_job_duration_seconds_bucket", (("le", "+Inf"),))] == 6
    assert samples[("jobqueue_job_start_latency_seconds_count", ())] == 6
    posts = ("jobqueue_http_request_duration_seconds_count", (("method", "POST"), ("route", "/jobs")))
    assert samples[posts] == 6


@pytest.mark.parametrize(
    ("accept", "params", "content_type"),
    [
        ("text/plain", {}, "text/plain; version=0.0.4"),
        ("application/openmetrics-text; version=1.0.0", {}, "application/openmetrics-text"),
        ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", {},
         "application/openmetrics-text"),
        ("*/*", {"format": "prometheus"}, "text/plain; version=0.0.4"),
        ("*/*", {}, "application/json"),
        ("text/html,application/xhtml+xml,*/*;q=0.8", {}, "application/json"),
        ("text/plain", {"format": "json"}, "application/json"),
    ],
)  # fmt: skip
async def test_format_follows_accept_or_the_query(
    client: httpx.AsyncClient, accept: str, params: dict[str, str], content_type: str
) -> None:
    response = await client.get("/metrics", params=params, headers={"accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    if content_type.startswith("application/openmetrics"):
        assert response.text.rstrip().endswith("# EOF")


async def test_each_app_has_its_own_registry(queue: JobQueue) -> None:
    first, second = create_app(queue), create_app(queue)
    async with client_for(first) as a, client_for(second) as b:
        await submit(a, 1)
        text_a = (await a.get("/metrics", params={"format": "prometheus"})).text
        text_b = (await b.get("/metrics", params={"format": "prometheus"})).text
    assert "jobqueue_jobs_enqueued_total 1.0" in text_a
    assert "jobqueue_jobs_enqueued_total 0.0" in text_b


async def test_bad_format_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics", params={"format": "xml"})
    assert response.status_code == 400 and response.json()["error"].startswith("format: ")
