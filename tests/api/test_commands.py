"""The client commands (``jobqueue submit | get | dlq | stats``) and the serve commands' refusals."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobqueue.app import JobQueue
from jobqueue.cli import app
from jobqueue.errors import PermanentError
from jobqueue.worker import Worker

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_submit_then_get(store: str) -> None:
    code, out, _ = run("submit", '{"order": 42}', "--priority", "5", "--key", "order-42", "--backend", store)
    assert code == 0
    job_id = out.strip()
    code, out, _ = run("get", job_id, "--backend", store)
    assert code == 0
    job = json.loads(out)
    assert job["id"] == job_id and job["payload"] == {"order": 42} and job["priority"] == 5
    assert job["state"] == "PENDING"
    # A second submit with the key prints the job holding it, and says so.
    code, out, err = run("submit", "again", "--key", "order-42", "--backend", store)
    assert code == 0 and out.strip() == job_id and "duplicate" in err


def test_submit_after_other_jobs(store: str) -> None:
    first, second = (run("submit", str(n), "--backend", store)[1].strip() for n in (1, 2))
    code, out, _ = run("submit", "3", "--after", first, "--after", second, "--backend", store)
    assert code == 0
    job = json.loads(run("get", out.strip(), "--backend", store)[1])
    assert (job["state"], job["parents"]) == ("BLOCKED", [first, second])
    code, _, err = run("submit", "4", "--after", "no-such-job", "--backend", store)
    assert code == 2 and "error: depends_on: job no-such-job does not exist" in err


def test_queues_are_paused_listed_and_resumed(store: str) -> None:
    run("submit", "1", "--queue", "mail", "--backend", store)
    code, out, _ = run("queue", "pause", "mail", "--backend", store)
    assert (code, out.strip()) == (0, "mail paused")
    code, out, _ = run("queue", "list", "--json", "--backend", store)
    assert {q["name"]: q["paused"] for q in json.loads(out)["queues"]}["mail"] is True
    assert "paused" in run("queue", "--backend", store)[1]
    stats = run("stats", "--backend", store)[1]
    assert "paused" in stats and "yes" in stats
    assert run("queue", "resume", "mail", "--backend", store)[:2] == (0, "mail resumed\n")
    code, _, err = run("queue", "pause", "--backend", store)
    assert code == 2 and "needs a queue name" in err


def test_text_payload_is_sent_as_a_string(store: str) -> None:
    code, out, _ = run("submit", "process-order-42", "--backend", store)
    assert code == 0
    assert json.loads(run("get", out.strip(), "--backend", store)[1])["payload"] == "process-order-42"


def test_errors_have_clear_messages_and_exit_codes(store: str) -> None:
    assert run("submit", "1", "--backend", store)[0] == 0  # the store exists
    code, _, err = run("get", "nope", "--backend", store)
    assert code == 1 and "error: job not found" in err
    code, _, err = run("submit", "x", "--priority", "5000", "--backend", store)
    assert code == 2 and "error: priority: must be between" in err
    code, _, err = run("dlq", "retry", "nope", "--backend", store)
    assert code == 1 and "not found in DLQ" in err
    code, _, err = run("dlq", "retry", "--backend", store)
    assert code == 2 and "needs a job id" in err
    code, _, err = run("dlq", "drop", "--backend", store)
    assert code == 2 and "'drop' is not one of" in err
    code, _, err = run("stats", "--backend", "nosuch://x")
    assert code == 2 and "unsupported backend URL" in err


def test_unreachable_api_is_exit_3() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    code, _, err = run("stats", "--url", f"http://127.0.0.1:{port}")
    assert code == 3 and "cannot reach the API" in err


def test_dlq_list_retry_and_stats(store: str) -> None:
    queue = JobQueue(store)

    def fail(payload: object) -> None:
        raise PermanentError("no such customer")

    queue.default_handler(fail)
    job = queue.enqueue_sync("default", "doomed")
    queue.close_sync()

    async def process() -> None:
        async with queue:
            await Worker(queue).drain()

    asyncio.run(process())
    code, out, _ = run("dlq", "--backend", store)
    assert code == 0 and "1 jobs" in out and job.id in out  # whole: what `dlq retry ID` takes
    code, out, _ = run("dlq", "list", "--json", "--backend", store)
    assert code == 0 and json.loads(out)["count"] == 1
    code, out, _ = run("stats", "--json", "--backend", store)
    assert code == 0 and json.loads(out)["dlq_size"] == 1
    code, out, _ = run("stats", "--backend", store)
    assert code == 0 and "dead lettered" in out and "DLQ 1" in out
    code, out, _ = run("dlq", "retry", job.id, "--backend", store)
    assert code == 0 and out.strip() == f"requeued {job.id}"
    assert json.loads(run("get", job.id, "--backend", store)[1])["state"] == "PENDING"


def test_token_is_sent(store: str) -> None:
    # In-process, the app gets the same token: a client with it passes, the app demands it.
    assert run("submit", "1", "--backend", store, "--token", "t0k3n")[0] == 0
    code, _, _ = run("stats", "--backend", store, "--token", "t0k3n")
    assert code == 0


@pytest.mark.parametrize("command", ["serve", "api"])
def test_serving_beyond_loopback_without_a_token_is_refused(command: str, store: str) -> None:
    code, _, err = run(command, "--host", "0.0.0.0", "--backend", store)
    assert code == 2
    assert "refusing to listen on 0.0.0.0 without a token" in err


def test_serve_with_a_bad_app_is_refused(store: str) -> None:
    code, _, err = run("serve", "no_such_module:app", "--backend", store)
    assert code == 2 and "cannot import" in err


def test_dlq_prints_whole_ids_in_a_narrow_terminal(store: str) -> None:
    queue = JobQueue(store)
    queue.default_handler(lambda payload: (_ for _ in ()).throw(PermanentError("x" * 200)))
    job = queue.enqueue_sync("default", "doomed")
    queue.close_sync()

    async def process() -> None:
        async with queue:
            await Worker(queue).drain()

    asyncio.run(process())
    result = CliRunner().invoke(app, ["dlq", "--backend", store], env={"COLUMNS": "60"})
    assert result.exit_code == 0 and job.id in result.stdout


@pytest.mark.parametrize("command", [["get", "some-id"], ["stats"], ["dlq"], ["dlq", "list"]])
def test_read_only_commands_never_create_a_store(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "jobs.db"
    code, _, err = run(*command, "--backend", f"sqlite:///{missing}")
    assert code == 3 and "no store at" in err
    assert not (tmp_path / "no").exists()


def test_an_unreachable_store_is_exit_3_without_warnings(recwarn: pytest.WarningsRecorder) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for command in (["submit", "1"], ["stats"]):
        code, _, err = run(*command, "--backend", f"redis://127.0.0.1:{port}/0")
        assert code == 3, (command, err)
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


def test_version_option() -> None:
    from jobqueue.version import __version__

    assert run("--version") == (0, f"{__version__}\n", "")


def test_schedules_list_pause_resume_and_run_now(store: str) -> None:
    from jobqueue.clock import SystemClock
    from jobqueue.worker.scheduler import Scheduler
    from jobqueue.worker.signals import WorkerSignals

    async def a_worker_stores_its_schedules() -> None:
        queue = JobQueue(store)
        queue.schedule("hourly-report", task="report", cron="0 * * * *", queue="reports")
        async with queue:
            await Scheduler(queue, SystemClock(), WorkerSignals()).run_once()

    asyncio.run(a_worker_stores_its_schedules())
    code, out, _ = run("schedules", "--backend", store, "--json")
    (listed,) = json.loads(out)["schedules"]
    assert code == 0 and (listed["name"], listed["when"], listed["paused"]) == (
        "hourly-report",
        "0 * * * * (UTC)",
        False,
    )
    assert run("schedules", "pause", "hourly-report", "--backend", store)[:2] == (0, "hourly-report paused\n")
    code, out, _ = run("schedules", "--backend", store)
    assert code == 0 and "hourly-report" in out and "paused" in out
    assert run("schedules", "resume", "hourly-report", "--backend", store)[:2] == (0, "hourly-report resumed\n")
    code, out, _ = run("schedules", "run-now", "hourly-report", "--backend", store)
    job = json.loads(run("get", out.split()[1], "--backend", store)[1])
    assert code == 0 and (job["task"], job["queue"]) == ("report", "reports")
    code, _, err = run("schedules", "pause", "nope", "--backend", store)
    assert code == 1 and "schedule 'nope' not found" in err
    assert run("schedules", "pause", "--backend", store)[0] == 2
