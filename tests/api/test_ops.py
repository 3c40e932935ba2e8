"""``/queues``, ``/health``, ``/ready``, unknown routes and the OpenAPI document."""

from __future__ import annotations

import asyncio
import re

import httpx

from jobqueue.api import create_app
from jobqueue.app import JobQueue
from jobqueue.errors import BackendUnavailable
from jobqueue.serving import WorkerGroup, create_app_with_workers
from jobqueue.worker import Worker, WorkerConfig
from tests.api.conftest import AppFactory, client_for, submit


async def test_queues_show_depth_by_state_and_capacity(queue: JobQueue, make_app: AppFactory) -> None:
    queue.capacity = {"mail": 5}
    async with client_for(make_app()) as client:
        await submit(client, 1, queue="mail")
        await submit(client, 2, queue="mail", delay=60)
        await submit(client, 3)
        body = (await client.get("/queues")).json()
    by_name = {q["name"]: q for q in body["queues"]}
    assert by_name["mail"]["depth"] == 2 and by_name["mail"]["capacity"] == 5 and by_name["mail"]["paused"] is False
    assert by_name["mail"]["states"]["PENDING"] == 1 and by_name["mail"]["states"]["SCHEDULED"] == 1
    assert by_name["default"]["depth"] == 1 and by_name["default"]["capacity"] is None


async def test_health_is_always_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_ready_when_the_store_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready" and response.json()["workers"] == 0


async def test_not_ready_when_the_store_fails(queue: JobQueue, make_app: AppFactory) -> None:
    async def broken() -> None:
        raise BackendUnavailable("database is locked")

    async with client_for(make_app()) as client:
        queue.stats = broken  # type: ignore[method-assign,assignment]
        response = await client.get("/ready")
        health = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["error"] == "store unreachable: database is locked"
    assert health.status_code == 200


async def test_not_ready_when_a_worker_stopped(queue: JobQueue) -> None:
    worker = Worker(queue, WorkerConfig(concurrency=2))
    group = WorkerGroup([worker])
    async with client_for(create_app(queue, workers=group)) as client, group.running():
        assert (await client.get("/ready")).json()["workers"] == 2
        worker.stop()
        await asyncio.gather(*group.tasks)
        response = await client.get("/ready")
    assert response.status_code == 503 and response.json()["error"] == "1 of 1 workers stopped"


async def test_not_ready_when_workers_stall_with_jobs_pending(queue: JobQueue) -> None:
    # A worker that never claims (its queue name is right, but it is never started).
    worker = Worker(queue, WorkerConfig(concurrency=2))
    app = create_app_with_workers(queue, [worker], stall_after=0.0)
    async with client_for(app) as client:
        assert (await client.get("/ready")).status_code == 200  # nothing pending: idle is fine
        await submit(client)
        assert (await client.get("/ready")).status_code == 200  # first sight: maybe just enqueued
        response = await client.get("/ready")
    assert response.status_code == 503 and "claimed no job" in response.json()["error"]


async def test_workers_leaving_a_paused_queues_jobs_are_not_stalled(queue: JobQueue) -> None:
    worker = Worker(queue, WorkerConfig(concurrency=2))
    app = create_app_with_workers(queue, [worker], stall_after=0.0)
    async with client_for(app) as client:
        await client.post("/queues/default/pause")
        await submit(client)
        assert (await client.get("/ready")).status_code == 200
        assert (await client.get("/ready")).status_code == 200  # waiting on purpose, not stalled


async def test_unknown_route_and_wrong_method_answer_with_error(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
    wrong = await client.delete("/jobs")
    assert wrong.status_code == 405 and set(wrong.json()) == {"error"}


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert set(schema["paths"]) == {"/jobs", "/jobs/batch", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/dlq",
                                    "/dlq/{job_id}/retry", "/metrics", "/queues", "/queues/{queue}/pause",
                                    "/queues/{queue}/resume", "/health", "/ready", "/schedules",
                                    "/schedules/{name}/pause", "/schedules/{name}/resume",
                                    "/schedules/{name}/run", "/queues/{queue}/limits", "/jobs/cancel",
                                    "/dlq/replay", "/dlq/purge", "/workers", "/jobs/{job_id}/attempts"}  # fmt: skip
    submission = schema["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert submission == {"$ref": "#/components/schemas/JobSubmission"}
    assert "payload" in schema["components"]["schemas"]["JobSubmission"]["properties"]
    limits = schema["paths"]["/queues/{queue}/limits"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert "rate" in schema["components"]["schemas"][limits["$ref"].rsplit("/", 1)[1]]["properties"]
    assert "422" not in schema["paths"]["/jobs/{job_id}"]["get"]["responses"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_docs_serve_their_own_assets(client: httpx.AsyncClient) -> None:
    """/docs works offline: every script, style and icon it loads comes from this server."""
    page = (await client.get("/docs")).text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert assets and all(url.startswith("/") for url in assets), assets
    for url in assets:
        response = await client.get(url)
        assert response.status_code == 200 and response.content, url
    assert (await client.get("/redoc")).status_code == 404  # ReDoc exists only on a CDN
