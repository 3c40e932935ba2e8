"""What the client commands share: where they send their request, and how they end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from jobqueue.errors import JobQueueError


def fail(message: str, code: int = 2) -> click.exceptions.Exit:
    click.echo(f"error: {message}", err=True)
    return click.exceptions.Exit(code)


def client_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Where a client command sends its request: an API, or a store directly."""
    options = [
        click.option("--url", envvar="JOBQUEUE_API_URL", default="http://127.0.0.1:8080", show_default=True,
                     help="URL of the API."),
        click.option("--backend", help="Talk to this store directly instead of an API (a backend URL)."),
        click.option("--token", envvar="JOBQUEUE_API_TOKEN",
                     help="Bearer token required on every route but /health."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


def client_run(call: Callable[..., int], url: str, backend: str | None, token: str | None, *args: Any) -> None:
    from rich.console import Console

    from jobqueue.cli.client import EXIT_INVALID, EXIT_UNREACHABLE, Target, Unreachable

    err = Console(stderr=True)
    try:
        code = call(Target(url, backend, token), *args, Console(), err)
    except Unreachable as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        code = EXIT_UNREACHABLE
    except JobQueueError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        code = EXIT_INVALID
    raise click.exceptions.Exit(code)
