"""A job submitted by task name from anywhere gets the defaults the task declares: a worker
registers them in the store, and producers without the handler (an API started without the app,
another process) read them from there."""

from __future__ import annotations

import pytest

from jobqueue.api import create_app
from jobqueue.app import JobQueue
from jobqueue.backends import Backend
from jobqueue.worker import Worker, WorkerConfig
from tests.api.conftest import client_for


@pytest.fixture
async def registered(backend: Backend) -> JobQueue:
    """The worker's app: it has the handler, and its worker registers the task's defaults."""
    app = JobQueue(backend=backend)

    @app.task(name="resize", queue="images", priority=3, max_retries=0, timeout=1.5)
    def resize(payload: object) -> None: ...

    await Worker(app, WorkerConfig(queues=("images",), reaper_interval=None)).drain()
    return app


async def test_an_api_without_the_app_applies_the_registered_defaults(registered: JobQueue, backend: Backend) -> None:
    api_only = JobQueue(backend=backend)  # as `jobqueue api` without APP
    async with client_for(create_app(api_only)) as client:
        response = await client.post("/jobs", json={"task": "resize", "payload": {"w": 10}})
        assert response.status_code == 202 and "warning" not in response.json()
        job = (await client.get(f"/jobs/{response.json()['job_id']}")).json()
    assert (job["queue"], job["priority"], job["max_retries"], job["timeout"]) == ("images", 3, 0, 1.5)
    # What the submission says still wins over the defaults.
    async with client_for(create_app(api_only)) as client:
        response = await client.post("/jobs", json={"task": "resize", "payload": 1, "priority": 9, "queue": "bulk"})
        job = (await client.get(f"/jobs/{response.json()['job_id']}")).json()
    assert (job["queue"], job["priority"], job["timeout"]) == ("bulk", 9, 1.5)


async def test_a_producer_without_the_handler_applies_them_too(registered: JobQueue, backend: Backend) -> None:
    producer = JobQueue(backend=backend)
    job = await producer.enqueue("resize", {"w": 10})
    assert (job.queue, job.priority, job.max_retries, job.timeout) == ("images", 3, 0, 1.5)


async def test_a_task_no_worker_registered_is_accepted_with_a_warning(registered: JobQueue, backend: Backend) -> None:
    async with client_for(create_app(JobQueue(backend=backend))) as client:
        response = await client.post("/jobs", json={"task": "resise", "payload": 1})
        assert response.status_code == 202
        assert "no worker has registered task 'resise'" in response.json()["warning"]
        job = (await client.get(f"/jobs/{response.json()['job_id']}")).json()
    assert (job["state"], job["queue"]) == ("PENDING", "default")  # waiting, visibly
