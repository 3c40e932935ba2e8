"""The ``jobqueue`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from jobqueue.errors import JobQueueError

app = typer.Typer(help="jobqueue: a durable job queue.", no_args_is_help=True, add_completion=False)


@app.command()
def demo(
    backend: Annotated[
        str | None, typer.Option(help="Backend URL; default: a throw-away SQLite file.", envvar="JOBQUEUE_URL")
    ] = None,
    capacity: Annotated[int, typer.Option(min=1, help="Waiting jobs the queue accepts.")] = 100,
    failure_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of attempts that fail.")] = 0.3,
    seed: Annotated[int | None, typer.Option(help="Seed the random choices for a repeatable run.")] = None,
) -> None:
    """Run the original JobQueue's demo: seed, refuse a duplicate, flood, process, print stats."""
    from jobqueue.demo import main as run

    try:
        run(backend, capacity, failure_rate, seed)
    except JobQueueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print the installed version."""
    from jobqueue import __version__

    typer.echo(__version__)


def main() -> None:
    app()
