"""Loads the named statements of ``queries.sql``, the schema and the migrations."""

from __future__ import annotations

import functools
import re
from pathlib import Path

JOB_COLUMNS = (
    "id, queue, task, payload, priority, state, retry_count, max_retries, idempotency_key, "
    "created_at, run_at, started_at, finished_at, last_attempt, next_retry_at, error, result, "
    "timeout, lease_expires_at, worker_id, lease_token"
)

# Beside this module (package data); not importlib.resources, whose import costs a worker ~5 ms of start-up.
_HERE = Path(__file__).parent


def read(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


def load_queries() -> dict[str, str]:
    """``{name: statement}`` from the ``-- name: x`` blocks of queries.sql."""
    text = read("queries.sql").replace("{job_columns}", JOB_COLUMNS)
    queries: dict[str, str] = {}
    for block in re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]:
        name, _, body = block.partition("\n")
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        queries[name.strip()] = "\n".join(lines).strip()
    return queries


def migrations() -> list[tuple[int, str]]:
    """``[(version, script)]`` in order, from ``migrations/NNNN_description.sql``."""
    found = []
    for entry in (_HERE / "migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_\w+\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


Q = load_queries()


@functools.cache
def multi_row(name: str, rows: int) -> str:
    """The named single-row ``INSERT ... VALUES (...)`` widened to ``rows`` rows in one statement.

    One statement of many rows costs SQLite about half as much per row as ``executemany`` of the
    one-row form (the per-statement overhead is paid once).
    """
    head, _, values = Q[name].rstrip(";").rpartition("VALUES")
    return f"{head}VALUES {', '.join([values.strip()] * rows)}"


def chunk_sizes(n: int, largest: int = 512) -> list[int]:
    """Split ``n`` rows into powers of two up to ``largest``, so few distinct statements are built."""
    sizes = []
    size = largest
    while n:
        while size > n:
            size //= 2
        sizes.append(size)
        n -= size
    return sizes
