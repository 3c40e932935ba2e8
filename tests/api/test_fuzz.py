"""Every operation of the OpenAPI document, fuzzed by Schemathesis (valid and invalid requests).

Whatever is sent, the API must not fail (no 5xx but a 503 for a full queue), and every 4xx and
5xx answers ``{"error": "..."}``. The requests go through httpx's ASGI transport on one event loop
that lives as long as the module, so the queue (memory backend, a small capacity so that 503s
happen) is opened once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from starlette.types import ASGIApp

from jobqueue.api import create_app
from jobqueue.app import JobQueue

# The document is read at collection time, for the test ids; this app is never served.
SCHEMA = schemathesis.openapi.from_dict(create_app(JobQueue("memory://")).openapi())
# Our own document always parses, so every result is Ok.
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]  # type: ignore[union-attr]


class Served:
    """One app and the event loop its queue lives on, for the whole module."""

    def __init__(self, runner: asyncio.Runner) -> None:
        self.queue = JobQueue("memory://", capacity=5)
        self.app = create_app(self.queue)
        self.runner = runner

    def call(self, case: Any) -> httpx.Response:
        return self.runner.run(send(self.app, case))


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with asyncio.Runner() as runner:
        it = Served(runner)
        yield it
        runner.run(it.queue.close())


def check_answer(case: Any, response: httpx.Response) -> None:
    where = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"
    assert response.status_code < 500 or response.status_code == 503, f"{where} -> {response.text}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str), f"{where} -> {response.text}"
        if response.status_code == 503:
            assert response.headers.get("retry-after"), where


async def send(app: ASGIApp, case: Any) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url="http://127.0.0.1")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.request(
            kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=kwargs.get("headers"),
            json=kwargs.get("json"), content=None if "json" in kwargs else kwargs.get("data"),
        )  # fmt: skip


def takes_input(operation: Any) -> bool:
    """Whether a request to the operation can be invalid at all (it has parameters or a body)."""
    return bool(list(operation.iter_parameters())) or bool(operation.body)


CASES = [
    pytest.param(op, mode, id=f"{op.method.upper()} {op.path} {mode.value}")
    for op in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or takes_input(op)
]


@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_operation_never_fails_and_errors_have_the_error_shape(
    served: Served, operation: Any, mode: GenerationMode
) -> None:
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        check_answer(case, served.call(case))

    fuzz()
