"""``/schedules`` over every backend: the state schedulers store, pause, resume and run now."""

from __future__ import annotations

from jobqueue.api import create_app
from jobqueue.app import JobQueue
from jobqueue.clock import FakeClock
from jobqueue.worker.scheduler import Scheduler
from jobqueue.worker.signals import WorkerSignals
from tests.api.conftest import AppFactory, client_for


async def test_schedules_are_listed_paused_resumed_and_run(queue: JobQueue, make_app: AppFactory) -> None:
    queue.schedule("nightly", task="report", cron="0 3 * * *", timezone="Europe/Paris", queue="reports")
    queue.schedule("often", task="ping", every=30, payload={"ping": True})
    async with client_for(make_app()) as client:
        listed = (await client.get("/schedules")).json()["schedules"]
        assert [(s["name"], s["when"], s["paused"], s["last_tick"]) for s in listed] == [
            ("nightly", "0 3 * * * (Europe/Paris)", False, None),
            ("often", "every 30 s", False, None),
        ]
        assert listed[0]["next_tick"].endswith(("T01:00:00+00:00", "T02:00:00+00:00"))  # 03:00 in Paris

        paused = await client.post("/schedules/often/pause")
        assert paused.status_code == 200 and paused.json()["paused"] is True and paused.json()["next_tick"] is None
        stored = {s.name: s for s in await queue.backend.schedules()}
        assert stored["often"].paused  # in the store: every node sees it
        resumed = await client.post("/schedules/often/resume")
        assert resumed.json()["paused"] is False and resumed.json()["next_tick"] is not None

        ran = await client.post("/schedules/often/run")
        assert ran.status_code == 202 and ran.json()["task"] == "ping" and ran.json()["payload"] == {"ping": True}
        assert (await client.get(ran.headers["location"])).status_code == 200

        for path in ("/schedules/nope/pause", "/schedules/nope/resume", "/schedules/nope/run"):
            missing = await client.post(path)
            assert missing.status_code == 404 and "nope" in missing.json()["error"]


async def test_an_api_without_the_app_shows_what_the_schedulers_stored(queue: JobQueue) -> None:
    clock = FakeClock()
    queue.schedule("often", task="ping", every=30)
    await queue.open()
    await Scheduler(queue, clock, WorkerSignals()).run_once()  # a worker elsewhere registered it
    bare = JobQueue(backend=queue.backend)  # `jobqueue api` started without the app's code
    async with client_for(create_app(bare)) as client:
        (listed,) = (await client.get("/schedules")).json()["schedules"]
        assert (listed["name"], listed["task"], listed["when"]) == ("often", "ping", "every 30 s")
        assert (await client.post("/schedules/often/pause")).json()["paused"] is True


async def test_schedule_routes_need_the_token(queue: JobQueue, make_app: AppFactory) -> None:
    queue.schedule("often", task="ping", every=30)
    async with client_for(make_app(token="s3cret")) as client:
        assert (await client.get("/schedules")).status_code == 401
        assert (await client.post("/schedules/often/pause")).status_code == 401
    async with client_for(make_app(token="s3cret"), Authorization="Bearer s3cret") as client:
        assert (await client.get("/schedules")).status_code == 200


async def test_a_stored_schedule_this_process_cannot_read_leaves_the_others_listed(queue: JobQueue) -> None:
    from jobqueue.outcomes import StoredSchedule

    await queue.open()
    await queue.backend.register_schedules([StoredSchedule("future", '{"from": "a later release"}')])
    queue.schedule("often", task="ping", every=30)
    async with client_for(create_app(queue)) as client:
        listed = (await client.get("/schedules")).json()["schedules"]
    assert [s["name"] for s in listed] == ["often"]
