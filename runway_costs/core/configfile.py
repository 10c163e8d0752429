"""Where the configuration comes from, without the typed settings: the config file, the
environment variables, and the files the configuration names (the database, the rates).

``core.config.load_settings`` builds the typed ``Settings`` from these rules; a command
that needs only the file paths (``price``) asks ``load_file_paths``, which with no config
file resolves them from the flags and the environment alone. Building ``Settings`` means
importing pydantic and building its models (~0.07 s), more than all the rest of pricing a
small plan, so this module imports neither pydantic nor ``core.config`` at its top.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runway_costs.core.tomlfile import read_toml

DEFAULT_BASE_URL = "https://api.dev.runwayml.com"
DEFAULT_DB = Path("data/runway.duckdb")
ENV_CONFIG = "RUNWAY_COSTS_CONFIG"
ENV_DB = "RUNWAY_COSTS_DB"
ENV_KEY = "RUNWAYML_API_SECRET"
ENV_BASE_URL = "RUNWAYML_BASE_URL"
# The password for the dashboard or /metrics served beyond loopback (never in a file of ours).
ENV_PASSWORD = "RUNWAY_COSTS_DASHBOARD_PASSWORD"


class ConfigError(Exception):
    """The configuration is unusable; the message names the file and the field."""


def config_file(flag: Path | None, env: Mapping[str, str]) -> Path | None:
    """The config file: ``--config``, else RUNWAY_COSTS_CONFIG (empty means none)."""
    if flag is None and env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    return flag


def read_config(path: Path) -> dict[str, Any]:
    """The config file's TOML; a missing, unreadable or invalid file is a ConfigError."""
    return read_toml(Path(path), "config file", ConfigError)


def file_paths(
    data: dict[str, Any],
    source: str,
    base_dir: Path,
    db_flag: Path | None,
    env: Mapping[str, str],
) -> dict[str, Path]:
    """The settings fields for the files, taking ``rates`` and ``db`` out of the config
    file's ``data``: ``rates_path`` from ``rates``, ``db_path`` from ``--db``, else
    RUNWAY_COSTS_DB, else ``db``. A path in the file is relative to the file's folder
    (``base_dir``). A field left out keeps its default (the shipped rates, DEFAULT_DB)."""
    out: dict[str, Path] = {}
    for key, field in (("rates", "rates_path"), ("db", "db_path")):
        if key in data:
            value = data.pop(key)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{source}: {key}: must be a file path (a string), got {value!r}")
            path = Path(value)
            out[field] = path if path.is_absolute() else base_dir / path
    if db_flag is not None:
        out["db_path"] = db_flag
    elif env.get(ENV_DB):
        out["db_path"] = Path(env[ENV_DB])
    return out


@dataclass(frozen=True)
class FilePaths:
    """The database and the rate table a command uses (None: the shipped rates)."""

    db_path: Path
    rates_path: Path | None


def load_file_paths(
    config_path: Path | None = None,
    db_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> FilePaths:
    """The file paths ``load_settings`` would give, for a command that needs nothing else.

    With no config file they come from the flag and the environment, and nothing needs
    checking. A config file is checked whole (``load_settings``), as every command checks
    it, so a bad file is the same one-line error everywhere."""
    env = os.environ if env is None else env
    if config_file(config_path, env) is None:
        found = file_paths({}, "<defaults>", Path.cwd(), db_path, env)
        return FilePaths(found.get("db_path", DEFAULT_DB), None)  # only a file names rates
    from runway_costs.core.config import load_settings

    settings = load_settings(config_path=config_path, db_path=db_path, env=dict(env))
    return FilePaths(settings.db_path, settings.rates_path)
