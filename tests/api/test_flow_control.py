"""Limits, cancels and the DLQ in bulk over HTTP: what they answer, and what the store then holds."""

from __future__ import annotations

import httpx

from jobqueue.app import JobQueue
from jobqueue.job import JobState
from jobqueue.worker import Worker, WorkerConfig

S = JobState


async def test_limits_are_set_shown_and_cleared(client: httpx.AsyncClient, queue: JobQueue) -> None:
    body = {"rate": "100/s", "burst": 20, "concurrency": 5, "key_rate": "1000/h", "key_concurrency": 1}
    answer = await client.put("/queues/api/limits", json=body)
    assert answer.status_code == 200
    shown = {**body, "key_burst": 1000}
    assert answer.json()["name"] == "api" and answer.json()["limits"] == shown
    listed = {q["name"]: q for q in (await client.get("/queues")).json()["queues"]}
    await queue.enqueue("t", 1)
    listed = {q["name"]: q for q in (await client.get("/queues")).json()["queues"]}
    assert listed["api"]["limits"] == shown and listed["default"]["limits"] is None
    assert (await client.get("/metrics")).json()["queues"]["api"]["limits"] == shown
    prometheus = (await client.get("/metrics", params={"format": "prometheus"})).text
    assert 'jobqueue_queue_rate_limit{queue="api"} 100.0' in prometheus
    assert 'jobqueue_queue_concurrency_limit{queue="api"} 5.0' in prometheus
    cleared = await client.delete("/queues/api/limits")
    assert cleared.status_code == 200 and cleared.json()["limits"] is None
    assert await queue.limits() == {}


async def test_a_patch_changes_the_limits_given_and_keeps_the_others(client: httpx.AsyncClient) -> None:
    await client.put("/queues/api/limits", json={"rate": "10/s", "burst": 2, "concurrency": 4})
    changed = await client.patch("/queues/api/limits", json={"concurrency": 6})
    assert changed.json()["limits"] == {"rate": "10/s", "burst": 2, "concurrency": 6, "key_rate": None,
                                        "key_burst": None, "key_concurrency": None}  # fmt: skip
    faster = (await client.patch("/queues/api/limits", json={"rate": "20/s"})).json()["limits"]
    assert (faster["rate"], faster["burst"]) == ("20/s", 20)  # the old burst went with the old rate
    dropped = (await client.patch("/queues/api/limits", json={"rate": None})).json()["limits"]
    assert dropped == {**faster, "rate": None, "burst": None}
    bad = await client.patch("/queues/api/limits", json={"concurrency": -1})
    assert bad.status_code == 400 and bad.json()["error"].startswith("concurrency: ")


async def test_bad_limits_are_a_400_naming_the_field(client: httpx.AsyncClient) -> None:
    for body, field in [
        ({"rate": "fast"}, "rate"),
        ({"rate": "0/s"}, "rate"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": "3"}, "concurrency"),
        ({"burst": 5}, "burst"),
        ({"key_rate": "1/s", "key_burst": 0}, "key_burst"),
        ({"speed": 1}, "speed"),
        ([1], "body"),
    ]:
        answer = await client.put("/queues/api/limits", json=body)
        assert answer.status_code == 400, body
        assert answer.json()["error"].startswith(f"{field}: "), answer.json()
    assert (await client.put("/queues/bad%20name/limits", json={"concurrency": 1})).status_code == 400


async def test_a_job_is_submitted_with_a_rate_key(client: httpx.AsyncClient, queue: JobQueue) -> None:
    answer = await client.post("/jobs", json={"payload": 1, "rate_key": "tenant-7"})
    assert answer.status_code == 202
    job = (await client.get(f"/jobs/{answer.json()['job_id']}")).json()
    assert job["rate_key"] == "tenant-7"
    bad = await client.post("/jobs", json={"payload": 1, "rate_key": ""})
    assert bad.status_code == 400 and bad.json()["error"].startswith("rate_key: ")


async def test_a_job_is_cancelled_with_its_children(client: httpx.AsyncClient, queue: JobQueue) -> None:
    parent = await queue.enqueue("t", 1)
    child = await queue.enqueue("t", 2, depends_on=[parent])
    answer = await client.post(f"/jobs/{parent.id}/cancel", params={"children": "true"})
    assert answer.status_code == 200 and answer.json()["state"] == "CANCELLED"
    assert (await queue.get(child.id)).state is S.CANCELLED  # type: ignore[union-attr]
    again = await client.post(f"/jobs/{parent.id}/cancel")
    assert again.status_code == 409


async def test_jobs_are_cancelled_by_filter_and_an_empty_filter_needs_all(
    client: httpx.AsyncClient, queue: JobQueue
) -> None:
    await queue.enqueue_many([queue.new_job("t", n, queue="mail") for n in range(4)])
    await queue.enqueue("t", "stays")
    refused = await client.post("/jobs/cancel", json={})
    assert refused.status_code == 400 and refused.json()["error"].startswith("all: ")
    bad_state = await client.post("/jobs/cancel", json={"state": "COMPLETED", "queue": "mail"})
    assert bad_state.status_code == 400 and bad_state.json()["error"].startswith("state: ")
    answer = await client.post("/jobs/cancel", json={"queue": "mail", "state": "PENDING"})
    assert answer.status_code == 200 and answer.json() == {"cancelled": 4}
    assert (await client.post("/jobs/cancel", json={"state": "SCHEDULED"})).json() == {"cancelled": 0}
    assert (await client.post("/jobs/cancel", json={"all": True})).json() == {"cancelled": 1}


async def test_the_dlq_is_replayed_and_purged_by_filter(client: httpx.AsyncClient, queue: JobQueue) -> None:
    @queue.task(name="fails", max_retries=0)
    async def fails(payload: str) -> None:
        raise RuntimeError(payload)

    await queue.enqueue_many([queue.new_job("fails", "timeout", queue="mail") for _ in range(3)])
    await queue.enqueue_many([queue.new_job("fails", "refused", queue="mail") for _ in range(2)])
    await Worker(queue, WorkerConfig(reaper_interval=None, queues=("mail",))).drain()
    assert (await client.post("/dlq/purge", json={})).status_code == 400
    bad_time = await client.post("/dlq/purge", json={"finished_before": "yesterday"})
    assert bad_time.status_code == 400 and bad_time.json()["error"].startswith("finished_before: ")
    replayed = await client.post("/dlq/replay", json={"error": "timeout"})
    assert replayed.json() == {"replayed": 3, "stayed": 0, "full_queues": []}
    purged = await client.post("/dlq/purge", json={"queue": "mail", "finished_before": "9999-01-01T00:00:00Z"})
    assert purged.json() == {"purged": 2}
    assert (await client.get("/dlq")).json()["count"] == 0
    assert (await queue.stats()).queues["mail"].counts[S.PENDING] == 3
