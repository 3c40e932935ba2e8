"""The HTTP API: ``create_app(queue)`` builds it; ``jobqueue serve`` and ``jobqueue api`` run it."""

from jobqueue.api.app import create_app
from jobqueue.api.state import ApiConfig

__all__ = ["ApiConfig", "create_app"]
