"""Finding the user's :class:`~jobqueue.app.JobQueue` from the ``APP`` argument (``module:attribute``)."""

from __future__ import annotations

import importlib
import os
import sys

from jobqueue.app import JobQueue
from jobqueue.errors import ConfigurationError


def load_app(spec: str) -> JobQueue:
    """Import ``module:attribute`` (the current directory is importable, as for uvicorn)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"APP must look like 'module:attribute', got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from None
    app = getattr(module, attribute, None)
    if not isinstance(app, JobQueue):
        raise ConfigurationError(f"{spec!r} is not a jobqueue.JobQueue (got {type(app).__name__})")
    return app
