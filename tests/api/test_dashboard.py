"""``/ui`` over HTTP: its files, its security (sign-in, cookie, CSRF, CSP), its data routes.

What the page does in a browser is in ``tests/browser``; here the server's side of it.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from jobqueue.api import create_app
from jobqueue.api.dashboard import CSP, STATIC
from jobqueue.api.session import COOKIE, SESSION_SECONDS, Sessions
from jobqueue.app import JobQueue
from jobqueue.backends import Backend
from jobqueue.backends.memory import MemoryBackend
from jobqueue.backends.params import ClaimParams, Completion, Failure, Lease
from jobqueue.job import NewJob
from jobqueue.status import WorkerReport
from tests.api.conftest import AppFactory, client_for, submit

TOKEN = "s3cret-token"
#: The one address any file of the page names that is not this server: SVG's XML namespace.
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def csrf_of(page: str) -> str:
    match = re.search(r'<meta name="jobqueue-csrf" content="([^"]+)">', page)
    assert match is not None, page
    return match[1]


@pytest.fixture
def memory_queue() -> JobQueue:
    return JobQueue(backend=MemoryBackend())


async def test_the_page_and_its_files_come_from_this_server_under_a_strict_csp(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP and "'unsafe-inline'" not in CSP
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text  # only <script src>: the CSP forbids inline scripts anyway
    assets = re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", page.text)
    assert {"/ui/assets/style.css", "/ui/assets/js/app.js", "/ui/assets/icon.svg"} <= set(assets)
    for path in STATIC.rglob("*"):
        if path.is_file():
            url = "/ui/assets/" + path.relative_to(STATIC).as_posix()
            answer = await client.get(url)
            assert answer.status_code == 200 and answer.content == path.read_bytes(), url
            assert answer.headers["content-security-policy"] == CSP, url


def test_no_file_of_the_page_names_another_server_or_writes_markup() -> None:
    for path in STATIC.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        addresses = set(re.findall(r"https?://[^\s\"'`)]+", text)) - {SVG_NAMESPACE}
        assert not addresses, (path.name, addresses)
        if path.suffix == ".js":
            # Values reach the page as text only (dom.js); these would parse them as markup or code.
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
                assert sink not in text, (path.name, sink)
            imports = re.findall(r'from "([^"]+)"', text)
            assert all(name.startswith(".") for name in imports), (path.name, imports)


async def test_a_token_server_sends_a_browser_to_sign_in_and_gives_it_a_strict_cookie(memory_queue: JobQueue) -> None:
    async with client_for(create_app(memory_queue, token=TOKEN)) as browser:
        first = await browser.get("/ui")
        assert first.status_code == 303 and first.headers["location"] == "/ui/login"
        form = await browser.get("/ui/login")
        assert form.status_code == 200 and 'name="token"' in form.text
        assert form.headers["content-security-policy"] == CSP
        wrong = await browser.post(
            "/ui/login", content=b"token=guess", headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert wrong.status_code == 401 and "not this server" in wrong.text and "set-cookie" not in wrong.headers
        signed = await browser.post("/ui/login", data={"token": TOKEN})
        assert signed.status_code == 303 and signed.headers["location"] == "/ui"
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Path=/;" in cookie and f"Max-Age={SESSION_SECONDS}" in cookie
        page = await browser.get("/ui")
        assert page.status_code == 200 and "set-cookie" not in page.headers
        assert (await browser.get("/queues")).status_code == 200  # the API, by the cookie
        csrf = csrf_of(page.text)
        no_csrf = await browser.post("/queues/mail/pause")
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]
        bad_csrf = await browser.post("/queues/mail/pause", headers={"x-csrf-token": csrf[::-1]})
        assert bad_csrf.status_code == 403
        assert (await browser.post("/queues/mail/pause", headers={"x-csrf-token": csrf})).status_code == 200
        assert await memory_queue.paused_queues() == ["mail"]
        out = await browser.post("/ui/logout", headers={"x-csrf-token": csrf})
        assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
        assert (await browser.get("/ui")).status_code == 303


async def test_clients_with_the_bearer_token_need_no_cookie_and_no_csrf(memory_queue: JobQueue) -> None:
    app = create_app(memory_queue, token=TOKEN)
    async with client_for(app) as anonymous:
        assert (await anonymous.get("/queues")).status_code == 401  # an API route answers 401, not a redirect
        assert (await anonymous.get("/ui/api/overview")).status_code == 303
        for cookie in (Sessions("other-token").issue(), Sessions(TOKEN).issue(now=0), "garbage", "1.2.3"):
            # Signed with another token, expired, or not a session at all: no session.
            sent = await anonymous.get("/ui", headers={"cookie": f"{COOKIE}={cookie}"})
            assert sent.status_code == 303, cookie
    async with client_for(app, authorization=f"Bearer {TOKEN}") as client:
        assert (await client.post("/queues/mail/pause")).status_code == 200
        overview = (await client.get("/ui/api/overview")).json()
        assert {q["name"]: q["paused"] for q in overview["queues"]}["mail"] is True


async def test_without_a_token_the_page_still_carries_a_csrf_token(memory_queue: JobQueue) -> None:
    async with client_for(create_app(memory_queue)) as browser:
        page = await browser.get("/ui")
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        assert (await browser.post("/queues/mail/pause")).status_code == 403  # the cookie is sent: CSRF needed
        csrf = csrf_of(page.text)
        assert (await browser.post("/queues/mail/pause", headers={"x-csrf-token": csrf})).status_code == 200
        assert (await browser.get("/ui/login")).headers["location"] == "/ui"  # nothing to sign in to
    async with client_for(create_app(memory_queue)) as curl:
        assert (await curl.post("/queues/mail/resume")).status_code == 200  # a client without the cookie
        cross = await curl.get("/ui", headers={"sec-fetch-site": "cross-site"})
        assert cross.status_code == 403  # another site's page is refused, as for the whole API


async def test_the_dashboard_works_mounted_under_a_prefix(memory_queue: JobQueue) -> None:
    outer = Starlette(routes=[Mount("/jq", app=create_app(memory_queue, token=TOKEN))])
    async with client_for(outer) as browser:
        assert (await browser.get("/jq/ui")).headers["location"] == "/jq/ui/login"
        signed = await browser.post("/jq/ui/login", data={"token": TOKEN})
        assert signed.headers["location"] == "/jq/ui" and "Path=/jq;" in signed.headers["set-cookie"]
        page = (await browser.get("/jq/ui")).text
        assert '<meta name="jobqueue-base" content="/jq">' in page and 'src="/jq/ui/assets/js/app.js"' in page
        assert (await browser.get("/jq/ui/assets/js/app.js")).status_code == 200
        assert (await browser.get("/jq/queues")).status_code == 200


async def test_workers_list_the_live_reports(client: httpx.AsyncClient, backend: Backend) -> None:
    report = WorkerReport("host-1:42:abc", "host-1", 42, ("default", "mail"), 8, 3, 1000.0, 1005.0, "0.1.0",
                          {"completed": 7, "failed": 1}, (1, 2, 3))  # fmt: skip
    await backend.report_worker(report.id, report.to_json(), ttl=30)
    await backend.report_worker("garbled", "{not json", ttl=30)  # another version's, say: left out
    workers = (await client.get("/workers")).json()["workers"]
    assert [(w["id"], w["host"], w["pid"], w["queues"], w["busy"], w["concurrency"]) for w in workers] == [
        ("host-1:42:abc", "host-1", 42, ["default", "mail"], 3, 8)
    ]
    assert workers[0]["counters"] == {"completed": 7, "failed": 1}
    assert workers[0]["reported_at"].startswith("1970-01-01T00:16:45")


async def test_a_jobs_failed_attempts_come_with_their_tracebacks(client: httpx.AsyncClient, backend: Backend) -> None:
    job_id = await submit(client, max_retries=2)
    (claimed,) = await backend.claim(ClaimParams(["default"], "w-1", 1))
    await backend.fail([Failure(Lease(job_id, claimed.lease_token), "KeyError: 'x'", 0.0, traceback="Traceback ...")])
    body = (await client.get(f"/jobs/{job_id}/attempts")).json()
    assert [(a["attempt"], a["error"], a["traceback"], a["worker_id"]) for a in body["attempts"]] == [
        (1, "KeyError: 'x'", "Traceback ...", "w-1")
    ]
    missing = await client.get("/jobs/01890000-0000-7000-8000-000000000000/attempts")
    assert missing.status_code == 404 and missing.json()["error"] == "job not found"


async def test_only_a_finished_job_is_deleted(client: httpx.AsyncClient, backend: Backend) -> None:
    waiting, done = await submit(client, "a"), await submit(client, "b")
    (claimed,) = [j for j in await backend.claim(ClaimParams(["default"], "w", 2)) if j.id == done]
    await backend.release([Lease(waiting, (await backend.get(waiting)).lease_token)])  # type: ignore[union-attr]
    await backend.complete([Completion(Lease(done, claimed.lease_token), None)])
    refused = await client.delete(f"/jobs/{waiting}")
    assert refused.status_code == 409 and refused.json()["state"] == "PENDING"
    assert (await client.delete(f"/jobs/{done}")).json() == {"job_id": done, "deleted": True}
    assert (await client.get(f"/jobs/{done}")).status_code == 404
    assert (await client.delete(f"/jobs/{done}")).status_code == 404


async def test_jobs_are_found_by_key_and_filtered_by_creation_time(client: httpx.AsyncClient) -> None:
    first = await submit(client, "a", idempotency_key="order-<1>")
    await submit(client, "b", queue="mail")
    found = (await client.get("/jobs", params={"idempotency_key": "order-<1>"})).json()
    assert [j["id"] for j in found["jobs"]] == [first] and found["next_cursor"] is None
    assert (await client.get("/jobs", params={"idempotency_key": "order-<1>", "queue": "mail"})).json()["jobs"] == []
    assert (await client.get("/jobs", params={"idempotency_key": "nope"})).json()["jobs"] == []
    everything = await client.get("/jobs", params={"created_after": "2000-01-01T00:00:00Z"})
    assert len(everything.json()["jobs"]) == 2
    assert (await client.get("/jobs", params={"created_before": "2000-01-01T00:00:00"})).json()["jobs"] == []
    assert (await client.get("/jobs", params={"created_after": "2999-01-01T00:00:00Z"})).json()["jobs"] == []
    assert (await client.get("/jobs", params={"idempotency_key": "order-<1>", "created_after": "2999-01-01"})).json()[
        "jobs"
    ] == []


async def test_creation_time_filters_go_by_created_at(client: httpx.AsyncClient, backend: Backend) -> None:
    await backend.enqueue([NewJob("z", id="order-17")])  # an id of the caller's: sorts after every UUID
    assert (await client.get("/jobs", params={"created_after": "2999-01-01T00:00:00Z"})).json()["jobs"] == []


async def test_bad_time_filters_are_refused(client: httpx.AsyncClient) -> None:
    bad = await client.get("/jobs", params={"created_after": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("created_after")


async def test_the_overview_holds_queues_workers_and_schedules(make_app: AppFactory) -> None:
    async with client_for(make_app()) as client:
        await submit(client, "x", queue="mail")
        body = (await client.get("/ui/api/overview")).json()
        assert set(body) == {"backend", "version", "queues", "workers", "schedules", "keys"}
        mail = next(q for q in body["queues"] if q["name"] == "mail")
        assert mail["states"]["PENDING"] == 1 and mail["depth"] == 1 and mail["paused"] is False
        pulse = (await client.get("/ui/api/pulse", params={"after": 0})).json()
        assert pulse["window"] == 900 and isinstance(pulse["points"], list)


def test_static_files_ship_in_the_package() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    shipped = re.search(r"^jobqueue = \[(.*)\]$", pyproject, re.M)
    assert shipped is not None
    patterns = [p.strip().strip('"') for p in shipped[1].split(",")]
    for path in STATIC.rglob("*"):
        if path.is_file():
            relative = "api/" + path.relative_to(STATIC.parent).as_posix()
            assert any(Path(relative).match(p) and relative.count("/") == p.count("/") for p in patterns), relative


async def test_another_apps_odd_cookie_does_not_hide_the_session(memory_queue: JobQueue) -> None:
    session = Sessions(TOKEN).issue()
    async with client_for(create_app(memory_queue, token=TOKEN)) as browser:
        sent = await browser.get("/ui", headers={"cookie": f'prefs={{"a":1}}; x="unclosed; {COOKIE}={session}'})
        assert sent.status_code == 200


async def test_a_cookie_that_is_not_ascii_is_no_session_and_no_error(memory_queue: JobQueue) -> None:
    odd = {b"cookie": f"{COOKIE}=1.\xe9.\xff".encode("latin-1")}
    async with client_for(create_app(memory_queue, token=TOKEN)) as browser:
        assert (await browser.get("/ui", headers=odd)).status_code == 303
        assert (await browser.get("/queues", headers=odd)).status_code == 401
