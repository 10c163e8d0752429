"""The bind rule, the password gate and the CLI refusals (no server started here)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runway_costs.cli.main import app
from runway_costs.dashboard import serve
from runway_costs.dashboard.auth import check_password

PASSWORD_ENV = "RUNWAY_COSTS_DASHBOARD_PASSWORD"


@pytest.fixture
def no_home_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without ~/.streamlit/secrets.toml, and an empty app dir."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    app_dir = tmp_path / "app"
    (app_dir / ".streamlit").mkdir(parents=True)
    return app_dir


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_password(host: str, no_home_secrets: Path) -> None:
    assert serve.is_local(host)
    assert not serve.password_configured({}, no_home_secrets)  # no password anywhere
    serve.check_bind(host, env={}, app_dir=no_home_secrets)  # and yet served: no error


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_other_addresses_are_refused_without_a_password(host: str, no_home_secrets: Path):
    with pytest.raises(serve.DashboardError) as err:
        serve.check_bind(host, env={}, app_dir=no_home_secrets)
    assert f"refusing to serve the dashboard on {host}" in str(err.value)
    assert PASSWORD_ENV in str(err.value)


def test_password_from_environment_or_streamlit_secrets(no_home_secrets: Path) -> None:
    serve.check_bind("0.0.0.0", env={PASSWORD_ENV: "s3cret"}, app_dir=no_home_secrets)
    secrets = no_home_secrets / ".streamlit" / "secrets.toml"
    secrets.write_text('dashboard_password = "from-secrets"\n', encoding="utf-8")
    serve.check_bind("0.0.0.0", env={}, app_dir=no_home_secrets)
    assert serve.secrets_password(no_home_secrets) == "from-secrets"


def test_malformed_secrets_file_is_named(no_home_secrets: Path) -> None:
    secrets = no_home_secrets / ".streamlit" / "secrets.toml"
    secrets.write_text("dashboard_password = \n", encoding="utf-8")
    with pytest.raises(serve.DashboardError, match="cannot read Streamlit secrets"):
        serve.check_bind("0.0.0.0", env={}, app_dir=no_home_secrets)


def test_constant_time_check() -> None:
    assert check_password("s3cret", "s3cret")
    assert not check_password("s3cre", "s3cret")
    assert not check_password("", "s3cret")


def test_server_url_names_a_reachable_address() -> None:
    assert serve.DashboardServer(None, "127.0.0.1", 8600).url == "http://127.0.0.1:8600"
    assert serve.DashboardServer(None, "0.0.0.0", 8600).url == "http://127.0.0.1:8600"
    assert serve.DashboardServer(None, "::1", 8600).url == "http://[::1]:8600"


# --- the gate in the app ------------------------------------------------------------


def test_gate_asks_for_the_password(app_for, seeded_db: Path, monkeypatch) -> None:
    at = app_for(seeded_db)
    monkeypatch.setenv("RUNWAY_COSTS_DASHBOARD_AUTH", "1")
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    at.run()
    assert [t.value for t in at.title] == ["Runway costs"]
    assert not at.metric  # nothing of the data before the password
    at.text_input(key="_password").input("wrong").run()
    assert [e.value for e in at.error] == ["Wrong password."]
    assert not at.metric
    at.text_input(key="_password").input("s3cret").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Overview"]
    assert {m.label: m.value for m in at.metric}["Balance (credits)"] == "24,300"
    shown = [str(e.value) for e in [*at.markdown, *at.caption, *at.text_input]]
    assert not any("s3cret" in s for s in shown)


def test_gate_accepts_the_streamlit_secret(app_for, seeded_db: Path, monkeypatch) -> None:
    at = app_for(seeded_db)
    monkeypatch.setenv("RUNWAY_COSTS_DASHBOARD_AUTH", "1")
    at.secrets["dashboard_password"] = "from-secrets"
    at.run()
    at.text_input(key="_password").input("from-secrets").run()
    assert [t.value for t in at.title] == ["Overview"]


def test_gate_refuses_to_show_anything_without_a_password(app_for, seeded_db, monkeypatch):
    at = app_for(seeded_db)
    monkeypatch.setenv("RUNWAY_COSTS_DASHBOARD_AUTH", "1")
    monkeypatch.setenv("HOME", str(seeded_db.parent))  # no ~/.streamlit/secrets.toml
    at.run()
    assert "no password is set" in at.error[0].value
    assert not at.metric and not at.text_input


# --- CLI refusals (exit 2, one clear line, nothing started) ----------------------------


def test_cli_refuses_public_host_without_password(seeded_db: Path, monkeypatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setenv("HOME", str(seeded_db.parent))
    result = CliRunner().invoke(app, ["dashboard", "--db", str(seeded_db), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to serve the dashboard on 0.0.0.0" in result.output


def test_cli_refuses_a_busy_port(seeded_db: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["dashboard", "--db", str(seeded_db), "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot serve on 127.0.0.1:{port}: the address is in use" in result.output


def test_cli_bad_config_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[collection]\nsnapshot_minutes = -1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["dashboard", "--config", str(bad)])
    assert result.exit_code == 2
    assert "snapshot_minutes" in result.output


def test_up_requires_organizations(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("RUNWAY_COSTS_CONFIG", raising=False)
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    result = CliRunner().invoke(app, ["up", "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2
    assert "no organization configured" in result.output
