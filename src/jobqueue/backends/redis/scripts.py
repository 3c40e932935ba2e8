"""The Lua scripts of the Redis backend: read from ``lua/``, loaded once, called by SHA.

Each script is ``common.lua`` (key layout and helpers) followed by the script's own file; those
that store new jobs (enqueue, enqueue_linked, fire) have ``store_jobs.lua`` between them, so that
all store a job by the same code and the other scripts do not carry it, and those that store or
finish jobs have ``dependencies.lua`` (linking children to parents and resolving the edges), and
the claim has ``limiter.lua`` (what a queue's limits admit).
A server that lost its script cache (a restart, ``SCRIPT FLUSH``) answers NOSCRIPT: every script
is loaded again and the call retried once, so a restarted Redis needs nothing from the operator.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from jobqueue.backends.redis.wire import Arg, RedisReplyError, Wire

NAMES = (
    "enqueue", "enqueue_linked", "claim", "complete", "fail", "heartbeat", "release", "expired", "list",
    "get_many", "replay", "cancel", "stats", "prune", "next_due", "tasks", "probe", "schedules", "fire",
    "queues", "limits", "check", "delete", "find", "workers",
)  # fmt: skip
_STORING = ("dependencies", "store_jobs")
#: Shared code that only some scripts need, inserted after ``common.lua`` in this order.
LIBRARIES = {
    "enqueue": _STORING, "enqueue_linked": _STORING, "fire": _STORING,
    "complete": ("dependencies",), "fail": ("dependencies",), "cancel": ("dependencies",), "claim": ("limiter",),
}  # fmt: skip

_LUA = resources.files(__package__) / "lua"


def source(name: str) -> str:
    """The full text of one script, as Redis runs it."""
    parts = ("common", *LIBRARIES.get(name, ()), name)
    return "\n".join((_LUA / f"{part}.lua").read_text(encoding="utf-8") for part in parts)


class Scripts:
    """Calls the scripts by SHA on one wire, with ``namespace`` as KEYS[1]."""

    def __init__(self, wire: Wire, namespace: str) -> None:
        self._wire = wire
        self._namespace = namespace
        self._sources = {name: source(name) for name in NAMES}
        self._sha = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in self._sources.items()}

    async def load(self) -> None:
        for name, text in self._sources.items():
            sha = await self._wire.call("SCRIPT", "LOAD", text)
            if isinstance(sha, bytes):
                sha = sha.decode()
            if sha != self._sha[name]:  # cannot happen unless the server hashes differently
                self._sha[name] = sha

    async def run(self, name: str, *args: Arg) -> Any:
        try:
            return await self._wire.call("EVALSHA", self._sha[name], 1, self._namespace, *args)
        except RedisReplyError as exc:
            if exc.code != "NOSCRIPT":
                raise
        await self.load()
        return await self._wire.call("EVALSHA", self._sha[name], 1, self._namespace, *args)
