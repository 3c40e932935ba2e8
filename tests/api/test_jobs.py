"""``GET /jobs/{id}``, ``GET /jobs``, ``POST /jobs/{id}/cancel`` and ``POST /jobs/batch``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jobqueue.app import JobQueue
from jobqueue.job import JobState
from jobqueue.worker import Worker
from tests.api.conftest import AppFactory, client_for, submit


async def test_get_job_shows_states_in_upper_case(client: httpx.AsyncClient, queue: JobQueue) -> None:
    queue.default_handler(lambda payload: {"echo": payload})
    job_id = await submit(client, "process-order-42", idempotency_key="order-42")
    pending = (await client.get(f"/jobs/{job_id}")).json()
    assert pending["state"] == "PENDING" and pending["id"] == job_id and pending["payload"] == "process-order-42"
    assert "lease_token" not in pending  # internal: fences workers, means nothing to a client
    await Worker(queue).drain()
    done = await client.get(f"/jobs/{job_id}")
    assert done.status_code == 200
    body = done.json()
    assert body["state"] == "COMPLETED" and body["result"] == {"echo": "process-order-42"}
    assert body["created_at"].endswith("+00:00") and body["finished_at"] is not None


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs/no-such-job")
    assert response.status_code == 404
    assert response.json() == {"error": "job not found", "job_id": "no-such-job"}


async def test_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    ids = [await submit(client, n, queue="a" if n % 2 else "b", task="t1" if n < 4 else "t2") for n in range(6)]
    everything = (await client.get("/jobs")).json()
    assert [j["id"] for j in everything["jobs"]] == ids and everything["next_cursor"] is None
    in_a = (await client.get("/jobs", params={"queue": "a", "task": "t2"})).json()["jobs"]
    assert [j["payload"] for j in in_a] == [5]
    first = (await client.get("/jobs", params={"limit": 4})).json()
    rest = (await client.get("/jobs", params={"limit": 4, "cursor": first["next_cursor"]})).json()
    assert [j["id"] for j in first["jobs"] + rest["jobs"]] == ids and rest["next_cursor"] is None
    pending = (await client.get("/jobs", params={"state": "PENDING"})).json()["jobs"]
    assert len(pending) == 6
    assert (await client.get("/jobs", params={"state": "COMPLETED"})).json()["jobs"] == []


@pytest.mark.parametrize(
    ("params", "field"), [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"state": "done"}, "state")]
)
async def test_list_with_bad_parameters_is_400(client: httpx.AsyncClient, params: dict[str, Any], field: str) -> None:
    response = await client.get("/jobs", params=params)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}: ")


async def test_cancel_a_waiting_job(client: httpx.AsyncClient, queue: JobQueue) -> None:
    job_id = await submit(client)
    response = await client.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "CANCELLED"
    again = await client.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["state"] == "CANCELLED" and "cannot cancel" in again.json()["error"]
    assert (await client.post("/jobs/nope/cancel")).status_code == 404


async def test_batch_gives_one_outcome_per_job(queue: JobQueue, make_app: AppFactory) -> None:
    queue.capacity = 3
    async with client_for(make_app()) as client:
        held = await submit(client, "held", idempotency_key="k1")
        jobs = [{"payload": 1}, {"payload": 2, "idempotency_key": "k1"}, {"payload": 3, "priority": 9},
                {"payload": 4}, {"payload": 5}]  # fmt: skip
        response = await client.post("/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 2)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted", "duplicate", "accepted", "rejected", "rejected"]
    assert body["results"][1] == {"status": "duplicate", "job_id": held, "state": "PENDING"}
    assert "full" in body["results"][3]["error"]
    assert response.headers["retry-after"] == "1"
    stored = await queue.get(body["results"][2]["job_id"])
    assert stored is not None and stored.priority == 9


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"jobs": [{"payload": 1}, {"payload": 2, "priority": "x"}]}, "jobs[1].priority: "),
        ({"jobs": [{"payload": 1}, {}]}, "jobs[1].payload: "),
        ({"jobs": [{"payload": 1}, 7]}, "jobs[1].body: "),
        ({"jobs": []}, "jobs: "),
        ({"jobs": [{"payload": n} for n in range(11)]}, "jobs: "),
        ({"jobs": "all"}, "jobs: "),
        ({"jobz": []}, "jobs: "),
        ({"jobs": [{"payload": 1}], "extra": 1}, "extra: "),
        ([{"payload": 1}], "jobs: "),
    ],
)
async def test_invalid_batch_is_400_and_stores_nothing(
    make_app: AppFactory, queue: JobQueue, body: Any, message: str
) -> None:
    async with client_for(make_app(max_batch=10)) as client:
        response = await client.post("/jobs/batch", json=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message), response.json()
    assert (await queue.list_jobs()).jobs == []


async def test_batch_jobs_use_their_task_defaults(client: httpx.AsyncClient, queue: JobQueue) -> None:
    @queue.task(name="mail", queue="mail", priority=7, max_retries=0)
    def mail(payload: object) -> None:
        pass

    jobs = [{"payload": 1, "task": "mail"}, {"payload": 2, "task": "mail", "priority": 1}, {"payload": 3}]
    body = (await client.post("/jobs/batch", json={"jobs": jobs})).json()
    stored = [await queue.get(r["job_id"]) for r in body["results"]]
    assert [(j.queue, j.priority, j.max_retries) for j in stored if j] == [("mail", 7, 0), ("mail", 1, 0),
                                                                           ("default", 0, 3)]  # fmt: skip
    assert all(j is not None and j.state is JobState.PENDING for j in stored)


async def test_task_registered_later_gets_its_own_defaults(client: httpx.AsyncClient, queue: JobQueue) -> None:
    first = await queue.get(await submit(client, 1, task="late"))

    @queue.task(name="late", queue="slow", priority=3)
    def late(payload: object) -> None:
        pass

    second = await queue.get(await submit(client, 2, task="late"))
    assert first is not None and (first.queue, first.priority) == ("default", 0)
    assert second is not None and (second.queue, second.priority) == ("slow", 3)


async def test_made_up_task_names_share_one_cache_entry(make_app: AppFactory) -> None:
    app = make_app()
    async with client_for(app) as client:
        for n in range(20):
            await submit(client, n, task=f"no.such.task.{n}")
    assert len(app.state.jobqueue.defaults._by_task) == 1
