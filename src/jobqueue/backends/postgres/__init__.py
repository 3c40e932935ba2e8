"""The PostgreSQL backend (``postgresql://``): many workers on many machines, one queue."""

from jobqueue.backends.postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]
