"""The ``jobqueue`` command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from jobqueue.errors import JobQueueError

app = typer.Typer(help="jobqueue: a durable job queue.", no_args_is_help=True, add_completion=False)


@app.command()
def demo(
    backend: Annotated[
        str | None, typer.Option(help="Backend URL; default: a throw-away SQLite file.", envvar="JOBQUEUE_URL")
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port of the API (0: any free port).")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Jobs processed at once.")] = 5,
    capacity: Annotated[int, typer.Option(min=1, help="Waiting jobs the queue accepts.")] = 100,
    failure_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of attempts that fail.")] = 0.3,
    seed: Annotated[int | None, typer.Option(help="Seed the random choices for a repeatable run.")] = None,
    duration: Annotated[
        float | None, typer.Option(min=0.0, help="Stop after this many seconds of live stats (0: print once).")
    ] = None,
) -> None:
    """Run the original JobQueue's demo over HTTP: seed, refuse a duplicate, flood, live stats until Ctrl-C."""
    from jobqueue.demo import main as run

    try:
        run(backend, port=port, workers=workers, capacity=capacity, failure_rate=failure_rate, seed=seed,
            duration=duration)  # fmt: skip
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


# ---- the HTTP API --------------------------------------------------------------------------

HostOption = Annotated[str, typer.Option(help="Address to listen on; other than loopback needs a token.")]
PortOption = Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")]
TokenOption = Annotated[
    str | None, typer.Option(help="Bearer token required on every route but /health.", envvar="JOBQUEUE_API_TOKEN")
]
BodyLimitOption = Annotated[int, typer.Option(min=1, help="Largest request body in bytes (413 beyond).")]
CapacityOption = Annotated[int | None, typer.Option(min=1, help="Waiting jobs each queue accepts (503 beyond).")]


