from __future__ import annotations

import re
import socket
from pathlib import Path

from click.testing import CliRunner

from jobqueue.cli import app

runner = CliRunner()


def test_demo_runs_the_scenario_over_http() -> None:
    args = ["demo", "--backend", "memory://", "--port", "0", "--seed", "3", "--capacity", "30", "--duration", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "The API is at http://127.0.0.1:" in result.output
    assert "1. seeded 15 jobs" in result.output
    assert "2. duplicate key 'order-0' refused (409)" in result.output
    flood = re.search(r"flooded the queue with 130 jobs: (\d+) accepted, then (\d+) refused with 503", result.output)
    assert flood is not None, result.output
    accepted, refused = int(flood[1]), int(flood[2])
    assert accepted + refused == 130 and refused > 0
    assert "live statistics (GET /metrics)" in result.output
    assert "demo stopped:" in result.output


def test_demo_on_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    args = ["demo", "--backend", f"sqlite:///{db}", "--failure-rate", "0", "--port", "0", "--duration", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert db.exists()


def test_demo_ignores_jobqueue_url_and_says_why_a_rerun_seeds_nothing(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    args = ["demo", "--failure-rate", "0", "--port", "0", "--duration", "0"]
    result = runner.invoke(app, args, env={"JOBQUEUE_URL": f"sqlite:///{real}"})
    assert result.exit_code == 0, result.output
    assert not real.exists()  # the demo ran on a throw-away store
    kept = tmp_path / "kept.db"
    for _ in range(2):
        result = runner.invoke(app, [*args, "--backend", f"sqlite:///{kept}"])
        assert result.exit_code == 0, result.output
    assert "1. seeded 0 jobs" in result.output
    assert "15 keys were already held by an earlier run on this store (409)" in result.output


def test_bad_backend_url_is_a_clear_error() -> None:
    result = runner.invoke(app, ["demo", "--backend", "nosuch://x", "--port", "0"])
    assert result.exit_code == 2
    assert "unsupported backend URL" in result.output


def test_demo_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["demo", "--backend", "memory://", "--port", str(port)])
    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.strip()
