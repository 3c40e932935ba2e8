"""``async with``: open on entry, close on exit, for the queue and every backend."""

from __future__ import annotations

from typing import Self


class OpenClose:
    """A resource with idempotent ``open()`` and ``close()``, usable as ``async with it: ...``."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
