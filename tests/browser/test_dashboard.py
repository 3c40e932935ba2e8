"""The dashboard in a real browser (headless Chromium), over a real ``jobqueue serve`` process.

Every test's tab fails it on any dialog, console error (a script the CSP blocked logs one) or
uncaught exception (the ``tab`` fixture).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Page, Server, wait_until

STORES = ["memory", "sqlite", "postgres", "redis"]


def confirm(page: Any) -> None:
    """Answer the page's own confirmation (a <dialog>, never window.confirm)."""
    expect(page.locator("dialog#confirm")).to_be_visible()
    page.click("#confirm-yes")


@pytest.mark.parametrize("store", STORES)
def test_submit_see_it_fail_replay_it_from_the_dlq_and_see_it_complete(
    store: str, server: Server, tab: Page, tmp_path: Path
) -> None:
    marker = tmp_path / "ready"
    page = tab.open("#/jobs")
    page.click("summary:has-text('Submit a job')")
    page.fill("#submit-job input[name=task]", "ui.until_file")
    page.fill("#submit-job textarea[name=payload]", json.dumps({"path": str(marker)}))
    page.click("#submit-job button[type=submit]")
    expect(page.locator("h1 .badge")).to_have_text("DEAD LETTERED")  # the page refreshes itself
    job_id = page.locator("h1 .mono").inner_text()
    expect(page.locator(".attempt summary")).to_contain_text("FileNotFoundError: no file at")
    expect(page.locator(".traceback")).to_contain_text("raise FileNotFoundError")
    page.click("nav a[data-page=dlq]")
    row = page.locator(f"tr[data-job='{job_id}']")
    expect(row).to_contain_text("ui.until_file")
    marker.write_text("now")
    row.locator("button[data-action=replay]").click()
    confirm(page)
    expect(page.locator(".flash")).to_have_text("Job replayed.")
    expect(row).to_have_count(0)
    server.wait_for_state(job_id, "COMPLETED")
    page = tab.open(f"#/job/{job_id}")
    expect(page.locator("h1 .badge")).to_have_text("COMPLETED")
    expect(page.locator("#result")).to_contain_text(str(marker))
    expect(page.locator(".timeline")).to_contain_text("Attempt 1 failed: FileNotFoundError")


def test_pausing_a_queue_from_the_page_stops_its_claims(server: Server, tab: Page) -> None:
    page = tab.open("#/queues")
    held = page.locator("tr[data-queue=held]")
    held.locator("button:has-text('Pause')").click()
    expect(held.locator(".badge")).to_have_text("paused")
    waiting = server.submit("ui.echo", "held back", queue="held")
    after = server.submit("ui.echo", "goes on")  # enqueued later, on a queue the same workers serve
    server.wait_for_state(after, "COMPLETED")
    assert server.job(waiting)["state"] == "PENDING"
    held.locator("button:has-text('Resume')").click()
    expect(held.locator(".badge")).to_have_count(0)
    server.wait_for_state(waiting, "COMPLETED")


def test_a_cancel_from_the_page_stops_a_running_job(server: Server, tab: Page) -> None:
    job_id = server.submit("ui.forever", "until cancelled")
    server.wait_for_state(job_id, "PROCESSING")
    page = tab.open(f"#/job/{job_id}")
    expect(page.locator("h1 .badge")).to_have_text("PROCESSING")
    page.click("#cancel-job")
    expect(page.locator("#confirm-text")).to_contain_text("It is running")
    confirm(page)
    expect(page.locator(".flash")).to_have_text("Job cancelled.")
    expect(page.locator("h1 .badge")).to_have_text("CANCELLED")

    def slot_freed() -> bool:  # the worker stopped the handler: its slot is free again
        workers = server.api.get("/workers").json()["workers"]
        return bool(workers) and workers[0]["busy"] == 0

    wait_until(slot_freed, what="the worker to stop the cancelled job")
    assert server.job(job_id)["state"] == "CANCELLED"


@pytest.mark.parametrize("server", ["s3cret"], indirect=True)
def test_a_browser_signs_in_once_with_the_token(server: Server, browser: Any) -> None:
    tab = Page(browser, server.url)
    try:
        page = tab.open()
        expect(page).to_have_url(f"{server.url}/ui/login")
        page.fill("input[name=token]", "wrong")
        page.click("button[type=submit]")
        expect(page.locator(".error")).to_have_text("That is not this server's token.")
        page.fill("input[name=token]", "s3cret")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Overview")
        (cookie,) = tab.context.cookies()
        assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("jobqueue_session", True, "Strict")
        assert page.evaluate("document.cookie") == ""  # out of the page's scripts' reach
        page.locator("tr[data-queue=held] button:has-text('Pause')").click()  # a state change: CSRF token sent
        expect(page.locator("tr[data-queue=held] .badge")).to_have_text("paused")
        page.click("#logout")
        expect(page).to_have_url(f"{server.url}/ui/login")
        tab.open("#/queues")
        expect(page).to_have_url(re.compile(r"/ui/login(#.*)?$"))  # the browser keeps the fragment
        # The 401 of the wrong token is a console line of the browser's own, not of the page.
        assert all("401" in problem for problem in tab.problems), tab.problems
    finally:
        tab.close()


