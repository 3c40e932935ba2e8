from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from jobqueue.cli import app

runner = CliRunner()


def test_demo_runs_the_scenario_to_the_end() -> None:
    result = runner.invoke(app, ["demo", "--backend", "memory://", "--seed", "3", "--capacity", "30"])
    assert result.exit_code == 0, result.output
    assert "seeded 15 jobs" in result.output
    assert "duplicate key 'order-0' refused" in result.output
    assert "15 accepted, then 10 refused" in result.output
    assert "queue statistics" in result.output


def test_demo_on_sqlite_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--backend", f"sqlite:///{tmp_path / 'd.db'}", "--failure-rate", "0"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d.db").exists()


def test_bad_backend_url_is_a_clear_error() -> None:
    result = runner.invoke(app, ["demo", "--backend", "nosuch://x"])
    assert result.exit_code == 2
    assert "unsupported backend URL" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.strip()
