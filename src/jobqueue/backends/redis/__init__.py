"""The Redis backend (``redis://`` and ``rediss://``)."""

from jobqueue.backends.redis.backend import RedisBackend

__all__ = ["RedisBackend"]
