"""A corpus of hostile requests thrown at a real ``jobqueue serve`` on every backend.

Each answer must be the one docs/http-api.md documents: never a 5xx but 503, every error a JSON
``{"error": "..."}``. Odd but valid submissions must read back exactly as sent. Afterwards the
server still answers, its memory grew by less than a bound, and its log holds no traceback and no
raw control character from a request. One server per backend serves the whole module; the
aftermath test is defined last, so it runs after the corpus of its backend.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.test_hostile_clients import answer_of, connect, rss_kib
from tests.api.test_serve_process import Server, wait_until
from tests.backends import SHARED_STORES, StoreURL

pytestmark = pytest.mark.slow

BACKENDS = ["memory", "sqlite", "postgres", "redis"]
#: --max-body-bytes, given explicitly (it is also the default): 100k levels of nesting fit under it.
BODY_LIMIT = 1 << 20
RSS_GROWTH_LIMIT_KIB = 60 * 1024
#: Follows every control character a request carries: a raw CR in the log would start a line with it
#: (the log is read in text mode, where a CR ends a line).
MARK = "FORGED"
DEEP = 100_000
#: What a log line must not hold: control characters other than tab and the newline that ends it.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class Served:
    backend: str
    server: Server
    http: httpx.Client
    rss_before_kib: int
    seed: str  # a COMPLETED job


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    name: str = request.param
    tmp = tmp_path_factory.mktemp(f"hostile-{name}")
    store: StoreURL = ("memory://", lambda: None) if name == "memory" else SHARED_STORES[name](tmp)
    url, drop = store
    try:
        # The later --backend and --log-level win over those Server passes (click keeps the last);
        # INFO, so that the workers' lines about failed jobs are in the log that is checked.
        server = Server(tmp / "unused.db", "--backend", url, "--log-level", "INFO", "--max-body-bytes", f"{BODY_LIMIT}")
        try:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                assert http.get("/ready").json()["backend"] == name
                seed = submit(http, {"payload": "seed"})
                wait_for_state(http, seed, "COMPLETED")
                yield Served(name, server, http, rss_kib(server), seed)
        finally:
            server.stop()
    finally:
        drop()


def submit(http: httpx.Client, body: dict[str, Any]) -> str:
    response = http.post("/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def wait_for_state(http: httpx.Client, job_id: str, state: str) -> dict[str, Any]:
    wait_until(lambda: http.get(f"/jobs/{job_id}").json()["state"] == state, timeout=10, what=f"{job_id} {state}")
    job: dict[str, Any] = http.get(f"/jobs/{job_id}").json()
    return job


def check_answer(status: int, body: Any, expected: int, says: str) -> None:
    assert status < 500 or status == 503, body
    assert status == expected, body
    if status >= 400:
        assert isinstance(body, dict) and isinstance(body.get("error"), str), body
        assert body["error"].startswith(says), body


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON texts: 1 is not 1.0 nor true, -0.0 is not 0.0, and key order counts."""
    return json.dumps(a) == json.dumps(b)


def nested(depth: int, leaf: Any = 1, key: str | None = None) -> Any:
    """``leaf`` inside ``depth`` lists, or objects of one ``key``."""
    value = leaf
    for _ in range(depth):
        value = [value] if key is None else {key: value}
    return value


# ---- the corpus over httpx ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # "<seed>" stands for the id of a COMPLETED job
    status: int
    says: str = ""  # how the error message starts
    json: Any = None
    content: bytes | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    chunked: bool = False  # send the content without a Content-Length


def job(**fields: Any) -> dict[str, Any]:
    return {"payload": 1, **fields}


def body(text: bytes) -> Case:
    return Case(f"body {text[:40]!r}", "POST", "/jobs", 400, "body:", content=text)


def bad(name: str, status: int, field: str, **fields: Any) -> Case:
    return Case(name, "POST", "/jobs", status, f"{field}:", json=job(**fields))


