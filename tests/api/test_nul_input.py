"""A NUL character anywhere a request can put one gets the same answer on every backend (never a
500 from PostgreSQL, whose text cannot hold one)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import submit

CASES: list[tuple[str, str, Any, int]] = [
    ("POST", "/jobs", {"payload": "a\x00b"}, 202),
    ("POST", "/jobs", {"payload": {"k\x00": ["\x00"]}}, 202),
    ("POST", "/jobs/batch", {"jobs": [{"payload": "\x00"}]}, 200),
    ("POST", "/jobs", {"payload": 1, "idempotency_key": "k\x00"}, 400),
    ("POST", "/jobs", {"payload": 1, "queue": "q\x00"}, 400),
    ("POST", "/jobs", {"payload": 1, "task": "t\x00"}, 400),
    ("GET", "/jobs/%00", None, 404),
    ("GET", "/jobs?cursor=%00", None, 400),
    ("GET", "/jobs?queue=%00", None, 400),
    ("GET", "/jobs?task=%00", None, 400),
    ("GET", "/dlq?cursor=%00", None, 400),
    ("POST", "/dlq/%00/retry", None, 404),
    ("POST", "/jobs/%00/cancel", None, 404),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), CASES, ids=[f"{c[0]} {c[1]} {c[3]}" for c in CASES])
async def test_nul_gets_the_same_answer_on_every_backend(
    client: httpx.AsyncClient, method: str, path: str, body: Any, status: int
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == status, response.text
    if status >= 400:
        assert "error" in response.json()


async def test_a_payload_holding_nul_reads_back_whole(client: httpx.AsyncClient) -> None:
    job_id = await submit(client, {"text": "a\x00b"})
    assert (await client.get(f"/jobs/{job_id}")).json()["payload"] == {"text": "a\x00b"}
