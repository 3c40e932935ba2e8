"""The SQL files of a SQL backend: named statements, the schema and numbered migrations.

Each SQL backend keeps, beside its module, ``queries.sql`` (statements in ``-- name: x`` blocks),
``schema.sql`` (the current schema) and ``migrations/NNNN_description.sql``. Files are read from
the package folder rather than through ``importlib.resources``, whose import costs a worker ~5 ms
of start-up.
"""

from __future__ import annotations

import re
from pathlib import Path


class SqlFiles:
    """The SQL files in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self, name: str) -> str:
        return (self.folder / name).read_text(encoding="utf-8")

    def named(self, text: str) -> dict[str, str]:
        """``{name: statement}`` of the ``-- name: x`` blocks of ``text``, comment lines dropped."""
        statements: dict[str, str] = {}
        for block in re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]:
            name, _, body = block.partition("\n")
            lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
            statements[name.strip()] = "\n".join(lines).strip()
        return statements

    def migrations(self) -> list[tuple[int, str]]:
        """``[(version, script)]`` in order, from ``migrations/NNNN_description.sql``."""
        found = []
        for entry in (self.folder / "migrations").iterdir():
            match = re.fullmatch(r"(\d{4})_\w+\.sql", entry.name)
            if match:
                found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
        return sorted(found)
