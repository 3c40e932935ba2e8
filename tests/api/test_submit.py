"""``POST /jobs``: the original's contract, field by field, and what we add to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jobqueue.app import JobQueue
from jobqueue.job import MAX_KEY_LENGTH, JobState
from tests.api.conftest import AppFactory, client_for, submit


async def test_accepted_job_gets_202_its_id_and_a_location(client: httpx.AsyncClient, queue: JobQueue) -> None:
    # Exactly what a client of the original sends.
    body = {"payload": "process-order-42", "idempotency_key": "order-42", "priority": 5, "max_retries": 3}
    response = await client.post("/jobs", json=body)
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer == {"job_id": answer["job_id"], "status": "accepted"}
    assert response.headers["location"] == f"/jobs/{answer['job_id']}"
    job = await queue.get(answer["job_id"])
    assert job is not None and job.payload == "process-order-42" and job.priority == 5 and job.max_retries == 3
    assert job.idempotency_key == "order-42" and job.state is JobState.PENDING


async def test_our_own_fields_are_accepted(client: httpx.AsyncClient, queue: JobQueue) -> None:
    job_id = await submit(client, {"order": 42}, task="mail.send", queue="mail", delay=60, timeout=5.5)
    job = await queue.get(job_id)
    assert job is not None
    assert (job.task, job.queue, job.state, job.timeout) == ("mail.send", "mail", JobState.SCHEDULED, 5.5)
    at = await queue.get(await submit(client, [1, 2], run_at=4_000_000_000))
    assert at is not None and at.state is JobState.SCHEDULED and at.run_at == 4_000_000_000


async def test_null_optional_fields_and_an_empty_key_mean_absent(client: httpx.AsyncClient, queue: JobQueue) -> None:
    # A Go client without omitempty sends "" for "no key"; the original treats it so.
    body = {"payload": "x", "idempotency_key": "", "priority": None, "task": None, "queue": None}
    first = await client.post("/jobs", json=body)
    second = await client.post("/jobs", json=body)
    assert first.status_code == second.status_code == 202
    job = await queue.get(first.json()["job_id"])
    assert job is not None and job.idempotency_key is None and job.priority == 0 and job.queue == "default"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "payload"),
        ({"payload": None}, "payload"),
        ({"payload": ""}, "payload"),
        ({"priority": 1}, "payload"),
        ({"payload": "x", "priority": "high"}, "priority"),
        ({"payload": "x", "priority": 1001}, "priority"),
        ({"payload": "x", "priority": 1.5}, "priority"),
        ({"payload": "x", "priority": True}, "priority"),
        ({"payload": "x", "max_retries": -1}, "max_retries"),
        ({"payload": "x", "max_retries": 101}, "max_retries"),
        ({"payload": "x", "idempotency_key": 42}, "idempotency_key"),
        ({"payload": "x", "idempotency_key": "k" * (MAX_KEY_LENGTH + 1)}, "idempotency_key"),
        ({"payload": "x", "queue": "no spaces"}, "queue"),
        ({"payload": "x", "queue": 7}, "queue"),
        ({"payload": "x", "task": ["a"]}, "task"),
        ({"payload": "x", "delay": -1}, "delay"),
        ({"payload": "x", "delay": "soon"}, "delay"),
        ({"payload": "x", "delay": 1, "run_at": 2}, "run_at"),
        ({"payload": "x", "run_at": 1e20}, "run_at"),  # found by the fuzz test: could not be read back
        ({"payload": "x", "delay": 1e20}, "delay"),
        ({"payload": "x", "timeout": 0}, "timeout"),
        ({"payload": "x", "priorty": 5}, "priorty"),
        ({"payload": "x" * (1 << 20)}, "payload"),
    ],
)
async def test_invalid_field_is_400_naming_it(make_app: AppFactory, body: dict[str, Any], field: str) -> None:
    async with client_for(make_app(max_body_bytes=2 << 20)) as client:
        response = await client.post("/jobs", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(f"{field}: "), response.json()
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'"payload"', b"null", b"\xff\xfe"])
async def test_body_that_is_not_a_json_object_is_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post("/jobs", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("body: ")


async def test_duplicate_key_is_409_with_the_original_job(client: httpx.AsyncClient, queue: JobQueue) -> None:
    job_id = await submit(client, "first", idempotency_key="order-7")
    response = await client.post("/jobs", json={"payload": "second", "idempotency_key": "order-7"})
    assert response.status_code == 409
    assert response.json() == {"error": "duplicate idempotency key", "job_id": job_id, "state": "PENDING",
                               "result": None}  # fmt: skip
    page = await queue.list_jobs()
    assert [j.id for j in page.jobs] == [job_id]


async def test_full_queue_is_503_with_retry_after(queue: JobQueue, make_app: AppFactory) -> None:
    queue.capacity = 2
    async with client_for(make_app(retry_after=7)) as client:
        await submit(client, 1)
        await submit(client, 2)
        response = await client.post("/jobs", json={"payload": 3})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        assert "full" in response.json()["error"]
        # Within the shed window a second refusal is answered without the store, in the same shape.
        again = await client.post("/jobs", json={"payload": 4})
        assert again.status_code == 503 and again.headers["retry-after"] == "7" and "full" in again.json()["error"]
        # A keyed job still reaches the store: its key may be held (409), which says more than 503.
        keyed = await client.post("/jobs", json={"payload": 5, "idempotency_key": "k"})
        assert keyed.status_code == 503
    assert (await queue.stats()).queues["default"].waiting == 2


async def test_full_queue_refuses_other_queues_independently(queue: JobQueue, make_app: AppFactory) -> None:
    queue.capacity = {"small": 1}
    async with client_for(make_app()) as client:
        await submit(client, 1, queue="small")
        assert (await client.post("/jobs", json={"payload": 2, "queue": "small"})).status_code == 503
        await submit(client, 3)


async def test_body_over_the_limit_is_413_from_content_length(make_app: AppFactory) -> None:
    async with client_for(make_app(max_body_bytes=100)) as client:
        response = await client.post("/jobs", json={"payload": "x" * 200})
    assert response.status_code == 413
    assert "limit of 100 bytes" in response.json()["error"]


async def test_body_over_the_limit_is_413_while_streaming(make_app: AppFactory) -> None:
    chunks_read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        for _ in range(1000):  # 1 MB offered in 1 KB chunks, with no Content-Length
            chunks_read += 1
            yield b"x" * 1024

    async with client_for(make_app(max_body_bytes=10_000)) as client:
        response = await client.post("/jobs", content=body())
    assert response.status_code == 413
    assert set(response.json()) == {"error"}
    assert chunks_read < 20  # refused as soon as the limit was passed, not after reading it all


async def test_bad_content_length_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs", content=b'{"payload": 1}', headers={"content-length": "abc"})
    assert response.status_code == 400 and response.json()["error"].startswith("Content-Length")
