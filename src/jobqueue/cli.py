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
def worker(
    app_spec: Annotated[str, typer.Argument(metavar="APP", help="The JobQueue object, as module:attribute.")],
    backend: Annotated[
        str | None, typer.Option(help="Backend URL (overrides the app's own).", envvar="JOBQUEUE_URL")
    ] = None,
    queues: Annotated[str, typer.Option(help="Comma-separated queues to take jobs from.")] = "default",
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs run at once per process.")] = 10,
    processes: Annotated[int, typer.Option(min=1, help="Worker processes (restarted if one dies).")] = 1,
    pool: Annotated[
        str, typer.Option(help="Where plain-function handlers run: thread, or process (killed on timeout).")
    ] = "thread",
    lease: Annotated[float, typer.Option(min=0.1, help="Lease per claim, seconds.")] = 30.0,
    grace: Annotated[float, typer.Option(min=0.0, help="Seconds running jobs get to finish on SIGTERM.")] = 30.0,
    poll_interval: Annotated[float, typer.Option(min=0.01, help="Longest idle wait between looks, s.")] = 1.0,
    reaper_interval: Annotated[float, typer.Option(min=0.01, help="Seconds between expired-lease sweeps.")] = 5.0,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run workers for APP: claim jobs, run them, retry with backoff, recover crashed workers' jobs."""
    import logging
    import sys

    from jobqueue.worker.supervisor import load_app, run_worker, supervise
    from jobqueue.worker.worker import WorkerConfig

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    try:
        if processes > 1:
            argv = [a for a in sys.argv[1:]]
            child = _without_option(argv, "--processes")
            raise typer.Exit(supervise(child, processes))
        queue_names = tuple(q.strip() for q in queues.split(",") if q.strip())
        config = WorkerConfig(
            queues=queue_names, concurrency=concurrency, lease=lease, grace=grace,
            poll_interval=poll_interval, reaper_interval=reaper_interval,
            pool=pool,  # type: ignore[arg-type]  # checked by WorkerConfig
        )  # fmt: skip
        loaded = load_app(app_spec)
        if backend is not None:
            loaded.use_backend(backend)
        run_worker(loaded, config)
    except (JobQueueError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _without_option(argv: list[str], name: str) -> list[str]:
    """argv with ``--name VALUE`` / ``--name=VALUE`` removed."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


@app.command()
def version() -> None:
    """Print the installed version."""
    from jobqueue import __version__

    typer.echo(__version__)


def main() -> None:
    app()