@app.command()
def serve(
    app_spec: Annotated[
        str | None, typer.Argument(metavar="[APP]", help="The JobQueue (module:attribute); default: an echo app.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="Backend URL (overrides the app's own).", envvar="JOBQUEUE_URL")
    ] = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Jobs processed at once in this process.")] = 10,
    queues: Annotated[str, typer.Option(help="Comma-separated queues the workers take jobs from.")] = "default",
    capacity: CapacityOption = None,
    token: TokenOption = None,
    max_body_bytes: BodyLimitOption = 1 << 20,
    lease: Annotated[float, typer.Option(min=0.1, help="Workers' lease per claim, seconds.")] = 30.0,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Serve the HTTP API and run workers in one process (the original's shape)."""
    _serve_api(app_spec, backend, host, port, workers, queues, capacity, token, max_body_bytes, log_level, lease)


@app.command()
def api(
    app_spec: Annotated[
        str | None, typer.Argument(metavar="[APP]", help="The JobQueue (module:attribute), for its task defaults.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="Backend URL (overrides the app's own).", envvar="JOBQUEUE_URL")
    ] = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    capacity: CapacityOption = None,
    token: TokenOption = None,
    max_body_bytes: BodyLimitOption = 1 << 20,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Serve the HTTP API alone; workers run elsewhere (jobqueue worker)."""
    _serve_api(app_spec, backend, host, port, 0, "default", capacity, token, max_body_bytes, log_level)


def _serve_api(
    app_spec: str | None, backend: str | None, host: str, port: int, workers: int, queues: str,
    capacity: int | None, token: str | None, max_body_bytes: int, log_level: str, lease: float = 30.0,
) -> None:  # fmt: skip
    import logging
    import sys

    from jobqueue.api.runner import echo_app, serve_queue
    from jobqueue.app import JobQueue
    from jobqueue.worker.supervisor import load_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    try:
        if app_spec is not None:
            queue = load_app(app_spec)
        else:
            queue = echo_app() if workers else JobQueue()
            if workers:
                typer.echo("no APP given: jobs run the built-in echo handler (their payload is their result)", err=True)
        if backend is not None:
            queue.use_backend(backend)
        if capacity is not None:
            queue.capacity = capacity
        queue_names = tuple(q.strip() for q in queues.split(",") if q.strip())
        # An empty JOBQUEUE_API_TOKEN means "no token", as an unset one does.
        serve_queue(queue, host=host, port=port, token=token or None, workers=workers, queues=queue_names,
                    max_body_bytes=max_body_bytes, log_level=log_level, lease=lease)  # fmt: skip
    except (JobQueueError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


# ---- client commands -----------------------------------------------------------------------

UrlOption = Annotated[str, typer.Option(help="URL of the API.", envvar="JOBQUEUE_API_URL")]
StoreOption = Annotated[
    str | None, typer.Option("--backend", help="Talk to this store directly instead of an API (a backend URL).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]


def _client_run(call: Callable[..., int], url: str, backend: str | None, token: str | None, *args: Any) -> None:
    from rich.console import Console

    from jobqueue.api.client import EXIT_INVALID, EXIT_UNREACHABLE, Target, Unreachable

    err = Console(stderr=True)
    try:
        code = call(Target(url, backend, token), *args, Console(), err)
    except Unreachable as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        code = EXIT_UNREACHABLE
    except JobQueueError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        code = EXIT_INVALID
    raise typer.Exit(code)


@app.command()
def submit(
    payload: Annotated[str, typer.Argument(help="The payload: JSON if it parses as JSON, else a string.")],
    task: Annotated[str | None, typer.Option(help="Task to run (default: the default handler).")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue (default: default).")] = None,
    priority: Annotated[int | None, typer.Option(help="Higher runs first (-1000..1000).")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Retries after the first attempt.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Idempotency key.")] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds before it may run.")] = None,
    url: UrlOption = "http://127.0.0.1:8080",
    backend: StoreOption = None,
    token: TokenOption = None,
) -> None:
    """Submit a job; print its id (for a held idempotency key, the id of the job holding it)."""
    from jobqueue.api import commands

    options = {"task": task, "queue": queue, "priority": priority, "max_retries": max_retries,
               "idempotency_key": key, "delay": delay}  # fmt: skip
    _client_run(commands.submit, url, backend, token, payload, options)


@app.command()
def get(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id.")],
    url: UrlOption = "http://127.0.0.1:8080",
    backend: StoreOption = None,
    token: TokenOption = None,
) -> None:
    """Print a job as JSON: state, attempts, last error, result."""
    from jobqueue.api import commands

    _client_run(commands.get, url, backend, token, job_id)


@app.command()
def dlq(
    action: Annotated[str, typer.Argument(metavar="[list|retry]", help="list (default) or retry.")] = "list",
    job_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="The job to retry.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = "http://127.0.0.1:8080",
    backend: StoreOption = None,
    token: TokenOption = None,
) -> None:
    """List the dead-letter queue, or put one of its jobs back in its queue (dlq retry ID)."""
    from jobqueue.api import commands

    if action not in ("list", "retry"):
        typer.echo(f"error: unknown action {action!r}: use 'jobqueue dlq list' or 'jobqueue dlq retry ID'", err=True)
        raise typer.Exit(2)
    _client_run(commands.dlq, url, backend, token, action, job_id, as_json)


@app.command()
def stats(
    as_json: JsonOption = False,
    url: UrlOption = "http://127.0.0.1:8080",
    backend: StoreOption = None,
    token: TokenOption = None,
) -> None:
    """Show queue depths, capacities, jobs by state and the API's totals."""
    from jobqueue.api import commands

    _client_run(commands.stats, url, backend, token, as_json)


@app.command()
def migrate(
    backend: Annotated[
        str | None,
        typer.Option(help="Backend URL, e.g. postgresql://user@host/db?schema=jobqueue.", envvar="JOBQUEUE_URL"),
    ] = None,
) -> None:
    """Create or upgrade the store's schema (PostgreSQL; SQLite and memory need nothing), then exit.

    Backends also migrate on first start, unless the URL says ``?migrate=false``.
    """
    import asyncio

    from jobqueue.backends import DEFAULT_URL, create_backend
    from jobqueue.backends.postgres import PostgresBackend

    async def run() -> str:
        store = create_backend(backend or DEFAULT_URL)
        if isinstance(store, PostgresBackend):
            before, after = await store.run_migrations()
            change = "already current" if before == after else f"migrated from version {before}"
            return f"postgresql schema {store.schema!r} at version {after} ({change})"
        await store.open()
        await store.close()
        return f"{store.name}: nothing to migrate (its schema is kept current on open)"

    try:
        typer.echo(asyncio.run(run()))
    except JobQueueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if isinstance(exc, ValueError) else 3) from None


@app.command()
def version() -> None:
    """Print the installed version."""
    from jobqueue import __version__

    typer.echo(__version__)


def main() -> None:
    app()