def typed(content_type: bytes, status: int, content: bytes = b'{"payload": 1}') -> Case:
    says = "body:" if status == 400 else ""
    return Case(
        f"Content-Type {content_type!r}",
        "POST",
        "/jobs",
        status,
        says,
        content=content,
        headers=((b"content-type", content_type),),
    )


def not_found(id_text: str) -> str:
    """A job id holding "/" (even as %2F) matches no route; any other is looked up and not found."""
    return "Not Found" if "/" in id_text else "job not found"


def get(path: str, status: int, says: str = "", *headers: tuple[bytes, bytes]) -> Case:
    sent = "".join(f" {name.decode()}={value!r}" for name, value in headers)
    return Case(f"GET {path[:60]}{sent}", "GET", path, status, says, headers=headers)


WRONG_METHODS = [("PUT", "/jobs/<seed>"), ("DELETE", "/jobs"), ("PUT", "/jobs"), ("PATCH", "/dlq"),
                 ("GET", "/jobs/<seed>/cancel"), ("GET", "/dlq/<seed>/retry"), ("POST", "/health"),
                 ("POST", "/metrics"), ("POST", "/queues"), ("POST", "/ready"), ("TRACE", "/health"),
                 ("OPTIONS", "/jobs"), ("PUT", "/jobs/batch")]  # fmt: skip
INJECTIONS = ["'; DROP TABLE jobs; --", "]] .. redis.call('FLUSHALL') .. [[", "*", "{tag}", "<script>alert(1)</script>"]
HUGE = str(10**400).encode()
TOO_LARGE = "request body is larger than the limit"

