"""The commands that steer queues and act on jobs: ``queue``, ``dlq`` and ``cancel``.

Each sends one request to the API (or straight to a store with ``--backend``), as every client
command does; the printing is in :mod:`.commands`.
"""

from __future__ import annotations

from typing import Any

import click

from jobqueue.cli.shared import JSON_OPTION, client_options, client_run, fail


def _filter_options(fn: Any) -> Any:
    """The filter of a bulk action (``dlq replay|purge``, ``cancel``), sent as the request's body."""
    options = [
        click.option("--queue", "queue_name", help="Only jobs of this queue."),
        click.option("--task", help="Only jobs of this task."),
        click.option("--error", help="Only jobs whose last error holds this text (ignoring case)."),
        click.option("--since", help="Only jobs finished at or after this time (ISO 8601)."),
        click.option("--until", help="Only jobs finished before this time (ISO 8601)."),
        click.option("--all", "everything", is_flag=True, help="Every job (needed when no filter is given)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _filter(queue_name: str | None, task: str | None, error: str | None, since: str | None, until: str | None,
            everything: bool) -> dict[str, Any]:  # fmt: skip
    chosen = {"queue": queue_name, "task": task, "error": error, "finished_after": since, "finished_before": until,
              "all": everything or None}  # fmt: skip
    return {name: value for name, value in chosen.items() if value is not None}


@click.command()
@click.argument("action", type=click.Choice(["list", "pause", "resume", "limit"]), default="list")
@click.argument("name", required=False)
@click.option("--rate", help="limit: jobs per period across all workers, e.g. 100/s, 1000/h, 5/10s.")
@click.option("--burst", type=click.IntRange(min=1), help="limit: jobs that may start at once (default: the count).")
@click.option("--concurrency", type=click.IntRange(min=1), help="limit: jobs of the queue running at once.")
@click.option("--key-rate", help="limit: the same rate for each rate_key of the queue's jobs.")
@click.option("--key-burst", type=click.IntRange(min=1), help="limit: the burst of each key's rate.")
@click.option("--key-concurrency", type=click.IntRange(min=1), help="limit: jobs of one rate_key running at once.")
@click.option("--clear", is_flag=True, help="limit: remove the queue's limits.")
@JSON_OPTION
@client_options
def queue(
    action: str, name: str | None, rate: str | None, burst: int | None, concurrency: int | None,
    key_rate: str | None, key_burst: int | None, key_concurrency: int | None, clear: bool, as_json: bool,
    url: str, backend: str | None, token: str | None,
) -> None:  # fmt: skip
    """List the queues (state, limits, waiting jobs); pause or resume one, or change its limits
    (queue limit NAME --rate 100/s --concurrency 5: the limits not given are kept; --clear removes
    them all), for every worker."""
    from jobqueue.cli import commands

    limits = {"rate": rate, "burst": burst, "concurrency": concurrency, "key_rate": key_rate, "key_burst": key_burst,
              "key_concurrency": key_concurrency}  # fmt: skip
    given = {key: value for key, value in limits.items() if value is not None}
    if action == "limit" and not given and not clear:
        raise fail("queue limit needs a limit (--rate, --concurrency, --key-rate, --key-concurrency) or --clear")
    if given and (action != "limit" or clear):
        raise fail("limits go with 'queue limit NAME' (and not with --clear)")
    client_run(commands.queue, url, backend, token, action, name, given, as_json)


@click.command()
@click.argument("action", type=click.Choice(["list", "retry", "replay", "purge"]), default="list")
@click.argument("job_id", metavar="[ID]", required=False)
@_filter_options
@JSON_OPTION
@client_options
def dlq(
    action: str, job_id: str | None, queue_name: str | None, task: str | None, error: str | None, since: str | None,
    until: str | None, everything: bool, as_json: bool, url: str, backend: str | None, token: str | None,
) -> None:  # fmt: skip
    """List the dead-letter queue; put one job back (retry ID); replay or purge every job matching
    a filter (replay --queue mail --error timeout; purge --until 2026-12-01T00:00:00Z; --all)."""
    from jobqueue.cli import commands

    chosen = _filter(queue_name, task, error, since, until, everything)
    if chosen and action in ("list", "retry"):
        raise fail(f"filters go with 'dlq replay' and 'dlq purge', not 'dlq {action}'")
    client_run(commands.dlq, url, backend, token, action, job_id, chosen, as_json)


@click.command()
@click.argument("job_ids", metavar="[ID]...", nargs=-1)
@click.option("--children", is_flag=True, help="Cancel each job's waiting descendants too.")
@click.option("--state", help="With a filter: only jobs in this state (PENDING, SCHEDULED, PROCESSING, ...).")
@_filter_options
@client_options
def cancel(
    job_ids: tuple[str, ...], children: bool, state: str | None, queue_name: str | None, task: str | None,
    error: str | None, since: str | None, until: str | None, everything: bool, url: str, backend: str | None,
    token: str | None,
) -> None:  # fmt: skip
    """Cancel jobs, waiting or running (a running one is stopped by its worker within a second):
    by id, or every job matching a filter (cancel --queue mail --state PENDING; --all)."""
    from jobqueue.cli import commands

    chosen = _filter(queue_name, task, error, since, until, everything)
    if state is not None:
        chosen["state"] = state.upper()
    if bool(job_ids) == bool(chosen):
        raise fail("cancel takes job ids, or a filter (--queue, --task, --state, ... or --all), not both")
    client_run(commands.cancel, url, backend, token, list(job_ids), children, chosen)
