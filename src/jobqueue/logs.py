"""Log output: ``key=value`` text for people, or one JSON object a line for log pipelines.

``configure_logging(format="json")`` (``--log-format json``, ``JOBQUEUE_LOG_FORMAT=json``) writes
every record as one line of JSON: ``time`` (ISO 8601 UTC), ``level``, ``logger``, ``message``,
then the record's fields. The worker's job events carry ``event`` (``job.completed``, ...),
``job_id``, ``task``, ``queue``, ``attempt``, ``duration`` (seconds), ``outcome`` (``completed``,
``retrying``, ``dead_lettered``, ``fenced``, ``cancelled``, ``lease_lost``), ``error`` and
``worker_id``; the HTTP server's access log (``--access-log``) ``client``, ``method``, ``path``,
``http_version`` and ``status``. A traceback goes in ``exception``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

#: The attributes every LogRecord has: whatever else a record holds came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
#: What uvicorn's access log passes as its arguments, in order.
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            out.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False, separators=(",", ":"))


def configure_logging(level: str = "INFO", format: LogFormat = "text", stream: TextIO | None = None) -> None:
    """Send the process's logs (jobqueue's, and the HTTP server's) to ``stream`` (stderr) in
    ``format``, replacing handlers set before: what the ``jobqueue`` commands call at start."""
    if format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
