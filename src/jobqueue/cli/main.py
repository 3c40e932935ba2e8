"""The ``jobqueue`` command.

Plain click: typer (0.29) builds a pydantic adapter for every option at every start, which cost
~90 ms before a worker could claim its first job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from jobqueue.cli import steering
from jobqueue.cli.shared import JSON_OPTION, client_options, client_run, fail
from jobqueue.errors import JobQueueError
from jobqueue.logs import LogFormat, configure_logging
from jobqueue.version import __version__


@click.group(help="jobqueue: a durable job queue.", context_settings={"help_option_names": ["--help", "-h"]})
@click.version_option(__version__, "--version", "-V", message="%(version)s")
def app() -> None:
    pass


BACKEND_HELP = "Backend URL (overrides the app's own)."
LOG_LEVEL = click.option("--log-level", default="INFO", show_default=True, help="DEBUG, INFO, WARNING or ERROR.")
LOG_FORMAT = click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
                          envvar="JOBQUEUE_LOG_FORMAT",
                          help="text, or one JSON object a line (docs/monitoring.md).")  # fmt: skip
QUEUES = click.option("--queues", default="default", show_default=True,
                      help="Comma-separated queues the workers take jobs from.")  # fmt: skip
LEASE = click.option("--lease", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
                     help="Lease per claim in seconds, renewed while a job runs.")  # fmt: skip
SCHEDULER = click.option("--scheduler/--no-scheduler", default=True, show_default=True,
                         help="Fire the app's periodic schedules (one job per tick, however many do).")  # fmt: skip


@app.command()
@click.option("--backend", help="Backend URL; default: a throw-away SQLite file (JOBQUEUE_URL is not read: the "
              "demo seeds and floods its own store).")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port of the API (0: any free port).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=5, show_default=True, help="Jobs processed at once.")
@click.option("--capacity", type=click.IntRange(min=1), default=100, show_default=True,
              help="Waiting jobs the queue accepts.")  # fmt: skip
@click.option("--failure-rate", type=click.FloatRange(0.0, 1.0), default=0.3, show_default=True,
              help="Share of attempts that fail.")  # fmt: skip
@click.option("--seed", type=int, help="Seed the random choices for a repeatable run.")
@click.option("--duration", type=click.FloatRange(min=0.0),
              help="Stop after this many seconds of live stats (0: print once).")  # fmt: skip
def demo(
    backend: str | None, port: int, workers: int, capacity: int, failure_rate: float, seed: int | None,
    duration: float | None,
) -> None:  # fmt: skip
    """Run the original JobQueue's demo over HTTP: seed, refuse a duplicate, flood, live stats until Ctrl-C."""
    from jobqueue.demo import main as run

    try:
        run(backend, port=port, workers=workers, capacity=capacity, failure_rate=failure_rate, seed=seed,
            duration=duration)  # fmt: skip
    except JobQueueError as exc:
        raise fail(str(exc)) from None


@app.command()
@click.argument("app_spec", metavar="APP")
@click.option("--backend", envvar="JOBQUEUE_URL", help=BACKEND_HELP)
@QUEUES
@click.option("--concurrency", type=click.IntRange(min=1), default=10, show_default=True,
              help="Jobs run at once per process.")  # fmt: skip
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes (restarted if one dies).")  # fmt: skip
@click.option("--pool", default="thread", show_default=True,
              help="Where plain-function handlers run: thread, or process (killed on timeout).")  # fmt: skip
@LEASE
@click.option("--grace", type=click.FloatRange(min=0.0), default=30.0, show_default=True,
              help="Seconds running jobs get to finish on SIGTERM.")  # fmt: skip
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Longest idle wait between looks, s.")  # fmt: skip
@click.option("--reaper-interval", type=click.FloatRange(min=0.01), default=5.0, show_default=True,
              help="Seconds between expired-lease sweeps.")  # fmt: skip
