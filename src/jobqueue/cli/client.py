"""The client commands (``jobqueue submit | get | dlq | stats``): one request each, clear exits.

They talk to a running API (``--url``), or straight to a store (``--backend``): then the same API
app runs in-process over httpx's ASGI transport, so both ways give the same answers and errors.

Exit codes: 0 done (a duplicate submission too: the job holding the key is printed); 1 refused
(not found, not in the DLQ, unauthorized, not allowed in this state); 2 invalid input; 3 the API
or store cannot be reached; 4 the queue is full (try again later).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

EXIT_OK, EXIT_REFUSED, EXIT_INVALID, EXIT_UNREACHABLE, EXIT_FULL = 0, 1, 2, 3, 4
DEFAULT_API_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go: an API URL, or a backend URL served in-process."""

    url: str = DEFAULT_API_URL
    backend: str | None = None
    token: str | None = None
    timeout: float = 30.0

    def describe(self) -> str:
        return f"the store at {self.backend}" if self.backend else f"the API at {self.url}"


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP status and its decoded JSON body."""

    status: int
    body: Any

    @property
    def error(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error if isinstance(error, str) else f"HTTP {self.status}"

    def exit_code(self) -> int:
        """The command's exit code for this answer (see the module docstring)."""
        if self.status < 400:
            return EXIT_OK
        if self.status in (400, 413, 422):
            return EXIT_INVALID
        if self.status == 503:
            # A full queue names itself; any other 503 is the store being unavailable.
            return EXIT_FULL if isinstance(self.body, dict) and "queue" in self.body else EXIT_UNREACHABLE
        if self.status >= 500:
            return EXIT_UNREACHABLE
        return EXIT_REFUSED


class Unreachable(Exception):
    """The API (or store) could not be reached."""


def existing_store(url: str) -> str:
    """``url``, made to open only a store that exists: a read-only command creates nothing (no
    SQLite file or directory, no PostgreSQL schema), and says there is nothing there instead."""
    from jobqueue.backends import sqlite_path

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = sqlite_path(url)
        if not Path(path).exists():
            raise Unreachable(f"no store at {path}: nothing was ever submitted there (check --backend)")
    elif scheme in ("postgresql", "postgres"):
        query = dict(parse_qsl(parts.query))
        query["migrate"] = "false"
        return urlunsplit(parts._replace(query=urlencode(query)))
    return url


@asynccontextmanager
async def _client(target: Target, writes: bool) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    if target.backend is None:
        async with httpx.AsyncClient(base_url=target.url, headers=headers, timeout=target.timeout) as client:
            yield client
        return
    from jobqueue.api.app import create_app
    from jobqueue.app import JobQueue

    queue = JobQueue(target.backend if writes else existing_store(target.backend))
    transport = httpx.ASGITransport(app=create_app(queue, token=target.token))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", headers=headers) as client:
            yield client
    finally:
        await queue.close()


async def _request(target: Target, method: str, path: str, **kwargs: Any) -> Answer:
    try:
        async with _client(target, writes=method != "GET") as client:
            response = await client.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise Unreachable(f"cannot reach {target.describe()}: {exc or type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Answer(response.status_code, body)


def request(target: Target, method: str, path: str, **kwargs: Any) -> Answer:
    """Send one request and return its status and decoded body (raises :class:`Unreachable`)."""
    return asyncio.run(_request(target, method, path, **kwargs))
