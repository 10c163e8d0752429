"""Feasibility arithmetic against a hand-written DuckDB snapshot and against tiers.

The organization 'acme' (as of 2026-11-24 12:00 UTC):
- balance 3000 on 11-20, topped up by 2500 on 11-22 while spending 500 (-> 5000), spends
  2000 on 11-23 (-> 3000) and 1500 on 11-24 (-> 1500); cap 10,000 credits per 30 days.
  Collections ran on 11-20..11-24, so purchases are known for 11-21..11-24: 2,500 bought,
  7,500 left under the cap.
- gen4.5: 2 concurrent, 200 per day, 150 used in the rolling day (latest row);
  veo3.1: 1 concurrent, 50 per day, none used; gen4_image: seen, no limits.

The plan (PLAN below): gen4.5 100 x 5 s + 20 x 10 s = 6,000 + 2,400 credits, 120 generations;
veo3.1 60 x 8 s, audio open = 9,600-19,200 credits, 60 generations; gen4_image 10 x 1080p = 80.
Maximum 27,680 credits.
"""

from __future__ import annotations

import json
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from runway_costs.analytics.db import connect_reader
from runway_costs.analytics.feasibility import (
    FeasibilityError,
    feasibility_for_org,
    feasibility_for_tier,
)
from runway_costs.analytics.plan import plan_from_records
from runway_costs.analytics.pricing import price_plan
from runway_costs.analytics.rates import RateTable
from runway_costs.analytics.tiertable import load_tiers
from runway_costs.cli.main import app
from tests.conftest import SANDBOX_AT

SCHEMA = Path(__file__).resolve().parents[2] / "runway_costs" / "collector" / "schema.sql"
AS_OF = datetime(2026, 11, 24, 12, 0)
PLAN = [
    {"model": "gen4.5", "count": 100, "seconds": 5},
    {"model": "gen4.5", "count": 20, "seconds": 10},
    {"model": "veo3.1", "count": 60, "seconds": 8},
    {"model": "gen4_image", "count": 10, "resolution": "1080p"},
]


def seed(db: Path, *, runs: bool = True, at: datetime = AS_OF) -> None:
    """Hand-written rows; timestamps relative to ``at`` (its day is 'day 0')."""
    d0 = datetime(at.year, at.month, at.day)

    def day(n: int, hour: int) -> datetime:
        return d0 + timedelta(days=n, hours=hour)

    con = duckdb.connect(str(db))
    con.execute(SCHEMA.read_text())
    con.executemany(
        "INSERT INTO org_snapshots VALUES (?, ?, ?, ?)",
        [
            ("acme", day(-4, 10), 3000, 10000),
            ("acme", day(-2, 23), 5000, 10000),
            ("acme", day(-1, 23), 3000, 10000),
            ("acme", day(0, 8), 1500, 10000),
            ("other", day(0, 8), 99999, 50000),
        ],
    )
    con.executemany(
        "INSERT INTO model_snapshots VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("acme", day(-1, 10), "gen4.5", 2, 200, 30),
            ("acme", day(0, 8), "gen4.5", 2, 200, 150),
            ("acme", day(0, 8), "veo3.1", 1, 50, 0),
            ("acme", day(0, 8), "gen4_image", None, None, 5),
            ("other", day(0, 8), "gen4.5", 10, 5000, 4000),
        ],
    )
    con.executemany(
        "INSERT INTO daily_usage VALUES (?, ?, ?, ?, ?)",
        [
            ("acme", day(-2, 0).date(), "gen4.5", 500, day(-2, 23)),
            ("acme", day(-1, 0).date(), "gen4.5", 2000, day(-1, 23)),
            ("acme", day(0, 0).date(), "veo3.1", 1500, day(0, 8)),
        ],
    )
    if runs:
        con.executemany(
            "INSERT INTO collection_runs (org, kind, started_at, finished_at, status, "
            "http_calls, retries) VALUES ('acme', 'full', ?, ?, 'ok', 2, 0)",
            [(day(n, 8), day(n, 8) + timedelta(minutes=1)) for n in range(-4, 1)],
        )
    con.close()


@pytest.fixture
def priced(rates: RateTable):
    return price_plan(plan_from_records(PLAN, rates), rates, AS_OF.date())


def by_model(feas) -> dict[str, dict]:
    return {r["model"]: r for r in feas.models.iter_rows(named=True)}


