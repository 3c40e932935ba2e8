"""What the client commands print, given the API's answers (see :mod:`.client` for exit codes).

Results go to stdout (a job id, a job as JSON, a table), messages and errors to stderr, so that
``id=$(jobqueue submit ...)`` captures just the id.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from jobqueue.cli.client import EXIT_OK, Answer, Target, request
from jobqueue.job import JobState


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def parse_payload(text: str) -> Any:
    """The payload as JSON when it parses (``42``, ``'{"a": 1}'``), else the text as a string."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _fail(err: Console, answer: Answer) -> int:
    err.print(f"error: {answer.error}", markup=False, highlight=False)
    return answer.exit_code()


def submit(target: Target, payload: str, options: dict[str, Any], out: Console, err: Console) -> int:
    """``POST /jobs``: print the new job's id; for a held key, the holder's id (and say so)."""
    body = {"payload": parse_payload(payload), **{k: v for k, v in options.items() if v is not None}}
    answer = request(target, "POST", "/jobs", json=body)
    if answer.status == 202:
        out.print(answer.body["job_id"], markup=False, highlight=False)
        return EXIT_OK
    if answer.status == 409:
        holder = answer.body
        err.print(f"duplicate: job {holder['job_id']} ({holder['state']}) already holds this idempotency key",
                  markup=False, highlight=False)  # fmt: skip
        out.print(holder["job_id"], markup=False, highlight=False)
        return EXIT_OK
    return _fail(err, answer)


def get(target: Target, job_id: str, out: Console, err: Console) -> int:
    """``GET /jobs/{id}``: the job as JSON."""
    answer = request(target, "GET", f"/jobs/{job_id}")
    if answer.status != 200:
        return _fail(err, answer)
    out.print(_json(answer.body), markup=False, highlight=False)
    return EXIT_OK


def dlq(target: Target, action: str, job_id: str | None, chosen: dict[str, Any], as_json: bool, out: Console,
        err: Console) -> int:  # fmt: skip
    """``dlq list``: the dead-lettered jobs; ``dlq retry ID``: put one back in its queue;
    ``dlq replay|purge`` with a filter: every matching one."""
    if action == "retry":
        if not job_id:
            err.print("error: dlq retry needs a job id: jobqueue dlq retry ID")
            return 2
        answer = request(target, "POST", f"/dlq/{job_id}/retry")
        if answer.status != 202:
            return _fail(err, answer)
        out.print(f"requeued {answer.body['job_id']}", markup=False, highlight=False)
        return EXIT_OK
    if action in ("replay", "purge"):
        if job_id:
            err.print(f"error: dlq {action} takes a filter, not an id (dlq retry ID replays one job)")
            return 2
        answer = request(target, "POST", f"/dlq/{action}", json=chosen)
        if answer.status != 200:
            return _fail(err, answer)
        if as_json:
            out.print(_json(answer.body), markup=False, highlight=False)
        elif action == "purge":
            out.print(f"purged {answer.body['purged']}", markup=False, highlight=False)
        else:
            body = answer.body
            full = f" (full: {', '.join(body['full_queues'])})" if body["full_queues"] else ""
            out.print(f"replayed {body['replayed']}, stayed {body['stayed']}{full}", markup=False, highlight=False)
        return EXIT_OK
    answer = request(target, "GET", "/dlq", params={"limit": 1000})
    if answer.status != 200:
        return _fail(err, answer)
    if as_json:
        out.print(_json(answer.body), markup=False, highlight=False)
        return EXIT_OK
    table = Table(title=f"dead-letter queue: {answer.body['count']} jobs")
    # Whole ids, however narrow the terminal: they are what `dlq retry ID` takes. An error keeps
    # to its line (`jobqueue get ID` shows it whole).
    table.add_column("id", no_wrap=True, min_width=max((len(job["id"]) for job in answer.body["jobs"]), default=2))
    table.add_column("task", min_width=4)
    table.add_column("queue", min_width=5)
    table.add_column("attempts", min_width=8, justify="right")
    table.add_column("last error")
    for job in answer.body["jobs"]:
        table.add_row(job["id"], job["task"], job["queue"], str(job["retry_count"]), _first_line(job["error"] or ""))
    out.print(table)
    return EXIT_OK


def cancel(target: Target, job_ids: list[str], children: bool, chosen: dict[str, Any], out: Console,
           err: Console) -> int:  # fmt: skip
    """``cancel ID...``: each job; ``cancel`` with a filter: every matching one."""
    if not job_ids:
        answer = request(target, "POST", "/jobs/cancel", json=chosen)
        if answer.status != 200:
            return _fail(err, answer)
        out.print(f"cancelled {answer.body['cancelled']}", markup=False, highlight=False)
        return EXIT_OK
    code = EXIT_OK
    for job_id in job_ids:
        params = {"children": "true"} if children else None
        answer = request(target, "POST", f"/jobs/{quote(job_id, safe='')}/cancel", params=params)
        if answer.status != 200:
            code = _fail(err, answer)
            continue
        out.print(f"cancelled {job_id}", markup=False, highlight=False)
    return code


