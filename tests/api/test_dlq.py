"""``GET /dlq`` and ``POST /dlq/{id}/retry``, as in the original."""

from __future__ import annotations

import httpx

from jobqueue.app import JobQueue
from jobqueue.errors import PermanentError
from jobqueue.worker import Worker
from tests.api.conftest import AppFactory, client_for, submit


def fail_always(queue: JobQueue) -> None:
    def handler(payload: object) -> None:
        raise PermanentError(f"cannot process {payload}")

    queue.default_handler(handler)


async def test_dead_jobs_are_listed_and_replayed(client: httpx.AsyncClient, queue: JobQueue) -> None:
    fail_always(queue)
    dead = [await submit(client, n) for n in range(3)]
    await Worker(queue).drain()
    listing = await client.get("/dlq")
    assert listing.status_code == 200
    body = listing.json()
    assert body["count"] == 3 and [j["id"] for j in body["jobs"]] == dead
    assert all(j["state"] == "DEAD_LETTERED" and "cannot process" in j["error"] for j in body["jobs"])
    page = (await client.get("/dlq", params={"limit": 2})).json()
    assert page["count"] == 3 and len(page["jobs"]) == 2 and page["next_cursor"] is not None

    response = await client.post(f"/dlq/{dead[0]}/retry")
    assert response.status_code == 202
    assert response.json() == {"status": "requeued", "job_id": dead[0]}
    job = await queue.get(dead[0])
    assert job is not None and job.state == "PENDING" and job.retry_count == 0
    assert (await client.get("/dlq")).json()["count"] == 2
    # Not in the DLQ any more: 404, as in the original.
    again = await client.post(f"/dlq/{dead[0]}/retry")
    assert again.status_code == 404 and "not found in DLQ" in again.json()["error"]


async def test_retry_of_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/dlq/nope/retry")
    assert response.status_code == 404
    assert response.json()["error"] == "job not found in DLQ"


async def test_retry_into_a_full_queue_is_503_and_the_job_stays(queue: JobQueue, make_app: AppFactory) -> None:
    fail_always(queue)
    async with client_for(make_app()) as client:
        dead = await submit(client, "doomed")
        await Worker(queue).drain()
        queue.capacity = 1
        await submit(client, "filler")
        response = await client.post(f"/dlq/{dead}/retry")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1" and "stays in the DLQ" in response.json()["error"]
        assert (await client.get("/dlq")).json()["count"] == 1
    job = await queue.get(dead)
    assert job is not None and job.state == "DEAD_LETTERED"
