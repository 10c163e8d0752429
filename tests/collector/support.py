"""Helpers for the store/cycle/scheduler tests: settings for a sandbox, dumps, truth."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import duckdb
from pydantic import SecretStr

from runway_costs.core.config import CollectionConfig, OrgConfig, Settings

REPO = Path(__file__).resolve().parents[2]
DATA_TABLES = ("org_snapshots", "model_snapshots", "model_daily", "daily_usage")

# Small timeouts/backoffs so fault tests take seconds.
FAST = {"timeout_seconds": 5.0, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}


def settings_for(
    sandbox, db: Path, names: Iterable[str] | None = None, extra: Iterable[OrgConfig] = (), **coll
) -> Settings:
    """Settings whose orgs are the sandbox's (all, or ``names``) plus ``extra``."""
    wanted = set(names) if names is not None else None
    orgs = tuple(
        OrgConfig(name=o["name"], api_key=SecretStr(o["api_key"]), base_url=sandbox.base_url)
        for o in sandbox.orgs
        if wanted is None or o["name"] in wanted
    ) + tuple(extra)
    return Settings(db_path=db, orgs=orgs, collection=CollectionConfig(**{**FAST, **coll}))


def dump(db: Path, tables: Iterable[str] = DATA_TABLES) -> dict[str, list[tuple]]:
    """Every row of the tables, sorted: equal dumps mean identical tables."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}


def usage_rows(db: Path, org: str) -> list[tuple[date, str, int]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT date, model, credits FROM daily_usage WHERE org = ? ORDER BY date, model",
            [org],
        ).fetchall()


def truth(sandbox, org: str, first: date, last: date) -> list[tuple[date, str, int]]:
    """What the sandbox world serves for [first, last] at its current clock."""
    world_org = sandbox.world.org(org)
    now = sandbox.world.now()
    rows = []
    d = first
    while d <= last:
        rows += [(d, m, c) for m, c in world_org.served_amounts(d, now).items()]
        d += timedelta(days=1)
    return sorted(rows)


def consistency_problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The invariant a reader must always see: every org's usage rows and credits equal
    what its latest ok run recorded when it committed, and whole cycles only."""
    rows = con.execute(
        """
        WITH latest AS (
            SELECT org, usage_rows, usage_credits FROM collection_runs WHERE status = 'ok'
            QUALIFY row_number() OVER (PARTITION BY org ORDER BY run_id DESC) = 1
        ), actual AS (
            SELECT org, count(*) AS n, sum(credits) AS c FROM daily_usage GROUP BY org
        )
        SELECT l.org, l.usage_rows, l.usage_credits, a.n, a.c
        FROM latest l LEFT JOIN actual a USING (org)
        WHERE l.usage_rows IS DISTINCT FROM coalesce(a.n, 0)
           OR l.usage_credits IS DISTINCT FROM coalesce(a.c, 0)
        """
    ).fetchall()
    return [f"{r[0]}: run says {r[1]} rows/{r[2]} credits, table has {r[3]}/{r[4]}" for r in rows]


def runs_per_org(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.execute("SELECT org, count(*) FROM collection_runs GROUP BY org").fetchall())


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run the installed ``runway-costs`` entry point."""
    exe = Path(sys.executable).with_name("runway-costs")
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=REPO,
    )


def write_config(path: Path, sandbox, names: Iterable[str] | None = None, **coll) -> dict[str, str]:
    """A TOML config for the sandbox orgs; returns the env vars holding their keys."""
    env: dict[str, str] = {}
    lines = ["[collection]"] + [f"{k} = {v}" for k, v in {**FAST, **coll}.items()]
    for o in sandbox.orgs:
        if names is not None and o["name"] not in names:
            continue
        var = "TEST_KEY_" + o["name"].upper().replace("-", "_")
        env[var] = o["api_key"]
        lines += [
            "",
            "[[orgs]]",
            f'name = "{o["name"]}"',
            f'api_key_env = "{var}"',
            f'base_url = "{sandbox.base_url}"',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return env
