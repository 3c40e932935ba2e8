"""Bearer-token authentication and the refusal to expose an open API."""

from __future__ import annotations

import pytest

from jobqueue.api.auth import check_bind, is_loopback
from jobqueue.errors import ConfigurationError
from tests.api.conftest import AppFactory, client_for


async def test_every_route_but_health_needs_the_token(make_app: AppFactory) -> None:
    app = make_app(token="s3cret")
    async with client_for(app) as anonymous:
        for method, path in [("POST", "/jobs"), ("POST", "/jobs/batch"), ("GET", "/jobs/x"), ("GET", "/dlq"),
                             ("GET", "/metrics"), ("GET", "/ready"), ("GET", "/docs"), ("GET", "/nope")]:  # fmt: skip
            response = await anonymous.request(method, path, json={"payload": 1})
            assert response.status_code == 401, (method, path)
            assert response.json() == {"error": "missing bearer token"}
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert (await anonymous.get("/health")).status_code == 200
    async with client_for(app, authorization="Bearer wrong") as wrong:
        response = await wrong.post("/jobs", json={"payload": 1})
        assert response.status_code == 401 and response.json() == {"error": "invalid bearer token"}
    async with client_for(app, authorization="Bearer s3cret") as allowed:
        assert (await allowed.post("/jobs", json={"payload": 1})).status_code == 202
        assert (await allowed.get("/metrics")).status_code == 200
    async with client_for(app) as anonymous:
        # The token also guards the body: an unauthenticated upload is refused before it is read.
        response = await anonymous.post("/jobs", content=b"x" * (2 << 20))
        assert response.status_code == 401


async def test_openapi_declares_the_bearer_scheme(make_app: AppFactory) -> None:
    async with client_for(make_app(token="t"), authorization="Bearer t") as client:
        schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_other_addresses_need_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigurationError, match="without a token"):
        check_bind(host, None)
    check_bind(host, "a-token")


async def test_the_bearer_scheme_is_matched_in_any_case(make_app: AppFactory) -> None:
    app = make_app(token="s3cret")
    for header in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret"]:
        async with client_for(app, authorization=header) as client:
            assert (await client.post("/jobs", json={"payload": 1})).status_code == 202, header
    for header in ["Basic s3cret", "Bearer S3CRET", "Bearers3cret", "s3cret"]:
        async with client_for(app, authorization=header) as client:
            assert (await client.post("/jobs", json={"payload": 1})).status_code == 401, header


# ---- without a token: web pages are kept out, clients are not -------------------------------

CROSS_SITE = [
    {"origin": "https://evil.example"},
    {"origin": "null"},
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},  # another port or subdomain of the user's own site
    {"host": "evil.example"},  # DNS rebinding: evil.example resolved to 127.0.0.1
    {"host": "evil.example:8080", "origin": "http://evil.example:8080", "sec-fetch-site": "same-origin"},
]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
async def test_without_a_token_requests_from_web_pages_are_refused(
    make_app: AppFactory, headers: dict[str, str]
) -> None:
    async with client_for(make_app(), **headers) as page:
        for method, path in [("POST", "/jobs"), ("POST", "/jobs/batch"), ("GET", "/jobs"), ("GET", "/dlq")]:
            # text/plain: what a form or a fetch() may send without a CORS preflight
            response = await page.request(
                method, path, content=b'{"payload": 1}', headers={"content-type": "text/plain"}
            )
            assert response.status_code == 403, (method, path)
            assert "error" in response.json()
        assert (await page.get("/jobs")).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, the original's clients, any HTTP library
        {"host": "localhost:8080"},
        {"host": "[::1]:8080"},
        {"origin": "http://127.0.0.1:8080", "sec-fetch-site": "same-origin"},  # the API's own /docs page
        {"sec-fetch-site": "none"},  # typed in the address bar
    ],
)
async def test_without_a_token_clients_and_the_apis_own_pages_are_served(
    make_app: AppFactory, headers: dict[str, str]
) -> None:
    async with client_for(make_app(), **headers) as client:
        # A body sent as curl -d sends it (form-encoded) is still a job: see docs/http-api.md.
        response = await client.post(
            "/jobs", content=b'{"payload": 1}', headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 202, response.text
        assert (await client.get("/dlq")).status_code == 200


async def test_allowed_hosts_extend_the_loopback_names(make_app: AppFactory) -> None:
    async with client_for(make_app(allowed_hosts=["jobs.internal"]), host="jobs.internal") as client:
        assert (await client.post("/jobs", json={"payload": 1})).status_code == 202
    async with client_for(make_app(allowed_hosts=["*"]), host="anything.example") as client:
        assert (await client.post("/jobs", json={"payload": 1})).status_code == 202