@click.option("--fair", is_flag=True, help="Claim across --queues in turn (weighted) rather than by priority.")
@click.option("--weight", multiple=True, metavar="QUEUE=N", help="With --fair: a queue's share (default 1).")
@SCHEDULER
@LOG_LEVEL
@LOG_FORMAT
def worker(
    app_spec: str, backend: str | None, queues: str, concurrency: int, processes: int, pool: str, lease: float,
    grace: float, poll_interval: float, reaper_interval: float, fair: bool, weight: tuple[str, ...], scheduler: bool,
    log_level: str, log_format: LogFormat,
) -> None:  # fmt: skip
    """Run workers for APP (module:attribute): claim jobs, run them, retry with backoff, recover crashed
    workers' jobs."""
    import sys

    from jobqueue.cli.apps import load_app
    from jobqueue.worker import WorkerConfig
    from jobqueue.worker.supervisor import run_worker, supervise

    configure_logging(log_level, log_format)
    try:
        if processes > 1:
            child = _without_option(sys.argv[1:], "--processes")
            raise click.exceptions.Exit(supervise(child, processes))
        queue_names = tuple(q.strip() for q in queues.split(",") if q.strip())
        config = WorkerConfig(
            queues=queue_names, concurrency=concurrency, lease=lease, grace=grace,
            poll_interval=poll_interval, reaper_interval=reaper_interval, scheduler=scheduler,
            pool=pool,  # type: ignore[arg-type]  # checked by WorkerConfig
            fair=_weights(weight) or fair,
        )  # fmt: skip
        loaded = load_app(app_spec)
        if backend is not None:
            loaded.use_backend(backend)
        run_worker(loaded, config)
    except (JobQueueError, ValueError) as exc:
        raise fail(str(exc)) from None


def _weights(given: tuple[str, ...]) -> dict[str, int]:
    """``--weight mail=3`` options as weights by queue."""
    weights: dict[str, int] = {}
    for item in given:
        name, _, number = item.rpartition("=")
        if not name or not number.isdigit() or int(number) < 1:
            raise ValueError(f"--weight {item!r}: give QUEUE=N with N >= 1")
        weights[name] = int(number)
    return weights


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


