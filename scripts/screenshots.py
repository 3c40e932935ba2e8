"""Renders the dashboard's pages into ``docs/images/dashboard-*.png`` (run ``scripts/screenshots``).

It serves ``scripts/dashboard_demo.py`` on a throw-away SQLite file, feeds it jobs for a while so
the charts have something to show, and photographs each page in headless Chromium.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
FEED_SECONDS = float(os.environ.get("FEED_SECONDS", "45"))


def start(db: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "jobqueue", "serve", "dashboard_demo:app", "--backend", f"sqlite:///{db}",
           "--port", "0", "--queues", "emails,reports,billing", "--workers", "20",
           "--log-level", "WARNING"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT / "scripts"))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if match := re.search(r"on (http://\S+) ", line):
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, match[1]
    raise SystemExit(f"the server did not start: exit code {proc.wait()}")


def feed(url: str, seconds: float) -> None:
    """A day in the life, sped up: a wave of e-mails, a few reports, charges of which some fail."""
    with httpx.Client(base_url=url) as client:
        started = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - started) < seconds:
            rate = 30 + 25 * math.sin(elapsed / 6)
            emails = range(n, n + int(rate / 5))
            batch = [{"task": "emails.send", "payload": {"to": f"user{i}@example.com"}} for i in emails]
            if n % 9 == 0:
                batch.append({"task": "reports.render", "payload": {"report": f"weekly-{n}"}})
            batch.append({"task": "billing.charge", "payload": {"customer": f"c-{n % 50}", "amount": n % 40}})
            try:
                client.post("/jobs/batch", json={"jobs": batch})
            except httpx.HTTPError:  # the server has stopped: the pictures are taken
                return
            n += len(batch)
            time.sleep(0.2)


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no Chromium on PATH: apt-get install chromium")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(Path(tmp) / "demo.db")
        try:
            # The feed goes on while the pages are photographed, so the charts show work going on.
            feeder = threading.Thread(target=feed, args=(url, FEED_SECONDS + 40), daemon=True)
            feeder.start()
            time.sleep(FEED_SECONDS)
            with httpx.Client(base_url=url) as client:
                dead = client.get("/jobs", params={"state": "DEAD_LETTERED", "limit": 1}).json()["jobs"]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
                pages = {"overview": "", "jobs": "#/jobs", "dlq": "#/dlq", "queues": "#/queues"}
                if dead:
                    pages["job"] = f"#/job/{dead[0]['id']}"
                for name, fragment in pages.items():
                    page.goto(f"{url}/ui{fragment}")
                    page.wait_for_load_state("networkidle")
                    page.wait_for_timeout(2500)  # one live refresh, so the charts are drawn
                    page.screenshot(path=str(OUT / f"dashboard-{name}.png"), full_page=name != "overview")
                    print(f"wrote docs/images/dashboard-{name}.png")
                browser.close()
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
