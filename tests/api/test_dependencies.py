"""``depends_on`` over HTTP: single and batch submissions, parents and children in ``GET /jobs/{id}``."""

from __future__ import annotations

import httpx

from jobqueue.app import JobQueue
from jobqueue.worker import Worker, WorkerConfig
from tests.api.conftest import submit


async def test_a_job_waits_for_its_parents_and_shows_them(client: httpx.AsyncClient) -> None:
    parent = await submit(client, "parent")
    child = await submit(client, "child", depends_on=[parent], on_parent_failure="run")
    shown = (await client.get(f"/jobs/{child}")).json()
    assert (shown["state"], shown["parents"], shown["children"]) == ("BLOCKED", [parent], [])
    assert (await client.get(f"/jobs/{parent}")).json()["children"] == [child]
    listed = (await client.get("/jobs", params={"state": "BLOCKED"})).json()["jobs"]
    assert [job["id"] for job in listed] == [child]


async def test_an_unknown_parent_is_a_400_and_nothing_is_stored(client: httpx.AsyncClient, queue: JobQueue) -> None:
    response = await client.post("/jobs", json={"payload": 1, "depends_on": ["no-such-job"]})
    assert response.status_code == 400
    assert response.json()["error"].startswith("depends_on: job no-such-job does not exist")
    for body, field in (
        ({"payload": 1, "depends_on": "abc"}, "depends_on: "),
        ({"payload": 1, "depends_on": [0]}, "depends_on: "),  # positions are for batches
        ({"payload": 1, "on_parent_failure": "maybe"}, "on_parent_failure: "),
    ):
        refused = await client.post("/jobs", json=body)
        assert refused.status_code == 400 and refused.json()["error"].startswith(field), refused.text
    assert (await queue.stats()).queues == {}


async def test_a_batch_names_its_own_members_by_position(client: httpx.AsyncClient, queue: JobQueue) -> None:
    @queue.task(name="step")
    async def step(n: int) -> int:
        return n

    outside = await submit(client, 0, task="step")
    jobs = [
        {"payload": 1, "task": "step"},
        {"payload": 2, "task": "step", "depends_on": [0, outside]},
        {"payload": 3, "task": "step", "depends_on": [0, 1]},
        {"payload": 4, "task": "step", "depends_on": ["no-such-job"]},
    ]
    body = (await client.post("/jobs/batch", json={"jobs": jobs})).json()
    assert (body["accepted"], body["invalid"]) == (3, 1)
    first, second, third = (result["job_id"] for result in body["results"][:3])
    assert body["results"][3]["status"] == "invalid" and "no-such-job" in body["results"][3]["error"]
    assert (await client.get(f"/jobs/{second}")).json()["parents"] == [first, outside]
    assert (await client.get(f"/jobs/{first}")).json()["children"] == sorted([second, third])
    await Worker(queue, WorkerConfig(reaper_interval=None)).drain()
    assert (await client.get(f"/jobs/{third}")).json()["state"] == "COMPLETED"


async def test_a_batch_position_must_name_an_earlier_member(client: httpx.AsyncClient) -> None:
    for parents in ([1], [5], [-1]):
        response = await client.post(
            "/jobs/batch", json={"jobs": [{"payload": 1}, {"payload": 2, "depends_on": parents}]}
        )
        assert response.status_code == 400
        assert response.json()["error"].startswith("jobs[1].depends_on: "), response.text


async def test_a_batch_member_refused_for_capacity_refuses_its_children_and_says_why(
    client: httpx.AsyncClient, queue: JobQueue
) -> None:
    queue.capacity = {"small": 0}
    jobs = [{"payload": 1, "queue": "small"}, {"payload": 2, "depends_on": [0]}, {"payload": 3}]
    body = (await client.post("/jobs/batch", json={"jobs": jobs})).json()
    assert [result["status"] for result in body["results"]] == ["rejected", "invalid", "accepted"]
    assert (
        body["results"][1]["error"]
        == "depends_on: jobs[0] was not stored (see its outcome), so this job was not either"
    )