def test_org_feasibility(tmp_path: Path, rates: RateTable, priced) -> None:
    db = tmp_path / "runway.duckdb"
    seed(db)
    with closing(connect_reader(db)) as con:
        feas = feasibility_for_org(con, "acme", priced, rates, as_of=AS_OF)
    m = by_model(feas)
    gen = m["gen4.5"]
    assert (gen["generations"], gen["used_today"], gen["daily_limit_max"]) == (120, 150, 200)
    assert (gen["days_min"], gen["days_max"]) == (2, 2)  # ceil((120 + 150) / 200)
    assert gen["concurrency_max"] == 2
    assert gen["wall_clock_min_s"] == 5400.0  # ceil(120 / 2) x 90 s
    veo = m["veo3.1"]
    assert (veo["generations"], veo["days_max"], veo["wall_clock_max_s"]) == (60, 2, 9000.0)
    img = m["gen4_image"]
    assert img["generations"] == 10 and img["days_max"] is None
    assert img["note"] == "no limits known for this model"
    assert feas.plan_credits_max == 27680
    assert (feas.balance, feas.fits_balance, feas.missing_credits) == (1500, False, 26180)
    assert (feas.purchase_cap, feas.purchased_30d, feas.cap_available) == (10000, 2500, 7500)
    assert (feas.fits_cap, feas.cap_shortfall) == (False, 18680)
    # Runs finished 11-20 .. 11-24 08:01: 11-20's own purchases need 11-19's balance.
    assert (
        "purchases reconstructed since 2026-11-21 00:00 UTC (4 of 30 days known); any bought "
        "before are unknown and not counted against the cap"
    ) in feas.notes
    assert feas.purchases_window == "since 2026-11-21 00:00 UTC (4 of 30 days known)"
    assert feas.purchases_observed_since == "2026-11-21T00:00:00Z"


def test_org_without_purchase_history_uses_the_full_cap(
    tmp_path: Path, rates: RateTable, priced
) -> None:
    db = tmp_path / "runway.duckdb"
    seed(db, runs=False)
    with closing(connect_reader(db)) as con:
        feas = feasibility_for_org(con, "acme", priced, rates, as_of=AS_OF)
    assert (feas.purchased_30d, feas.cap_available, feas.cap_shortfall) == (None, 10000, 16180)
    assert any("full cap is treated as available" in n for n in feas.notes)
    assert feas.purchases_window == "unknown: no balance collected yet"
    assert feas.purchases_observed_since is None


def test_right_after_the_first_collection_purchases_are_unknown_not_zero(
    tmp_path: Path, rates: RateTable, priced
) -> None:
    db = tmp_path / "runway.duckdb"
    seed(db, runs=False)
    with duckdb.connect(str(db)) as con:  # the first collection ever: today 08:01
        con.execute(
            "INSERT INTO collection_runs (org, kind, started_at, finished_at, status, "
            "http_calls, retries) VALUES ('acme', 'full', '2026-11-24 08:00', "
            "'2026-11-24 08:01', 'ok', 2, 0)"
        )
    with closing(connect_reader(db)) as con:
        feas = feasibility_for_org(con, "acme", priced, rates, as_of=AS_OF)
    assert (feas.purchased_30d, feas.cap_available) == (None, 10000)
    assert feas.purchases_window == "unknown: balances collected only since 2026-11-24 08:01 UTC"
    assert (
        "purchases in the last 30 days are unknown: balances collected only since "
        "2026-11-24 08:01 UTC; the full cap is treated as available"
    ) in feas.notes


def test_unknown_org(tmp_path: Path, rates: RateTable, priced) -> None:
    db = tmp_path / "runway.duckdb"
    seed(db)
    with closing(connect_reader(db)) as con, pytest.raises(FeasibilityError) as info:
        feasibility_for_org(con, "acm", priced, rates, as_of=AS_OF)
    assert "no snapshot of organization 'acm' in the database (known: acme, other)" in str(
        info.value
    )


