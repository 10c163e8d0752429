"""Error lines reach the user verbatim: Rich markup in a message must not eat its text."""

from __future__ import annotations

from typer.testing import CliRunner

from runway_costs.cli.main import app


def test_missing_org_config_message_keeps_its_brackets(tmp_path):
    done = CliRunner().invoke(
        app,
        ["collect", "--db", str(tmp_path / "x.duckdb")],
        env={"RUNWAYML_API_SECRET": "", "RUNWAY_COSTS_CONFIG": "", "COLUMNS": "300"},
    )
    assert done.exit_code == 2
    assert "with [[orgs]] entries" in done.output
    assert not (tmp_path / "x.duckdb").exists()  # nothing written on a config error
