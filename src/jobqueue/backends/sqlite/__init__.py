"""The embedded SQLite backend (the default)."""

from jobqueue.backends.sqlite.backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