def _api_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``serve`` and ``api`` share."""
    options = [
        click.option("--backend", envvar="JOBQUEUE_URL", help=BACKEND_HELP),
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address to listen on; other than loopback needs a token."),
        click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
                     help="Port to listen on (0: any free port)."),
        click.option("--capacity", type=click.IntRange(min=1), help="Waiting jobs each queue accepts (503 beyond)."),
        click.option("--token", envvar="JOBQUEUE_API_TOKEN",
                     help="Bearer token required on every route but /health."),
        click.option("--max-body-bytes", type=click.IntRange(min=1), default=1 << 20, show_default=True,
                     help="Largest request body in bytes (413 beyond)."),
        click.option("--max-header-bytes", type=click.IntRange(min=1024), default=64 * 1024, show_default=True,
                     help="Largest request line and headers in bytes (431 beyond)."),
        click.option("--request-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
                     help="Seconds a request may take to arrive, headers and body (408 beyond)."),
        click.option("--max-connections", type=click.IntRange(min=1), default=1000, show_default=True,
                     help="Most open connections (also kept under the open-file limit)."),
        click.option("--allowed-host", "allowed_hosts", multiple=True,
                     help="Without a token: a Host name the API answers besides loopback ones (repeatable; "
                          "'*': any)."),
        LOG_LEVEL,
        LOG_FORMAT,
        click.option("--access-log", is_flag=True, help="Log every request (in --log-format)."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


@app.command()
@click.argument("app_spec", metavar="[APP]", required=False)
@_api_options
@click.option("--workers", type=click.IntRange(min=1), default=10, show_default=True,
              help="Jobs processed at once in this process.")  # fmt: skip
@QUEUES
@LEASE
@SCHEDULER
def serve(app_spec: str | None, workers: int, queues: str, lease: float, scheduler: bool, **api: Any) -> None:
    """Serve the HTTP API and run workers in one process (the original's shape). APP: the JobQueue
    (module:attribute); default: an echo app."""
    _serve_api(app_spec, workers, queues, lease, scheduler=scheduler, **api)


@app.command()
@click.argument("app_spec", metavar="[APP]", required=False)
@_api_options
def api(app_spec: str | None, **api: Any) -> None:
    """Serve the HTTP API alone; workers run elsewhere (jobqueue worker). APP: the JobQueue
    (module:attribute), for its task defaults; without it they come from the store, where workers
    register them."""
    _serve_api(app_spec, 0, "default", 30.0, scheduler=False, **api)


def _serve_api(
    app_spec: str | None, workers: int, queues: str, lease: float, *, backend: str | None, host: str, port: int,
    capacity: int | None, token: str | None, max_body_bytes: int, max_header_bytes: int, request_timeout: float,
    max_connections: int, allowed_hosts: tuple[str, ...], log_level: str, log_format: LogFormat, access_log: bool,
    scheduler: bool,
) -> None:  # fmt: skip
    from jobqueue.api.protocol import ConnectionLimits
    from jobqueue.app import JobQueue
    from jobqueue.cli.apps import load_app
    from jobqueue.serving import echo_app, serve_queue

    configure_logging(log_level, log_format)
    try:
        if app_spec is not None:
            queue = load_app(app_spec)
        else:
            queue = echo_app() if workers else JobQueue()
            if workers:
                click.echo("no APP given: jobs run the built-in echo handler (their payload is their result)", err=True)
        if backend is not None:
            queue.use_backend(backend)
        if capacity is not None:
            queue.capacity = capacity
        queue_names = tuple(q.strip() for q in queues.split(",") if q.strip())
        limits = ConnectionLimits(max_header_bytes, request_timeout, max_connections)
        # An empty JOBQUEUE_API_TOKEN means "no token", as an unset one does.
        serve_queue(queue, host=host, port=port, token=token or None, workers=workers, queues=queue_names,
                    max_body_bytes=max_body_bytes, log_level=log_level, lease=lease, limits=limits,
                    allowed_hosts=allowed_hosts, scheduler=scheduler, access_log=access_log)  # fmt: skip
    except (JobQueueError, ValueError) as exc:
        raise fail(str(exc)) from None


# ---- client commands -----------------------------------------------------------------------


@app.command()
@click.argument("payload")
@click.option("--task", help="Task to run (default: the default handler).")
@click.option("--queue", help="Queue (default: default).")
@click.option("--priority", type=int, help="Higher runs first (-1000..1000).")
@click.option("--max-retries", type=int, help="Retries after the first attempt.")
@click.option("--key", help="Idempotency key.")
@click.option("--delay", type=float, help="Seconds before it may run.")
@click.option("--after", multiple=True, metavar="JOB_ID", help="A job that must complete first (repeatable).")
@click.option("--rate-key", help="The key of the queue's per-key limits (a tenant, an API host).")
@client_options
def submit(
    payload: str, task: str | None, queue: str | None, priority: int | None, max_retries: int | None,
    key: str | None, delay: float | None, after: tuple[str, ...], rate_key: str | None, url: str,
    backend: str | None, token: str | None,
) -> None:  # fmt: skip
    """Submit a job; print its id (for a held idempotency key, the id of the job holding it). PAYLOAD:
    JSON if it parses as JSON, else a string."""
    from jobqueue.cli import commands

    options = {"task": task, "queue": queue, "priority": priority, "max_retries": max_retries,
               "idempotency_key": key, "delay": delay, "depends_on": list(after) or None,
               "rate_key": rate_key}  # fmt: skip
    client_run(commands.submit, url, backend, token, payload, options)


@app.command()
@click.argument("job_id", metavar="ID")
@client_options
def get(job_id: str, url: str, backend: str | None, token: str | None) -> None:
    """Print a job as JSON: state, attempts, last error, result."""
    from jobqueue.cli import commands

    client_run(commands.get, url, backend, token, job_id)


@app.command()
@click.argument("action", type=click.Choice(["list", "pause", "resume", "run-now"]), default="list")
@click.argument("name", required=False)
@JSON_OPTION
@client_options
def schedules(action: str, name: str | None, as_json: bool, url: str, backend: str | None, token: str | None) -> None:
    """List periodic schedules with their state, or pause, resume or run one now (run-now NAME)."""
    from jobqueue.cli import commands

    client_run(commands.schedules, url, backend, token, action, name, as_json)


@app.command()
@JSON_OPTION
@client_options
def stats(as_json: bool, url: str, backend: str | None, token: str | None) -> None:
    """Show queue depths, capacities, jobs by state and the API's totals."""
    from jobqueue.cli import commands

    client_run(commands.stats, url, backend, token, as_json)


@app.command()
@click.option("--backend", envvar="JOBQUEUE_URL", help="Backend URL, e.g. postgresql://user@host/db?schema=jobqueue.")
def migrate(backend: str | None) -> None:
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
        click.echo(asyncio.run(run()))
    except JobQueueError as exc:
        raise fail(str(exc), 2 if isinstance(exc, ValueError) else 3) from None


@app.command()
def version() -> None:
    """Print the installed version (as --version does)."""
    click.echo(__version__)


for command in (steering.queue, steering.dlq, steering.cancel):
    app.add_command(command)


def main() -> None:
    app()
