"""Leases checked and finished jobs deleted by id (``lua/check.lua``, ``lua/delete.lua``): a
mixin of :class:`~jobqueue.backends.redis.RedisBackend`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobqueue.backends.params import Lease

if TYPE_CHECKING:
    from jobqueue.backends.redis.wire import Arg

#: Most jobs one delete script deletes, so that none holds Redis for long; more go as several.
DELETE_CHUNK = 1000


class JobAdministration:
    """``_check_leases`` and ``_delete``."""

    if TYPE_CHECKING:

        async def _run(self, script: str, *args: Arg) -> Any: ...

    async def _check_leases(self, leases: Sequence[Lease]) -> list[bool]:
        args: list[Arg] = []
        for lease in leases:
            args += (lease.job_id, str(lease.token))
        return [flag == 1 for flag in await self._run("check", *args)]

    async def _delete(self, job_ids: Sequence[str]) -> list[str]:
        chunks = [job_ids[i : i + DELETE_CHUNK] for i in range(0, len(job_ids), DELETE_CHUNK)]
        # Pipelined on the one connection: each script runs alone in Redis, one after the other.
        replies = await asyncio.gather(*(self._run("delete", *chunk) for chunk in chunks))
        return [job_id.decode() for reply in replies for job_id in reply]
