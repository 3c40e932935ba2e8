"""Running jobs checked and finished jobs deleted, for PostgresBackend.

``check_leases`` is one read-only statement (a worker asks every half second whether its jobs are
still its own: a cancel ends a running job's lease in the ``cancel`` statement, and a recovered
lease gets a new token). ``delete`` is prune's deletion for jobs named by id, in statements of at
most :data:`DELETE_BATCH` ids.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import asyncpg

from jobqueue.backends.core import BackendBase
from jobqueue.backends.params import Lease

#: Ids per delete statement: short transactions, however many the caller names.
DELETE_BATCH = 5_000


class PostgresRunningJobs(BackendBase, ABC):
    """``check_leases`` and ``delete`` of :class:`~jobqueue.backends.base.Backend`."""

    @abstractmethod
    async def _run(self, name: str, *args: Any, accept: bool = False) -> list[asyncpg.Record]: ...

    async def _check_leases(self, leases: Sequence[Lease]) -> list[bool]:
        rows = await self._run("check_leases", [lease.job_id for lease in leases], [lease.token for lease in leases])
        held = {row[0] for row in rows}
        return [n in held for n in range(1, len(leases) + 1)]

    async def _delete(self, job_ids: Sequence[str]) -> list[str]:
        deleted: list[str] = []
        for start in range(0, len(job_ids), DELETE_BATCH):
            rows = await self._run("delete_jobs", list(job_ids[start : start + DELETE_BATCH]))
            deleted += [row[0] for row in rows]
        return deleted
