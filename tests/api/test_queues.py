"""Pausing queues over HTTP and from Python: /queues, /metrics, the workers, and start_paused."""

from __future__ import annotations

import httpx

from jobqueue.app import JobQueue
from jobqueue.backends import Backend
from jobqueue.worker import Worker, WorkerConfig


async def test_a_paused_queue_shows_everywhere_and_its_jobs_wait(client: httpx.AsyncClient, queue: JobQueue) -> None:
    ran: list[str] = []

    @queue.task(name="note")
    async def note(payload: str) -> None:
        ran.append(payload)

    answer = await client.post("/queues/mail/pause")
    assert answer.status_code == 200 and answer.json()["paused"] is True and answer.json()["name"] == "mail"
    await note.enqueue("mail", queue="mail")
    await note.enqueue("default")
    listed = {q["name"]: q for q in (await client.get("/queues")).json()["queues"]}
    assert (listed["mail"]["paused"], listed["default"]["paused"], listed["mail"]["depth"]) == (True, False, 1)
    assert (await client.get("/metrics")).json()["queues"]["mail"]["paused"] is True
    prometheus = (await client.get("/metrics", params={"format": "prometheus"})).text
    assert 'jobqueue_queue_paused{queue="mail"} 1.0' in prometheus
    assert 'jobqueue_queue_paused{queue="default"} 0.0' in prometheus
    worker = Worker(queue, WorkerConfig(reaper_interval=None, queues=("default", "mail")))
    await worker.drain()
    assert ran == ["default"]
    resumed = await client.post("/queues/mail/resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    await worker.drain()
    assert ran == ["default", "mail"]


async def test_a_bad_queue_name_is_a_400(client: httpx.AsyncClient) -> None:
    answer = await client.post("/queues/no%20spaces/pause")
    assert answer.status_code == 400 and answer.json()["error"].startswith("queue: ")


async def test_queues_configured_paused_start_paused_once(backend: Backend) -> None:
    first = JobQueue(backend=backend, start_paused=["mail"])
    await first.open()
    assert await first.paused_queues() == ["mail"]
    await first.resume("mail")
    # Another process (or a restart) with the same configuration does not undo the resume.
    await JobQueue(backend=backend, start_paused=["mail"])._apply_start_paused()
    assert await first.paused_queues() == []
