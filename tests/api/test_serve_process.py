"""``jobqueue serve`` as a real process: the contract over real HTTP, and SIGKILL under load."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


class Server:
    """A ``jobqueue serve`` subprocess on a free port; ``url`` once it listens."""

    def __init__(self, db: Path, *args: str, command: str = "serve", open_files: int | None = None) -> None:
        cmd = [sys.executable, "-m", "jobqueue", command, "tests.api.serveapp:app", "--backend", f"sqlite:///{db}",
               "--port", "0", "--log-level", "WARNING", *args]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=str(ROOT))

        def limit_files() -> None:  # as `ulimit -n` would, soft and hard
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=limit_files)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_until(lambda: any("jobqueue API on" in line for line in self.lines), what="the server to listen",
                   alive=self.proc)  # fmt: skip
        match = re.search(r"on (http://\S+) ", next(line for line in self.lines if "jobqueue API on" in line))
        assert match is not None
        self.url = match[1]

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def wait_until(
    predicate: Callable[[], bool],
    timeout: float = 20.0,
    what: str = "condition",
    alive: subprocess.Popen[str] | None = None,
) -> None:
    """Poll a condition another process brings about (there is no in-process signal to wait on)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"the process exited with {alive.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def test_contract_over_real_http(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path / "jobs.db", "--workers", "4", "--capacity", "50", "--max-body-bytes", "10000")
    servers.append(server)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        accepted = http.post(
            "/jobs", json={"payload": "process-order-42", "idempotency_key": "order-42", "priority": 5}
        )
        assert accepted.status_code == 202 and accepted.json()["status"] == "accepted"
        job_id = accepted.json()["job_id"]
        assert accepted.headers["location"] == f"/jobs/{job_id}"
        duplicate = http.post("/jobs", json={"payload": "again", "idempotency_key": "order-42"})
        assert duplicate.status_code == 409 and duplicate.json()["job_id"] == job_id
        wait_until(lambda: http.get(f"/jobs/{job_id}").json()["state"] == "COMPLETED", what="the job to complete")
        assert http.get(f"/jobs/{job_id}").json()["result"] == "process-order-42"

        doomed = http.post("/jobs", json={"payload": 7, "task": "fail"}).json()["job_id"]
        wait_until(lambda: http.get("/dlq").json()["count"] == 1, what="the failing job in the DLQ")
        retried = http.post(f"/dlq/{doomed}/retry")
        assert retried.status_code == 202 and retried.json() == {"status": "requeued", "job_id": doomed}

        assert http.post("/jobs", content=b"{oops", headers={"content-type": "application/json"}).status_code == 400
        assert http.get("/jobs/nope").status_code == 404
        too_big = http.post("/jobs", json={"payload": "x" * 20_000})
        assert too_big.status_code == 413 and "limit" in too_big.json()["error"]
        chunked = http.post("/jobs", content=iter([b"x" * 4096] * 10))  # no Content-Length: counted as it comes
        assert chunked.status_code == 413

        metrics = http.get("/metrics").json()
        assert metrics["queue"]["max_size"] == 50 and metrics["workers"] == 4
        assert metrics["totals"]["completed"] >= 1 and metrics["totals"]["duplicates"] == 1
        text = http.get("/metrics", headers={"accept": "text/plain"}).text
        assert "jobqueue_job_duration_seconds_bucket" in text
        assert http.get("/ready").status_code == 200 and http.get("/health").json() == {"status": "ok"}

    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(15) == 0  # a graceful stop is a clean exit, not "killed by signal"


def test_api_alone_accepts_and_leaves_the_work_to_workers_elsewhere(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path / "jobs.db", "--token", "t0k3n", command="api")
    servers.append(server)
    with httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": "Bearer t0k3n"}) as http:
        job_id = http.post("/jobs", json={"payload": 1}).json()["job_id"]
        assert http.get(f"/jobs/{job_id}").json()["state"] == "PENDING"  # no worker here
        ready = http.get("/ready").json()
        assert ready["status"] == "ready" and ready["workers"] == 0
        assert httpx.get(f"{server.url}/metrics").status_code == 401
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(15) == 0


def test_sigkill_under_submit_load_loses_no_accepted_job(tmp_path: Path, servers: list[Server]) -> None:
    db = tmp_path / "jobs.db"
    first = Server(db, "--workers", "4", "--lease", "1")
    servers.append(first)
    accepted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def producer(n: int) -> None:
        with httpx.Client(base_url=first.url, timeout=5) as http:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    response = http.post("/jobs", json={"payload": f"{n}-{i}"})
                except httpx.HTTPError:
                    return  # the server is gone: whatever was not answered was not promised
                if response.status_code == 202:
                    with lock:
                        accepted.append(response.json()["job_id"])

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(accepted) >= 300, what="300 accepted jobs")
    first.proc.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
    first.proc.wait()
    stop.set()
    for thread in threads:
        thread.join(10)
    promised = set(accepted)

    # A short lease, so that the jobs the killed process held come back soon (its default reaper
    # looks every 5 s).
    second = Server(db, "--workers", "8", "--lease", "1")
    servers.append(second)
    with httpx.Client(base_url=second.url, timeout=10) as http:
        states = {job_id: http.get(f"/jobs/{job_id}").status_code for job_id in promised}
        assert set(states.values()) == {200}, "a job answered 202 is missing after the restart"

        def all_done() -> bool:
            states: dict[str, int] = http.get("/metrics").json()["queues"]["default"]["states"]
            return states["COMPLETED"] + states["DEAD_LETTERED"] == sum(states.values())

        # Jobs running at the kill come back when their lease expires and a reaper finds them.
        wait_until(all_done, timeout=30, what="every accepted job to run")
        final = {job_id: http.get(f"/jobs/{job_id}").json()["state"] for job_id in promised}
    assert set(final.values()) == {"COMPLETED"}, {s: list(final.values()).count(s) for s in set(final.values())}


def test_json_logs_and_the_access_log_of_a_real_server(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(
        tmp_path / "jobs.db", "--workers", "2", "--log-format", "json", "--access-log", "--log-level", "INFO"
    )
    servers.append(server)
    server.lines.clear()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        job_id = http.post("/jobs", json={"payload": "logged"}).json()["job_id"]

        def logged() -> list[dict[str, object]]:
            return [json.loads(line) for line in list(server.lines) if line.startswith("{")]

        wait_until(lambda: any(entry.get("job_id") == job_id for entry in logged()), what="the job's log line")
        wait_until(lambda: any(entry.get("path") == "/jobs" for entry in logged()), what="the access log line")
    access = next(entry for entry in logged() if entry.get("path") == "/jobs")
    assert (access["logger"], access["method"], access["status"]) == ("uvicorn.access", "POST", 202)
    job = next(entry for entry in logged() if entry.get("job_id") == job_id)
    assert (job["event"], job["outcome"], job["queue"]) == ("job.completed", "completed", "default")
