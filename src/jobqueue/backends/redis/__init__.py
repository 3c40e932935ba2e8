"""The Redis backend (``redis://`` and ``rediss://``)."""

from jobqueue.backends.redis.backend import RedisBackend, Retention

__all__ = ["RedisBackend", "Retention"]
