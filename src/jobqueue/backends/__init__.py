"""Storage backends, the URL that selects one, and the interface for writing one.

A backend implements :class:`Backend` (``base.py``: every operation and what it must guarantee),
most easily by subclassing :class:`BackendBase` (``core.py``: lifecycle, guards and shared checks)
and implementing the ``_operation`` methods; :class:`Handoff` is an optional capability. It is
done when it passes the conformance suite, :class:`jobqueue.testing.BackendSuite`. The names of
``__all__`` below are that interface.

==============================  ==============================================================
``memory://``                   in-process, nothing persisted (tests, scripts, the demo)
``sqlite:///relative/path.db``  embedded file database (the default: ``sqlite:///jobqueue.db``)
``sqlite:////absolute/path.db`` the same with an absolute path; ``?durability=normal|strict``
``redis://host:6379/0``         Redis (``rediss://`` for TLS); ``?prefix=jobqueue``, ... (docs/redis.md)
``postgresql://user@host/db``   PostgreSQL (asyncpg); ``?schema=jobqueue&durability=full|strict|normal
                                &migrate=true&pool_size=5&statement_timeout=10``; other options go to asyncpg
==============================  ==============================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from jobqueue.backends.base import Backend, Capabilities, Handoff
from jobqueue.backends.core import BackendBase
from jobqueue.backends.memory import MemoryBackend
from jobqueue.backends.params import (
    DEFAULT_LEASE,
    ClaimParams,
    Completion,
    Failure,
    Lease,
    ListParams,
    PruneParams,
    Tick,
)
from jobqueue.backends.sqlite import SQLiteBackend
from jobqueue.clock import Clock
from jobqueue.errors import ConfigurationError
from jobqueue.outcomes import PruneResult, StoredSchedule

if TYPE_CHECKING:
    from jobqueue.backends.postgres import PostgresBackend
    from jobqueue.backends.redis import RedisBackend

DEFAULT_URL = "sqlite:///jobqueue.db"


def create_backend(url: str, *, clock: Clock | None = None, **options: Any) -> Backend:
    """The backend a URL names (not yet opened). Options in the URL's query string or as keywords."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query: dict[str, Any] = dict(parse_qsl(parts.query))
    query.update(options)
    if scheme == "memory":
        if query:
            raise ConfigurationError(f"memory:// takes no options, got {sorted(query)}")
        return MemoryBackend(clock=clock)
    if scheme == "sqlite":
        path = sqlite_path(url)
        unknown = set(query) - {"durability", "busy_timeout"}
        if unknown:
            raise ConfigurationError(f"unknown sqlite option(s): {', '.join(sorted(unknown))}")
        if "busy_timeout" in query:
            query["busy_timeout"] = float(query["busy_timeout"])
        return SQLiteBackend(path, clock=clock, **query)
    if scheme in ("redis", "rediss"):
        return _redis(url, clock, query)
    if scheme in ("postgresql", "postgres"):
        return _postgres(parts.netloc, parts.path, clock, query)
    raise ConfigurationError(
        f"unsupported backend URL {url!r}: use memory://, sqlite:///path.db, redis://host:port/db or postgresql://user@host/db"
    )


def sqlite_path(url: str) -> str:
    """The database file a ``sqlite://`` URL names (relative to the working directory or absolute)."""
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigurationError(
            f"{url!r}: write sqlite:///relative.db or sqlite:////absolute/path.db (three or four slashes)"
        )
    path = unquote(parts.path)
    path = path[1:] if path.startswith("/") else path
    if not path:
        raise ConfigurationError(f"{url!r} names no database file")
    return path


def _redis(url: str, clock: Clock | None, query: dict[str, Any]) -> Backend:
    # Imported here, like asyncpg below: the redis client adds ~70 ms to every process's start.
    from jobqueue.backends.redis.backend import RedisBackend
    from jobqueue.backends.redis.options import options_from_url

    return RedisBackend(url, clock=clock, **options_from_url(query))


#: Options of ``postgresql://`` URLs that jobqueue takes; the others are asyncpg's (sslmode, ...).
POSTGRES_OPTIONS = {
    "schema": str,
    "durability": str,
    "migrate": str,
    "pool_size": int,
    "connect_timeout": float,
    "statement_timeout": float,
}


def _postgres(netloc: str, path: str, clock: Clock | None, query: dict[str, Any]) -> Backend:
    # Imported here, so that a process on another backend never loads asyncpg.
    from jobqueue.backends.postgres import PostgresBackend

    options: dict[str, Any] = {}
    for name, convert in POSTGRES_OPTIONS.items():
        if name in query:
            try:
                options[name] = convert(query.pop(name))
            except ValueError:
                raise ConfigurationError(f"postgresql option {name} is not valid") from None
    if "migrate" in options:
        flag = options["migrate"].lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigurationError(f"migrate must be true or false, not {options['migrate']!r}")
        options["migrate"] = flag in ("true", "1", "yes")
    dsn = urlunsplit(("postgresql", netloc, path, urlencode(query), ""))
    return PostgresBackend(dsn, clock=clock, **options)


def __getattr__(name: str) -> Any:
    # The server backends are imported on first use: their drivers add ~70 ms to a process's start.
    if name == "RedisBackend":
        from jobqueue.backends.redis import RedisBackend

        return RedisBackend
    if name == "PostgresBackend":
        from jobqueue.backends.postgres import PostgresBackend

        return PostgresBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_URL",
    "Backend",
    "BackendBase",
    "Capabilities",
    "ClaimParams",
    "Completion",
    "Failure",
    "Handoff",
    "Lease",
    "ListParams",
    "MemoryBackend",
    "PostgresBackend",
    "PruneParams",
    "PruneResult",
    "RedisBackend",
    "SQLiteBackend",
    "StoredSchedule",
    "Tick",
    "create_backend",
]