def _first_line(text: str, width: int = 60) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def stats_view(metrics: dict[str, Any], title: str = "jobqueue") -> Group:
    """The JSON of ``GET /metrics`` as a table (a column per queue), then the API process's totals."""
    table = Table(title=title, title_justify="left")
    table.add_column("")
    queues = metrics["queues"]
    for name in queues:
        table.add_column(name, justify="right")
    depths = [f"{q['depth']} / {'-' if q['capacity'] is None else q['capacity']}" for q in queues.values()]
    table.add_row("waiting / capacity", *depths)
    table.add_row("paused", *("yes" if q.get("paused") else "no" for q in queues.values()))
    if any(q.get("limits") for q in queues.values()):
        table.add_row("limits", *(limits_text(q.get("limits")) for q in queues.values()))
    for state in JobState:
        label = state.value.replace("_", " ").lower() + (" (awaiting retry)" if state is JobState.FAILED else "")
        table.add_row(label, *(str(q["states"][state.value]) for q in queues.values()), style="dim" if
                      not any(q["states"][state.value] for q in queues.values()) else None)  # fmt: skip
    totals = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in metrics["totals"].items() if v)
    summary = (
        f"DLQ {metrics['dlq_size']}, idempotency keys {metrics['idempotency_keys']}, "
        f"workers busy {metrics['workers_busy']} of {metrics['workers']}\n"
        f"counted by the API process: {totals or 'nothing yet'}"
    )
    return Group(table, Text(summary))


def stats(target: Target, as_json: bool, out: Console, err: Console) -> int:
    """``GET /metrics`` as a table (or its JSON)."""
    answer = request(target, "GET", "/metrics")
    if answer.status != 200:
        return _fail(err, answer)
    if as_json:
        out.print(_json(answer.body), markup=False, highlight=False)
    else:
        out.print(stats_view(answer.body, f"jobqueue at {target.backend or target.url}"))
    return EXIT_OK


def schedules(target: Target, action: str, name: str | None, as_json: bool, out: Console, err: Console) -> int:
    """``schedules list``: every schedule and its state; ``pause|resume|run-now NAME``: steer one."""
    if action != "list":
        if not name:
            err.print(f"error: schedules {action} needs a schedule name: jobqueue schedules {action} NAME")
            return 2
        path = {"pause": "pause", "resume": "resume", "run-now": "run"}[action]
        answer = request(target, "POST", f"/schedules/{name}/{path}")
        if answer.status not in (200, 202):
            return _fail(err, answer)
        said = f"job {answer.body['id']} enqueued" if action == "run-now" else f"{name} {action}d"
        out.print(said, markup=False, highlight=False)
        return EXIT_OK
    answer = request(target, "GET", "/schedules")
    if answer.status != 200:
        return _fail(err, answer)
    if as_json:
        out.print(_json(answer.body), markup=False, highlight=False)
        return EXIT_OK
    table = Table(title=f"schedules: {len(answer.body['schedules'])}", title_justify="left")
    for column in ("name", "task", "when", "state", "last tick", "last job", "next tick"):
        table.add_column(column, no_wrap=column in ("name", "last job"))
    for s in answer.body["schedules"]:
        table.add_row(s["name"], s["task"], s["when"], "paused" if s["paused"] else "active", s["last_tick"] or "-",
                      s["last_job_id"] or "-", s["next_tick"] or "-")  # fmt: skip
    out.print(table)
    return EXIT_OK


def queue(target: Target, action: str, name: str | None, limits: dict[str, Any], as_json: bool, out: Console,
          err: Console) -> int:  # fmt: skip
    """``queue list``: every queue, its state and limits; ``pause|resume NAME``: steer one for every
    worker; ``limit NAME``: set (or clear) its limits."""
    if action != "list":
        if not name:
            err.print(f"error: queue {action} needs a queue name: jobqueue queue {action} NAME")
            return 2
        path = f"/queues/{quote(name, safe='')}"
        if action == "limit":
            # PATCH: the limits not given are kept (none given: --clear, all of them go).
            answer = request(target, "PATCH" if limits else "DELETE", f"{path}/limits", json=limits or None)
        else:
            answer = request(target, "POST", f"{path}/{action}")
        if answer.status != 200:
            return _fail(err, answer)
        said = f"{name}: {limits_text(answer.body.get('limits'))}" if action == "limit" else f"{name} {action}d"
        out.print(said, markup=False, highlight=False)
        return EXIT_OK
    answer = request(target, "GET", "/queues")
    if answer.status != 200:
        return _fail(err, answer)
    if as_json:
        out.print(_json(answer.body), markup=False, highlight=False)
        return EXIT_OK
    table = Table(title=f"queues: {len(answer.body['queues'])}", title_justify="left")
    for column in ("name", "state", "waiting / capacity", "processing", "limits"):
        table.add_column(column, no_wrap=column == "name", justify="right" if column in ("waiting / capacity",
                         "processing") else "left")  # fmt: skip
    for q in answer.body["queues"]:
        capacity = "-" if q["capacity"] is None else q["capacity"]
        table.add_row(q["name"], "paused" if q["paused"] else "active", f"{q['depth']} / {capacity}",
                      str(q["states"]["PROCESSING"]), limits_text(q.get("limits")))  # fmt: skip
    out.print(table)
    return EXIT_OK


def limits_text(limits: dict[str, Any] | None) -> str:
    """A queue's limits in a few words: ``100/s (burst 100), 5 at once; per key 10/s, 1 at once``."""
    if not limits:
        return "no limits"

    def part(rate: str | None, burst: int | None, concurrency: int | None) -> str:
        words = [f"{rate} (burst {burst})"] if rate else []
        return ", ".join(words + ([f"{concurrency} at once"] if concurrency else []))

    queue_part = part(limits.get("rate"), limits.get("burst"), limits.get("concurrency"))
    key_part = part(limits.get("key_rate"), limits.get("key_burst"), limits.get("key_concurrency"))
    return "; ".join(filter(None, [queue_part, key_part and f"per key {key_part}"]))