def test_tier_feasibility(rates: RateTable, priced) -> None:
    tiers = load_tiers()
    t1 = feasibility_for_tier(tiers, 1, priced, rates)
    gen = by_model(t1)["gen4.5"]
    # tier 1: 50-200 per day, 1-2 concurrent
    assert (gen["daily_limit_min"], gen["daily_limit_max"]) == (50, 200)
    assert (gen["days_min"], gen["days_max"]) == (1, 3)  # ceil(120/200), ceil(120/50)
    assert (gen["wall_clock_min_s"], gen["wall_clock_max_s"]) == (5400.0, 10800.0)
    assert (t1.balance, t1.fits_balance, t1.missing_credits) == (None, None, 27680)
    assert (t1.cap_available, t1.fits_cap, t1.cap_shortfall) == (10000, False, 17680)
    t2 = feasibility_for_tier(tiers, 2, priced, rates)
    m2 = by_model(t2)
    assert (m2["gen4.5"]["days_min"], m2["gen4.5"]["days_max"]) == (1, 1)
    assert m2["gen4.5"]["wall_clock_max_s"] == 3600.0  # ceil(120/3) x 90
    assert m2["veo3.1"]["wall_clock_max_s"] == 3000.0  # ceil(60/3) x 150
    assert m2["gen4_image"]["wall_clock_max_s"] == 80.0  # ceil(10/3) x 20
    assert (t2.cap_available, t2.fits_cap, t2.cap_shortfall) == (50000, True, 0)


def test_tier_table(write) -> None:
    tiers = load_tiers()
    assert [t.purchase_cap_credits for t in tiers.tiers] == [
        10_000, 50_000, 200_000, 2_000_000, 10_000_000
    ]  # fmt: skip
    assert [(t.unlock_days, t.unlock_spend_usd) for t in tiers.tiers] == [
        (0, 0.0), (1, 50.0), (7, 100.0), (14, 1000.0), (7, 5000.0)
    ]  # fmt: skip
    assert tiers.tier(4).daily_generations_min == 5000
    custom = load_tiers(
        write(
            "tiers.toml",
            "[[tiers]]\ntier = 1\nconcurrency = [1, 2]\ndaily_generations = [50, 200]\n"
            "purchase_cap_credits = 10000\nunlock_days = 0\nunlock_spend_usd = 0\n"
            '[tiers.models."gen4.5"]\nconcurrency = 2\ndaily_generations = 200\n',
        )
    )
    pinned = custom.limits_for(1, "gen4.5")
    assert (pinned.concurrency_min, pinned.daily_generations_min) == (2, 200)
    other = custom.limits_for(1, "veo3")
    assert (other.concurrency_min, other.concurrency_max) == (1, 2)


def test_cli_org_feasibility(tmp_path: Path, write) -> None:
    yesterday = SANDBOX_AT - timedelta(days=1)  # the suite pins the CLI's clock at SANDBOX_AT
    db = tmp_path / "runway.duckdb"
    seed(db, runs=False, at=yesterday)  # every row is in the past
    plan = write("plan.json", json.dumps(PLAN))
    result = CliRunner().invoke(
        app, ["price", str(plan), "--org", "acme", "--db", str(db), "--json"],
        env={"RUNWAY_COSTS_CONFIG": ""},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    feas = json.loads(result.stdout)["feasibility"]
    assert feas["source"] == "organization 'acme'"
    gen = next(m for m in feas["models"] if m["model"] == "gen4.5")
    assert (gen["used_today"], gen["days_max"], gen["concurrency_max"]) == (150, 2, 2)
    assert (feas["balance"], feas["missing_credits"]) == (1500, 26180)
    human = CliRunner().invoke(
        app, ["price", str(plan), "--org", "acme", "--db", str(db)],
        env={"RUNWAY_COSTS_CONFIG": "", "COLUMNS": "160"},
    )  # fmt: skip
    assert human.exit_code == 0, human.output
    assert "Balance: 1,500 credits; plan maximum 27,680: does not fit, 26,180 credits missing" in (
        human.stdout
    )
    assert "buying 26,180: does not fit: 16,180 credits over the cap" in human.stdout
    missing = CliRunner().invoke(
        app, ["price", str(plan), "--org", "nobody", "--db", str(db)],
        env={"RUNWAY_COSTS_CONFIG": ""},
    )  # fmt: skip
    assert missing.exit_code == 2
    assert "no snapshot of organization 'nobody'" in missing.stderr
    no_db = CliRunner().invoke(
        app, ["price", str(plan), "--org", "acme", "--db", str(tmp_path / "none.duckdb")],
        env={"RUNWAY_COSTS_CONFIG": ""},
    )  # fmt: skip
    assert no_db.exit_code == 2
    assert "no data yet" in no_db.stderr
