"""JSON responses and the one error shape every 4xx and 5xx answer has: ``{"error": "..."}``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from jobqueue.job import Job


def json_response(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response serialized with orjson (several times faster than the stdlib encoder)."""
    try:
        body = orjson.dumps(content)
    except TypeError:
        # orjson stops at 255 levels of nesting, and a payload accepted at 254 is deeper than that
        # inside a job or a page of jobs: the stdlib encoder writes it (no 500 on reading it back).
        body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any) -> Response:
    """``{"error": message, **extra}`` with ``status``."""
    return json_response({"error": message, **extra}, status, headers)


def job_view(job: Job) -> dict[str, Any]:
    """A job as the API shows it: :meth:`Job.to_dict` without the internal fencing token."""
    out = job.to_dict()
    del out["lease_token"]
    return out


class ApiError(Exception):
    """Raised by a route to answer ``{"error": message, **extra}`` with ``status``."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.extra = extra

    def response(self) -> Response:
        return error_response(self.status, self.message, self.headers, **self.extra)
