"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, and a ``jobqueue serve``
process over each backend.

``scripts/bootstrap`` installs both (Playwright from PyPI with the dev extras, Chromium from the
system's packages). Without them these tests skip, except under CI, where they must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends import SHARED_STORES, skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module. Not for the session: while Playwright's sync API runs, an
    event loop runs in this thread, and the asyncio tests after it could not start theirs."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Playwright is not installed (pip install -e '.[dev]')")
    executable = chromium_path()
    if executable is None:
        skip_or_fail("no Chromium on PATH (scripts/bootstrap installs Debian's chromium when run as root)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


class Page:
    """A browser tab that records what must never happen on the dashboard: dialogs, console errors
    (a script the CSP blocked reports one), and uncaught exceptions."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.base = base
        self.problems: list[str] = []
        #: Browser messages a test expects (a refused request logs "status of 400"), not problems.
        self.allowed: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def _console(self, message: Any) -> None:
        if message.type == "error" and not any(allowed in message.text for allowed in self.allowed):
            self.problems.append(f"console: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog: {dialog.type} {dialog.message!r}")
        dialog.dismiss()

    def open(self, fragment: str = "") -> Any:
        self.page.goto(f"{self.base}/ui{fragment}")
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Page]:
    page = Page(browser, server.url)
    try:
        yield page
    finally:
        page.close()
    assert page.problems == [], page.problems


class Server:
    """``jobqueue serve tests.browser.uiapp:app`` on a free port."""

    def __init__(self, url: str, token: str | None = None) -> None:
        cmd = [sys.executable, "-m", "jobqueue", "serve", "tests.browser.uiapp:app", "--backend", url, "--port", "0",
               "--log-level", "WARNING", "--queues", "default,held"]  # fmt: skip
        if token:
            cmd += ["--token", token]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: any("jobqueue API on" in line for line in self.lines), what="the server", alive=self.proc)
        match = re.search(r"on (http://\S+) ", next(line for line in self.lines if "jobqueue API on" in line))
        assert match is not None
        self.url = match[1]
        self.api = httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {token}"} if token else {})

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def job(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.api.get(f"/jobs/{job_id}").json()
        return body

    def submit(self, task: str, payload: Any, **fields: Any) -> str:
        answer = self.api.post("/jobs", json={"task": task, "payload": payload, **fields})
        assert answer.status_code == 202, answer.text
        job_id: str = answer.json()["job_id"]
        return job_id

    def wait_for_state(self, job_id: str, state: str) -> dict[str, Any]:
        wait_until(lambda: self.job(job_id)["state"] == state, what=f"job {job_id} to be {state}")
        return self.job(job_id)

    def stop(self) -> None:
        self.api.close()
        self.proc.kill()
        self.proc.wait()
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "it",
               alive: subprocess.Popen[str] | None = None) -> None:  # fmt: skip
    """Poll what another process brings about (there is no in-process signal to wait on)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"the server exited with {alive.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def start_server(request: pytest.FixtureRequest, tmp_path: Path, store: str, token: str | None = None) -> Server:
    if store == "memory":
        url, cleanup = "memory://", lambda: None
    else:
        url, cleanup = SHARED_STORES[store](tmp_path)
    server = Server(url, token)

    def finish() -> None:
        server.stop()
        # In a thread: Playwright keeps an event loop running in this one, and cleanups may run their own.
        worker = threading.Thread(target=cleanup)
        worker.start()
        worker.join()

    request.addfinalizer(finish)
    return server


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Server:
    """A server over SQLite, or over the store a test names (``@pytest.mark.parametrize("store", ...)``)."""
    callspec = getattr(request.node, "callspec", None)
    store = callspec.params.get("store", "sqlite") if callspec is not None else "sqlite"
    return start_server(request, tmp_path, store, getattr(request, "param", None))
