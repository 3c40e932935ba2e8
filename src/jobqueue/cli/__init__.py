"""The ``jobqueue`` command: its commands (:mod:`.main`), the client commands' requests
(:mod:`.client`) and what they print (:mod:`.commands`), and finding the user's app (:mod:`.apps`)."""

from jobqueue.cli.main import app, main

__all__ = ["app", "main"]
