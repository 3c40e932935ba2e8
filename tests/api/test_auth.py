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
