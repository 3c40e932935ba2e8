"""The ``jobqueue`` command."""

from __future__ import annotations

import typer

app = typer.Typer(help="jobqueue: a durable job queue.", no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print the installed version."""
    from jobqueue import __version__

    typer.echo(__version__)


def main() -> None:
    app()
