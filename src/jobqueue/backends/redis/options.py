"""The options of ``redis://`` URLs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobqueue.errors import ConfigurationError
from jobqueue.retention import Retention

#: URL options (``?name=value``) and how each is read; the ``keep_*`` ones set :class:`Retention`.
URL_OPTIONS = ("prefix", "key_grace", "connect_timeout", "command_timeout", "keep_completed", "keep_dead",
               "keep_cancelled")  # fmt: skip
#: Options the connection itself reads (see :class:`~jobqueue.backends.redis.wire.Address`).
CONNECTION_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs")


def options_from_url(query: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments of :class:`~jobqueue.backends.redis.RedisBackend` from a URL's query string.

    ``keep_completed``, ``keep_dead`` and ``keep_cancelled`` are retention times in seconds, or
    ``forever`` to keep those jobs until :meth:`~jobqueue.backends.redis.RedisBackend.prune`.
    """
    unknown = set(query) - set(URL_OPTIONS) - set(CONNECTION_OPTIONS)
    if unknown:
        raise ConfigurationError(f"unknown redis option(s): {', '.join(sorted(unknown))}")
    options: dict[str, Any] = {}
    keep: dict[str, float | None] = {}
    for name, value in query.items():
        if name in CONNECTION_OPTIONS:
            continue
        if name == "prefix":
            options[name] = value
            continue
        try:
            seconds = None if name.startswith("keep_") and value == "forever" else float(value)
        except ValueError:
            raise ConfigurationError(f"redis option {name}={value!r} is not a number of seconds") from None
        if name.startswith("keep_"):
            keep[{"keep_completed": "completed", "keep_dead": "dead_lettered"}.get(name, "cancelled")] = seconds
        else:
            options[name] = seconds
    if keep:
        default = Retention()
        options["retention"] = Retention(
            keep.get("completed", default.completed),
            keep.get("dead_lettered", default.dead_lettered),
            keep.get("cancelled", default.cancelled),
        )
    return options