CASES = [
    # Bodies over the limit, declared or streamed.
    Case("oversized body", "POST", "/jobs", 413, TOO_LARGE, json={"payload": "x" * BODY_LIMIT}),
    Case("oversized body, chunked", "POST", "/jobs", 413, TOO_LARGE, content=b"x" * (BODY_LIMIT + 1), chunked=True),
    Case("oversized batch", "POST", "/jobs/batch", 413, TOO_LARGE, content=b"[" * (BODY_LIMIT + 1)),
    # Nesting far past any parser's depth, and one level past what a payload may hold.
    body(b"[" * DEEP + b"]" * DEEP),
    body(b'{"payload": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    body(b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    Case("batch nested 100k", "POST", "/jobs/batch", 400, "body:", content=b'{"jobs": ' + b"[" * DEEP + b"]" * DEEP),
    bad("payload nested 255 levels", 400, "payload", payload=nested(255)),
    # Not JSON: NaN and infinities, invalid UTF-8, numbers beyond a double, BOM, UTF-16, two documents.
    body(b'{"payload": NaN}'),
    body(b'{"payload": Infinity}'),
    body(b'{"payload": -Infinity}'),
    body(b'{"payload": 1, "delay": NaN}'),
    body(b'{"payload": "\xff\xfe"}'),
    body(b"\xff\xfe\xfd"),
    body(b'{"payload": "\\ud800"}'),
    body(b'{"payload": ' + HUGE + b"}"),
    body(b'{"payload": 1, "priority": -' + HUGE + b"}"),
    body(b'{"payload": 1e400}'),
    body(b'\xef\xbb\xbf{"payload": 1}'),
    body('{"payload": 1}'.encode("utf-16")),
    body(b'{"payload": 1}{"payload": 2}'),
    body(b""),
    body(b"   "),
    body(b"null"),
    body(b"[]"),
    # orjson reads integers past 64 bits as floats: accepted, though not read back as sent.
    Case("payload 2**64", "POST", "/jobs", 202, content=b'{"payload": 18446744073709551616}'),
    # A key given twice: the last wins, here out of range.
    Case(
        "priority twice", "POST", "/jobs", 400, "priority:", content=b'{"payload": 1, "priority": 1, "priority": 1001}'
    ),
    # Any content type is read as JSON (documented); a form or multipart body is not JSON.
    typed(b"text/plain", 202),
    typed(b"application/json; charset=latin-1", 202),
    typed(b"\xff", 202),
    Case("no content type", "POST", "/jobs", 202, content=b'{"payload": 1}'),
    typed(b"application/x-www-form-urlencoded", 400, b"payload=1"),
    typed(b"multipart/form-data; boundary=b", 400, b'--b\r\n\r\n{"payload": 1}\r\n--b--\r\n'),
    # NUL: payloads may hold it (read back below); keys, names, ids, filters and cursors may not.
    bad("NUL in key", 400, "idempotency_key", idempotency_key="k\x00"),
    bad("NUL in queue", 400, "queue", queue="q\x00"),
    bad("NUL in task", 400, "task", task="t\x00"),
    get("/jobs/%00", 404, "job not found"),
    Case("cancel %00", "POST", "/jobs/%00/cancel", 404, "job not found"),
    Case("retry %00", "POST", "/dlq/%00/retry", 404, "job not found in DLQ"),
    get("/jobs?queue=%00", 400, "queue:"),
    get("/jobs?task=%00", 400, "task:"),
    get("/jobs?cursor=%00", 400, "cursor:"),
    get("/dlq?cursor=%00", 400, "cursor:"),
    # Invalid UTF-8 and control characters, percent-encoded (raw bytes: see RAW_CASES).
    get("/jobs/%ff%fe", 404, "job not found"),
    get(f"/jobs/%0d%0a{MARK}%1b%5b31m{MARK}", 404, "job not found"),
    get("/jobs?queue=%ff", 400, "queue:"),
    get("/jobs?state=%ff", 400, "state:"),
    # A cursor is compared as a job id: any string without NUL pages from where it would sort.
    get("/jobs?cursor=%ff", 200),
    get("/jobs?cursor=%27%3B%20DROP%20TABLE%20jobs%3B%20--", 200),
    # Path traversal, through the routes and the static assets of /docs.
    get("/jobs/..%2f..%2fetc%2fpasswd", 404, "Not Found"),
    get("/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404, "Not Found"),
    get("/docs/assets/..%2f..%2f..%2f..%2fetc%2fpasswd", 404, "Not Found"),
    get("/docs/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 404, "Not Found"),
    get("/docs/assets/%5c..%5c..%5cetc%5cpasswd", 404, "Not Found"),
    get("/docs/assets/swagger-ui.css%00", 404, "Not Found"),
    # Injection text as ids, filters, queue and task names (keys and payloads take it: see below).
    *(get(f"/jobs/{quote(text, safe='')}", 404, not_found(text)) for text in INJECTIONS),
    *(
        Case(f"cancel {text}", "POST", f"/jobs/{quote(text, safe='')}/cancel", 404, not_found(text))
        for text in INJECTIONS
    ),
    *(Case(f"retry {text}", "POST", f"/dlq/{quote(text, safe='')}/retry", 404, not_found(text)) for text in INJECTIONS),
    *(bad(f"queue {text}", 400, "queue", queue=text) for text in INJECTIONS),
    *(bad(f"task {text}", 400, "task", task=text) for text in INJECTIONS),
    *(get(f"/jobs?queue={quote(text, safe='')}", 400, "queue:") for text in INJECTIONS),
    *(get(f"/jobs?task={quote(text, safe='')}", 400, "task:") for text in INJECTIONS),
    get("/jobs?state=%27%3B%20DROP%20TABLE%20jobs%3B%20--", 400, "state:"),
    # Too long.
    bad("queue of 129", 400, "queue", queue="q" * 129),
    bad("task of 129", 400, "task", task="t" * 129),
    bad("key of 256", 400, "idempotency_key", idempotency_key="k" * 256),
    bad("key of 100k", 400, "idempotency_key", idempotency_key="k" * 100_000),
    get("/jobs?queue=" + "q" * 129, 400, "queue:"),
    get("/jobs?cursor=" + "c" * 65, 400, "cursor:"),
    get("/dlq?cursor=" + "c" * 65, 400, "cursor:"),
    get("/jobs/" + "i" * 65, 400, "job_id:"),
    Case("cancel id of 65", "POST", "/jobs/" + "i" * 65 + "/cancel", 400, "job_id:"),
    Case("retry id of 65", "POST", "/dlq/" + "i" * 65 + "/retry", 400, "job_id:"),
    # Out of range, wrong types, unknown fields, missing payloads.
    *(
        bad(f"priority {value!r}", 400, "priority", priority=value)
        for value in (-1001, 1001, -(2**63), 2**64 - 1, 1.5, "1", True)
    ),
    *(bad(f"delay {value!r}", 400, "delay", delay=value) for value in (-1, 1e300, -(2**63), "1")),
    *(bad(f"run_at {value!r}", 400, "run_at", run_at=value) for value in (-1, 1e300, 2**63)),
    bad("delay and run_at", 400, "run_at", delay=1, run_at=1),
    *(bad(f"timeout {value!r}", 400, "timeout", timeout=value) for value in (0, -1, 1e300)),
    *(bad(f"max_retries {value!r}", 400, "max_retries", max_retries=value) for value in (-1, 101, 2**64)),
    bad("unknown field", 400, "__proto__", __proto__={"admin": True}),
    bad("payload null", 400, "payload", payload=None),
    bad("payload empty", 400, "payload", payload=""),
    Case("payload missing", "POST", "/jobs", 400, "payload:", json={"priority": 1}),
    Case("batch empty", "POST", "/jobs/batch", 400, "jobs:", json={"jobs": []}),
    Case("batch of 1001", "POST", "/jobs/batch", 400, "jobs:", json={"jobs": [job()] * 1001}),
    Case("batch not a list", "POST", "/jobs/batch", 400, "jobs:", json={"jobs": job()}),
    Case("batch bad item", "POST", "/jobs/batch", 400, "jobs[1].payload:", json={"jobs": [job(), job(payload=None)]}),
    Case("batch extra field", "POST", "/jobs/batch", 400, "x:", json={"jobs": [job()], "x": 1}),
    # Query parameters.
    *(get(f"/jobs?limit={value}", 400, "limit:") for value in ("0", "-1", "abc", "1.5", str(10**400))),
    get("/dlq?limit=0", 400, "limit:"),
    get("/metrics?format=xml", 400, "format:"),
    # Headers that third-party code parses: Prometheus' Accept, Starlette's Range.
    get("/metrics", 200, "", (b"accept", b"text/plain;version=garbage")),
    get("/metrics", 200, "", (b"accept", b"application/openmetrics-text;version=1.x")),
    get("/metrics", 200, "", (b"accept", b"text/plain;q=\xff")),
    get("/docs/assets/swagger-ui.css", 200, "", (b"range", b"bytes=5-1")),
    get("/docs/assets/swagger-ui.css", 200, "", (b"range", b"bytes=99999999999-")),
    get("/docs/assets/swagger-ui.css", 200, "", (b"range", b"items=0-1")),
    # What only a web page sends.
    get("/metrics", 403, "cross-site", (b"origin", b"http://evil.example")),
    get("/metrics", 403, "cross-site", (b"origin", b"null")),
    get("/metrics", 403, "cross-site", (b"sec-fetch-site", b"cross-site")),
    get("/metrics", 403, "Host", (b"host", b"evil.example")),
    get("/metrics", 200, "", (b"authorization", b"Bearer \xff")),
    # Every documented route: wrong methods, garbage beside them, a real job in the wrong state.
    *(Case(f"{method} {path}", method, path, 405, "Method Not Allowed") for method, path in WRONG_METHODS),
    get("/nope", 404, "Not Found"),
    get("/jobs/<seed>/nope", 404, "Not Found"),
    *(get(f"{path}?x=%00&%ff=%ff", 200) for path in ("/health", "/ready", "/metrics", "/queues", "/dlq", "/jobs")),
    get("/openapi.json", 200),
    get("/docs", 200),
    get("/jobs/<seed>", 200),
    get("/jobs/<SEED>", 404, "job not found"),  # ids are matched exactly, case included
    get("/jobs/<seed>%20", 404, "job not found"),
    Case("cancel a completed job", "POST", "/jobs/<seed>/cancel", 409, "cannot cancel"),
    Case("retry a completed job", "POST", "/dlq/<seed>/retry", 404, "job not found in DLQ"),
]


def send(http: httpx.Client, case: Case, seed: str) -> httpx.Response:
    path = case.path.replace("<seed>", seed).replace("<SEED>", seed.upper())
    headers = list(case.headers)
    if case.json is not None:
        return http.request(case.method, path, json=case.json, headers=headers)
    content = case.content
    if case.chunked and content is not None:
        pieces = [content[i : i + 65536] for i in range(0, len(content), 65536)]
        return http.request(case.method, path, content=iter(pieces), headers=headers)
    return http.request(case.method, path, content=content, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_http_corpus(served: Served, case: Case) -> None:
    response = send(served.http, case, served.seed)
    answer = response.json() if "json" in response.headers.get("content-type", "") else response.text[:200]
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json", answer
    check_answer(response.status_code, answer, case.status, case.says)


# ---- the corpus over raw sockets: what an HTTP library would not send -----------------------------


def raw(head: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    return b"\r\n".join([head, b"Host: 127.0.0.1", b"Connection: close", *headers, b"", body])


MALFORMED = "malformed HTTP request:"
RAW_CASES: list[tuple[str, bytes, int, str]] = [
    ("UTF-8 invalid in path", raw(b"GET /jobs/\xff\xfe HTTP/1.1"), 400, MALFORMED),
    ("UTF-8 invalid in query", raw(b"GET /jobs?queue=\xff HTTP/1.1"), 400, MALFORMED),
    ("UTF-8 invalid in cursor", raw(b"GET /jobs?cursor=\xff HTTP/1.1"), 400, MALFORMED),
    ("NUL in path", raw(b"GET /jobs/\x00 HTTP/1.1"), 400, MALFORMED),
    ("ESC in path", raw(b"GET /jobs/\x1b[31m HTTP/1.1"), 400, MALFORMED),
    ("CR in path", raw(b"GET /jobs/a\rFORGED HTTP/1.1"), 400, MALFORMED),
    ("space in path", raw(b"GET /jobs/a b HTTP/1.1"), 400, MALFORMED),
    ("bare CR in a header", raw(b"GET /health HTTP/1.1", b"X-A: a\rFORGED: 1"), 400, MALFORMED),
    ("bare LF in a header", raw(b"GET /health HTTP/1.1", b"X-A: a\nFORGED: 1"), 400, MALFORMED),
    ("NUL in a header", raw(b"GET /health HTTP/1.1", b"X-A: a\x00FORGED"), 400, MALFORMED),
    ("folded header", raw(b"GET /health HTTP/1.1", b"X-A: a", b" FORGED"), 400, MALFORMED),
    ("header bytes \\xff", raw(b"GET /health HTTP/1.1", b"X-A: \xff\xfe"), 200, ""),
    ("Host \\xff", b"GET /metrics HTTP/1.1\r\nHost: \xff\r\nConnection: close\r\n\r\n", 403, "Host"),
    ("dot segments", raw(b"GET /../../etc/passwd HTTP/1.1"), 404, "Not Found"),
    ("dot segments in a job path", raw(b"GET /jobs/../../etc/passwd HTTP/1.1"), 404, "Not Found"),
    ("dot segments in assets", raw(b"GET /docs/assets/../../../../../etc/passwd HTTP/1.1"), 404, "Not Found"),
    ("double slash", raw(b"GET //jobs HTTP/1.1"), 404, "Not Found"),
    ("Content-Length 10**12", raw(b"POST /jobs HTTP/1.1", b"Content-Length: 1000000000000"), 413, TOO_LARGE),
    ("Content-Length overflow", raw(b"POST /jobs HTTP/1.1", b"Content-Length: " + b"9" * 400), 400, MALFORMED),
    ("Content-Length +5", raw(b"POST /jobs HTTP/1.1", b"Content-Length: +5"), 400, MALFORMED),
    ("Content-Length \\xff", raw(b"POST /jobs HTTP/1.1", b"Content-Length: \xff"), 400, MALFORMED),
    (
        "Expect with an oversized body",
        raw(b"POST /jobs HTTP/1.1", b"Expect: 100-continue", b"Content-Length: 99999999"),
        413,
        TOO_LARGE,
    ),
    (
        "chunk size overflow",
        raw(b"POST /jobs HTTP/1.1", b"Transfer-Encoding: chunked", body=b"f" * 20 + b"\r\nx\r\n"),
        400,
        MALFORMED,
    ),
    (
        "chunk extension bytes",
        raw(b"POST /jobs HTTP/1.1", b"Transfer-Encoding: chunked", body=b'e;\xff=\x00\r\n{"payload": 1}\r\n0\r\n\r\n'),
        400,
        MALFORMED,
    ),
    (
        "NUL in a trailer",
        raw(b"POST /jobs HTTP/1.1", b"Transfer-Encoding: chunked", body=b'e\r\n{"payload": 1}\r\n0\r\nX: \x00\r\n\r\n'),
        400,
        MALFORMED,
    ),
    ("unknown transfer coding", raw(b"POST /jobs HTTP/1.1", b"Transfer-Encoding: x"), 400, MALFORMED),
    ("lower-case method", raw(b"get /health HTTP/1.1"), 400, MALFORMED),
    ("HTTP/9.9", raw(b"GET /health HTTP/9.9"), 400, MALFORMED),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, MALFORMED),
    (
        "h2c upgrade",
        raw(b"GET /health HTTP/1.1", b"Upgrade: h2c", b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"),
        200,
        "",
    ),
]


@pytest.mark.parametrize(("request_bytes", "status", "says"), [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES])
def test_raw_corpus(served: Served, request_bytes: bytes, status: int, says: str) -> None:
    with connect(served.server) as sock:
        sock.sendall(request_bytes)
        answer = answer_of(sock)
    check_answer(*answer, status, says)


# ---- odd but valid: stored and read back exactly -------------------------------------------------

PAYLOADS: dict[str, Any] = {
    # orjson writes at most 254 levels: the deepest payload accepted, inside a job and a page of jobs.
    "deepest list": nested(254),
    "deepest object": nested(254, "leaf", key="k"),
    "64-bit integers": [2**64 - 1, -(2**63), 2**53 + 1, 0],
    "floats": [1e308, -1e308, 5e-324, 0.1, -0.0, 1.0, 1.5e-7],
    "unicode": f"snow \u2603 astral \U0001f600 rtl \u202e bom \ufeff ls \u2028 ps \u2029 c1 \x85 del \x7f "
    f"nul \x00{MARK} esc \x1b[31m{MARK} cr \r{MARK} lf \n{MARK} tab \t combining e\u0301",
    "odd keys": {"": 1, "\x00": 2, "$where": 3, "__proto__": {"admin": True}, "\u2603": 4, "a.b": 5, " ": 6},
    "injection": {
        f"{i}": text
        for i, text in enumerate(
            [*INJECTIONS, '" OR 1=1 --', "]=]", "${jndi:ldap://x}{{7*7}}", "%s%n%x", "\\u0000 \\x00"]
        )
    },
    "escapes": '\\"\\\\"/\\/',
    "empties": {"a": [], "b": {}, "c": "", "d": [[]], "e": False, "f": None},
    "true": True,
    "zero": 0,
    "wide array": list(range(100_000)),
    "many keys": {f"k{i}": i for i in range(20_000)},
    "near the body limit": "x" * (BODY_LIMIT - 100),
}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_an_odd_payload_reads_back_exactly(served: Served, payload: Any) -> None:
    job_id = submit(served.http, {"payload": payload})
    stored = wait_for_state(served.http, job_id, "COMPLETED")  # the echo task: its result is its payload
    assert same_json(stored["payload"], payload)
    assert same_json(stored["result"], payload)


def test_a_key_given_twice_reads_back_as_the_parser_took_it(served: Served) -> None:
    response = served.http.post("/jobs", content=b'{"payload": {"a": "first", "a": "last"}, "payload": ["x"]}')
    assert response.status_code == 202
    assert wait_for_state(served.http, response.json()["job_id"], "COMPLETED")["payload"] == ["x"]


#: The longest names there are, of every character they may hold; no worker serves the queue.
QUEUE = ("Q_" + "a.b:c-d_0" * 15)[:128]
TASK = ("T." + "x:y-z_9." * 17)[:128]
KEYS = ["plain", *INJECTIONS, "?", "[a-z]*", "]=]", "%s%n", " ", "\u2603\U0001f600", "k" * 255]


def test_odd_names_and_keys_are_stored_as_given_and_matched_exactly(served: Served) -> None:
    http = served.http
    # "plain" first: a key taken as a pattern ("*", "?", "[a-z]*") would then find it and be a duplicate.
    ids = {key: submit(http, {"payload": key, "idempotency_key": key, "queue": QUEUE}) for key in KEYS}
    for key, job_id in ids.items():
        stored = http.get(f"/jobs/{job_id}").json()
        assert (stored["idempotency_key"], stored["queue"], stored["payload"]) == (key, QUEUE, key)
        again = http.post("/jobs", json={"payload": "again", "idempotency_key": key, "queue": QUEUE})
        assert again.status_code == 409 and again.json()["job_id"] == job_id, key
    listed = http.get("/jobs", params={"queue": QUEUE, "limit": 1000}).json()["jobs"]
    assert {j["id"] for j in listed} == set(ids.values())

    unknown = http.post("/jobs", json={"payload": 1, "task": TASK, "queue": QUEUE})
    assert unknown.status_code == 202 and TASK in unknown.json()["warning"]
    assert http.get(f"/jobs/{unknown.json()['job_id']}").json()["task"] == TASK
    cancelled = http.post(f"/jobs/{ids['plain']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"
    again = http.post(f"/jobs/{ids['plain']}/cancel")
    assert again.status_code == 409 and again.json()["state"] == "CANCELLED"


def test_a_failing_job_with_control_characters_goes_through_the_dlq_and_back(served: Served) -> None:
    http = served.http
    payload = f"\x00{MARK}\r{MARK}\r\n{MARK}\x1b[2J{MARK}\x07\x08"
    job_id = submit(http, {"payload": payload, "task": "fail"})
    dead = wait_for_state(http, job_id, "DEAD_LETTERED")
    assert dead["payload"] == payload and dead["error"].startswith("PermanentError: refused")
    assert job_id in {j["id"] for j in http.get("/dlq", params={"limit": 1000}).json()["jobs"]}
    retried = http.post(f"/dlq/{job_id}/retry")
    assert retried.status_code == 202 and retried.json() == {"status": "requeued", "job_id": job_id}
    assert wait_for_state(http, job_id, "DEAD_LETTERED")["retry_count"] == 1  # one attempt since the replay


# ---- afterwards (defined last: runs after the corpus of its backend) -------------------------------


def test_the_server_is_unharmed_afterwards(served: Served) -> None:
    assert served.http.get("/health").status_code == 200
    assert served.http.get("/ready").status_code == 200
    grown = rss_kib(served.server) - served.rss_before_kib
    assert grown < RSS_GROWTH_LIMIT_KIB, f"RSS grew by {grown} KiB over the corpus"
    log = "".join(served.server.lines)
    assert "Traceback" not in log, log[-4000:]
    assert not [line for line in served.server.lines if CONTROL.search(line)]
    assert not [line for line in served.server.lines if line.startswith(MARK)]
