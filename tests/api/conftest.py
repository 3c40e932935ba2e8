"""Fixtures for the HTTP API tests: an app over each backend, and an in-process client.

The client calls the app through httpx's ASGI transport on the test's own event loop, so the
queue's home loop is the test's loop and no server or thread is involved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp

from jobqueue.api import create_app
from jobqueue.app import JobQueue
from jobqueue.backends import Backend
from jobqueue.retry import RetryPolicy

#: Retries at once: with the fake clock a delayed retry would never come due.
NO_WAIT = RetryPolicy(base=0.0, max_delay=0.0)

AppFactory = Callable[..., FastAPI]


@pytest.fixture
def queue(backend: Backend) -> JobQueue:
    """A queue over the parametrized backend (memory, sqlite), with no capacity limit."""
    return JobQueue(backend=backend)


@pytest.fixture
def make_app(queue: JobQueue) -> AppFactory:
    """``create_app(queue, **options)``."""

    def make(**options: Any) -> FastAPI:
        return create_app(queue, **options)

    return make


def client_for(app: ASGIApp, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", headers=headers)


@pytest.fixture
async def client(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_app()) as c:
        yield c


async def submit(client: httpx.AsyncClient, payload: Any = "process-order-42", **fields: Any) -> str:
    """POST /jobs and return the new job's id (asserting the 202)."""
    response = await client.post("/jobs", json={"payload": payload, **fields})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id