#: Text that would run script if it reached the page as markup or as a URL.
XSS = [
    "<script>alert('script')</script>",
    "<img src=x onerror=alert('img')>",
    "<svg onload=alert('svg')><circle r=5></circle></svg>",
    "javascript:alert('url')",
    "\"><script>alert('attr')</script>",
    "'><a href=javascript:alert('href')>x</a>",
    "</pre></textarea><iframe srcdoc=\"<script>alert('frame')</script>\">",
    "{{constructor.constructor('alert(\"template\")')()}}",
    "${alert('template literal')}",
    "<details open ontoggle=alert('details')>",
]
#: Names allow only letters, digits and _ . : - ; these are the hostile ones they do allow.
XSS_NAMES = ["javascript:alert", "javascript:void.0"]


def test_hostile_text_in_every_field_runs_nothing(server: Server, tab: Page) -> None:
    jobs = []
    for i, text in enumerate(XSS):
        jobs.append(server.submit("ui.explode", {"message": text, text: [text]}, idempotency_key=f"{text}-{i}",
                                  rate_key=text))  # fmt: skip
    echoed = server.submit("ui.echo", {text: text for text in XSS})  # its result holds them too
    for name in XSS_NAMES:
        jobs.append(server.submit(name, XSS[0], queue=name))
    for job_id in jobs[: len(XSS)]:
        server.wait_for_state(job_id, "DEAD_LETTERED")
    server.wait_for_state(echoed, "COMPLETED")
    jobs.append(echoed)
    for fragment in ["", "#/jobs", "#/dlq", "#/queues", *(f"#/job/{job_id}" for job_id in jobs)]:
        page = tab.open(fragment)
        expect(page.locator("main h1").first).to_be_visible()
        page.wait_for_load_state("networkidle")
    page = tab.open(f"#/job/{jobs[1]}")
    expect(page.locator("#payload")).to_contain_text(XSS[1])  # shown, as text
    expect(page.locator(".attempt summary")).to_contain_text(f"ValueError: {XSS[1]}")
    assert page.locator("main img, main svg circle, main iframe, main script").count() == 0
    page = tab.open(f"#/job/{echoed}")
    expect(page.locator("#result")).to_contain_text(XSS[2])
    links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert all(href.startswith("#/") for href in links), links


def test_dead_letters_are_purged_when_selected_and_replayed_all_at_once(server: Server, tab: Page) -> None:
    dead = [server.submit("ui.explode", {"message": f"boom {n}"}) for n in range(4)]
    for job_id in dead:
        server.wait_for_state(job_id, "DEAD_LETTERED")
    page = tab.open("#/dlq")
    for job_id in dead[:2]:
        page.locator(f"tr[data-job='{job_id}'] input[type=checkbox]").check()
    page.click("#purge-selected")
    expect(page.locator("#confirm-text")).to_have_text("Delete 2 selected jobs for good?")
    confirm(page)
    expect(page.locator(".flash")).to_have_text("2 jobs deleted.")
    assert [server.api.get(f"/jobs/{j}").status_code for j in dead[:2]] == [404, 404]
    expect(page.locator("tbody tr")).to_have_count(2)
    page.click("#replay-all")
    expect(page.locator("#confirm-text")).to_have_text("Replay all 2 dead-lettered jobs?")
    confirm(page)
    expect(page.locator(".flash")).to_have_text("2 replayed.")

    def failed_twice(job_id: str) -> bool:
        return len(server.api.get(f"/jobs/{job_id}/attempts").json()["attempts"]) == 2

    for job_id in dead[2:]:  # replayed, failed again: back in the DLQ with a second attempt on record
        wait_until(functools.partial(failed_twice, job_id), what="the replayed job to fail again")


def test_limits_are_changed_and_a_schedule_runs_from_the_page(server: Server, tab: Page) -> None:
    page = tab.open("#/queues")
    form = page.locator("form[data-limits=held]")
    form.locator("input[name=concurrency]").fill("2")
    form.locator("input[name=rate]").fill("50/s")
    form.locator("button[type=submit]").click()
    expect(page.locator(".flash")).to_have_text("Limits of held saved.")
    expect(page.locator("tr[data-queue=held] td").nth(3)).to_have_text("rate 50/s (burst 50), concurrency 2")
    limits = {q["name"]: q["limits"] for q in server.api.get("/queues").json()["queues"]}["held"]
    assert (limits["rate"], limits["concurrency"]) == ("50/s", 2)
    bad = page.locator("form[data-limits=held] input[name=rate]")
    bad.fill("fast")
    tab.allowed.append("status of 400")  # the browser's own line for the refused request
    page.locator("form[data-limits=held] button[type=submit]").click()
    expect(page.locator(".flash.error")).to_contain_text("rate")
    page.locator("tr[data-schedule=ui-digest] button:has-text('Run now')").click()
    expect(page.locator(".flash")).to_contain_text("Schedule ui-digest ran: job ")
    job_id = page.locator(".flash").inner_text().rsplit(" ", 1)[1].rstrip(".")
    assert server.wait_for_state(job_id, "COMPLETED")["result"] == {"digest": True}
