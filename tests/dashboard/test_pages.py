"""Every page through Streamlit's AppTest on hand-written databases (tests/dashboard/seed.py).

Expected figures are worked out by hand from the seed rows; the comments show the sums.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from runway_costs.analytics import db as analytics_db
from runway_costs.collector.store import rebuild_model_daily
from tests.conftest import SANDBOX_AT
from tests.dashboard import seed


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def chart_titles(at: AppTest) -> list[str]:
    titles = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        titles.append(spec.get("title") or spec["layer"][0].get("title"))
    return titles


def table(at: AppTest, *columns: str):
    """The first table on the page having all ``columns`` (read-only tables carry no key)."""
    for frame in at.dataframe:
        value = frame.value
        if set(columns) <= set(value.columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"app_pages/{page}.py").run()
    no_exception(at)
    return at


# --- overview -----------------------------------------------------------------------


def test_overview_sums_all_organizations(app_for, seeded_db: Path) -> None:
    at = app_for(seeded_db).run()
    no_exception(at)
    m = metrics(at)
    assert m["Balance (credits)"] == "24,300"  # alpha 4,300 (latest) + beta 20,000
    assert m["Balance (USD)"] == "243.00"
    assert m["Month-to-date spend (credits)"] == "1,970"  # March: 200+400-50+300 + 1000+120
    assert m["Monthly budget (credits)"] == "5,000"  # alpha 2,000 + beta USD 30 = 3,000
    assert m["30-day purchase cap (credits)"] == "60,000"  # 10,000 + 50,000
    # One collection each, 03-20 10:00: no day's purchases are known yet (not 0).
    assert m["Bought, last 30 days (credits)"] == "unknown"
    assert "Nothing known yet: balances collected only since 2025-03-20 10:00 UTC." in texts(
        at, "caption"
    )
    assert "all organizations (alpha, beta) · as of 2025-03-20 (UTC)" in texts(at, "caption")
    warnings = texts(at, "warning")
    assert any("Last successful collection: 2025-03-20 10:00 UTC" in w for w in warnings)
    assert any("older than 2 hours" in w for w in warnings)  # stale: it is not 2025 anymore
    assert any("1 collection run(s) failed since then" in w for w in warnings)  # beta 11:00
    assert chart_titles(at) == [
        "Cumulative spend, last 30 days and forecast, vs 30-day cap: "
        "all organizations (alpha, beta)"
    ]
    per_org = table(at, "org", "mtd_credits")
    assert per_org["org"].tolist() == ["alpha", "beta"]
    assert per_org["balance_credits"].tolist() == [4300, 20000]
    assert per_org["mtd_credits"].tolist() == [850, 1120]


def test_overview_one_organization_and_budget_progress(app_for, seeded_db: Path) -> None:
    at = app_for(seeded_db).run()
    at.selectbox(key="org_choice").set_value("beta").run()
    no_exception(at)
    m = metrics(at)
    assert m["Balance (credits)"] == "20,000"
    assert m["Month-to-date spend (credits)"] == "1,120"  # 03-05 1,000 + 03-20 120
    assert m["Monthly budget (credits)"] == "3,000"  # USD 30 at USD 0.01 a credit
    assert [p.proto.text for p in at.get("progress")] == ["37% of budget used"]  # 1120/3000
    assert chart_titles(at)[0].endswith(": beta")
    assert not at.dataframe  # no per-organization table for one organization


def test_overview_bought_says_since_when_it_is_known(app_for, seeded_db: Path) -> None:
    with duckdb.connect(str(seeded_db)) as con:  # alpha also collected on 03-18 and 03-19
        for day in ("2025-03-18", "2025-03-19"):
            con.execute(
                """INSERT INTO collection_runs (org, kind, started_at, finished_at, status,
                   http_calls, retries) VALUES ('alpha', 'snapshot', ?::TIMESTAMP,
                   ?::TIMESTAMP, 'ok', 1, 0)""",
                [f"{day} 11:59:00", f"{day} 12:00:00"],
            )
    at = app_for(seeded_db).run()
    at.selectbox(key="org_choice").set_value("alpha").run()
    no_exception(at)
    # 03-19: 5,000 - 5,000 + 0 = 0; 03-20: 4,300 - 5,000 + 300 < 0 -> 0. 03-18 needs 03-17.
    assert metrics(at)["Bought, last 30 days (credits)"] == "0"
    assert (
        "Only since 2025-03-19 00:00 UTC (2 of 30 days known); earlier purchases are unknown."
        in texts(at, "caption")
    )


def test_overview_forecast_and_runout_on_a_steady_history(app_for, tmp_path: Path) -> None:
    db = tmp_path / "steady.duckdb"
    seed.create_steady(db)
    at = app_for(db, config=None).run()
    no_exception(at)
    m = metrics(at)
    assert m["Month-to-date spend (credits)"] == "2,000"  # 20 March days x 100
    # Rest of 20 March (half a day, 50) + 21..31 March (11 x 100) on top of 2,000.
    assert m["Month-end forecast (credits)"] == "3,150"
    assert m["Month-end forecast (USD)"] == "31.50"
    assert "80% interval: 3,150 to 3,150 credits (USD 31.50 to 31.50)" in texts(at, "caption")
    # Balance 3,000 at noon: 50 + 100 k >= 3,000 first at k = 30 days after 20 March.
    assert m["Run-out date (no purchases)"] == "2025-04-19"
    assert m["Monthly budget (credits)"] == "not set"


def test_overview_of_several_steady_organizations(app_for, tmp_path: Path) -> None:
    db = tmp_path / "steady2.duckdb"
    seed.create_steady(db, orgs=("north", "south"))
    with duckdb.connect(str(db)) as con:  # north may buy only 2,000 credits in 30 days
        con.execute("UPDATE org_snapshots SET max_monthly_credit_spend = 2000 WHERE org = 'north'")
    at = app_for(db, config=None).run()
    no_exception(at)
    m = metrics(at)
    assert m["Month-to-date spend (credits)"] == "4,000"  # 2 orgs x 20 days x 100
    assert m["Month-end forecast (credits)"] == "6,300"  # 4,000 + 2 x (50 + 11 x 100)
    # Each org: 3,000 left, 50 + 100 k >= 3,000 at k = 30 -> 2025-04-19; the earliest wins.
    assert m["Run-out date (no purchases)"] == "2025-04-19 (north)"
    # north buys what its 3,000 balance lacks from day 30 (50, then 100 a day): its 30-day
    # purchases 50 + 100 (k - 30) first exceed 2,000 at k = 50 -> 2025-05-09. south's cap of
    # 10,000 is never reached (at most 3,000 bought in any 30 days).
    assert m["30-day cap binds"] == "2025-05-09 (north)"
    per_org = table(at, "org", "runout_date")
    assert per_org["runout_date"].tolist() == ["2025-04-19", "2025-04-19"]
    assert per_org["cap_bound_date"].iloc[0] == "2025-05-09"
    assert per_org["cap_bound_date"].isna().tolist() == [False, True]
    assert per_org["month_end_mid"].tolist() == [3150, 3150]


def test_overview_organization_without_usage(app_for, seeded_db: Path) -> None:
    seed.add_quiet_org(seeded_db)
    at = app_for(seeded_db).run()
    at.selectbox(key="org_choice").set_value("quiet").run()
    no_exception(at)
    m = metrics(at)
    assert m["Balance (credits)"] == "800"
    assert m["Month-to-date spend (credits)"] == "0"
    assert m["Month-end forecast (credits)"] == "0"
    assert m["Run-out date (no purchases)"] == "not within 180 days"
    goto(at, "spend")
    assert any("No usage recorded for quiet" in t for t in texts(at, "info"))


# --- spend --------------------------------------------------------------------------


def test_spend_page_totals_tables_and_downloads(app_for, seeded_db: Path) -> None:
    at = goto(app_for(seeded_db).run(), "spend")
    m = metrics(at)
    assert m["Spend in range (credits)"] == "2,070"  # alpha 950 + beta 1,120
    assert m["Spend in range (USD)"] == "USD 20.70"
    monthly = table(at, "month", "credits")
    assert monthly["month"].tolist() == ["2025-02-01", "2025-03-01"]
    assert monthly["credits"].tolist() == [100, 1970]
    by_model = table(at, "model", "share")
    assert by_model["model"].tolist() == ["gen4_turbo", "veo3.1", "gen4.5"]
    assert by_model["credits"].tolist() == [1000, 700, 370]  # gen4.5: 100+200-50+120
    rows = table(at, "org", "date", "model", "credits")
    assert len(rows) == 7 and rows["credits"].min() == -50  # the refund day stays negative
    downloads = [b.proto.label for b in at.get("download_button")]
    assert downloads.count("Download CSV") == 3 and downloads.count("Download Parquet") == 3
    assert chart_titles(at) == [
        "Credits per day by model: all organizations (alpha, beta)",
        "Credits per month: all organizations (alpha, beta)",
        "Credits per model: all organizations (alpha, beta)",
    ]


def test_date_range_and_organization_persist_across_pages(app_for, seeded_db: Path) -> None:
    at = app_for(seeded_db).run()
    at.selectbox(key="org_choice").set_value("alpha")
    at.date_input(key="date_range").set_value((date(2025, 3, 1), date(2025, 3, 10))).run()
    goto(at, "spend")
    assert metrics(at)["Spend in range (credits)"] == "550"  # alpha: 200+400-50
    goto(at, "limits")
    assert at.selectbox(key="org_choice").value == "alpha"
    assert at.date_input(key="date_range").value == (date(2025, 3, 1), date(2025, 3, 10))
    goto(at, "spend")
    assert metrics(at)["Spend in range (credits)"] == "550"


# --- limits -------------------------------------------------------------------------


def test_limits_page(app_for, seeded_db: Path) -> None:
    at = goto(app_for(seeded_db).run(), "limits")
    now = table(at, "used %")
    assert now["org"].tolist() == ["alpha", "alpha", "beta"]
    assert now["model"].tolist() == ["gen4.5", "veo3.1", "gen4_turbo"]
    assert now["daily_generations"].tolist() == [25, 45, 100]
    assert now["max_daily_generations"].tolist() == [200, 50, 500]
    assert now["used %"].tolist() == [12.5, 90.0, 20.0]
    assert now["max_concurrent_generations"].tolist() == [2, 1, 3]
    assert now["peak_7d"].tolist() == [25, 45, 100]  # alpha gen4.5: 10 on 03-19, 25 on 03-20
    md = texts(at, "markdown")
    assert "**alpha**: tier 1 (30-day purchase cap 10,000 credits)" in md
    assert "**beta**: tier 2 (30-day purchase cap 50,000 credits)" in md
    captions = texts(at, "caption")
    assert "Tier 2 (cap 50,000 credits) needs 1 days at tier 1 and USD 50.00 spent." in captions
    assert "Tier 3 (cap 200,000 credits) needs 7 days at tier 2 and USD 100.00 spent." in captions
    bars = [p.proto.text for p in at.get("progress")]
    # alpha: cap unchanged since 03-01 00:00 -> 19.4 days by 03-20 10:00; USD 9.50 spent.
    assert bars == [
        "days at tier 1: at least 19.4 of 1",
        "spent: USD 9.50 of 50.00",
        "days at tier 2: at least 10.4 of 7",
        "spent: USD 11.20 of 100.00",
    ]
    assert chart_titles(at) == [
        "Peak daily generations (rolling 24 h) as a share of the limit: "
        "all organizations (alpha, beta)"
    ]


# --- planner ------------------------------------------------------------------------


def test_planner_prices_the_sample_plan(app_for, seeded_db: Path) -> None:
    at = goto(app_for(seeded_db).run(), "planner")
    m = metrics(at)
    # gen4.5 4x10s x12 = 480; veo3.1 2x8s x40 = 640; veo3.1_fast 6x6s x10..15 = 360..540;
    # gen4_image 20 x8 = 160; turbo 40 x2 = 80; tts 3 x ceil(130/50) = 9;
    # isolation 3 x ceil(20/6) = 12; sfx 12 x 1..2 = 12..24; gwm1_avatars unpriced.
    assert m["Plan total (credits)"] == "1,753 to 1,945"
    assert m["Plan total (USD)"] == "USD 17.53 to 19.45"
    assert m["Rows without a price"] == "1 of 9"
    # All organizations selected: feasibility against a tier (tier 1 by default).
    assert m["Credits to buy"] == "1,945"
    assert m["Left under the 30-day cap"] == "10,000"
    cheaper = table(at, "saving_credits")
    # veo3.1 2x8s with audio 640 -> veo3.1_fast 2x8x15 = 240; veo3.1_fast 6x6s 360..540 ->
    # gen4.5 6x6x12 = 432 (540 - 432); gen4_image 20x8 = 160 -> gen4_image_turbo 20x2 = 40.
    assert cheaper[["model", "alt_model", "saving_credits"]].values.tolist() == [
        ["veo3.1", "veo3.1_fast", 400],
        ["veo3.1_fast", "gen4.5", 108],
        ["gen4_image", "gen4_image_turbo", 120],
    ]


def test_planner_feasibility_for_the_selected_organization(app_for, seeded_db: Path) -> None:
    at = app_for(seeded_db).run()
    at.selectbox(key="org_choice").set_value("alpha").run()
    goto(at, "planner")
    m = metrics(at)
    assert m["Balance"] == "4,300 credits"
    assert m["Plan maximum fits the balance"] == "yes"  # 1,945 <= 4,300
    assert m["Credits to buy"] == "0"
    models = table(at, "used_today").set_index("model")
    assert models.loc["veo3.1", "used_today"] == 45
    assert models.loc["veo3.1", "daily_limit_max"] == 50


def test_planner_upload_and_edit(app_for, seeded_db: Path) -> None:
    at = goto(app_for(seeded_db).run(), "planner")
    at.file_uploader(key="plan_file").upload(
        "mine.csv", b"label,model,count,seconds\nad,gen4.5,2,5\nad,gen4_turbo,3,10\n", "text/csv"
    ).run()
    no_exception(at)
    assert metrics(at)["Plan total (credits)"] == "270 to 270"  # 2x5x12 + 3x10x5
    editor = next(k for k in at.session_state if k.startswith("plan_editor_"))
    at.session_state[editor] = {
        "edited_rows": {0: {"count": 10}},
        "added_rows": [],
        "deleted_rows": [1],
    }
    at.run()
    no_exception(at)
    assert metrics(at)["Plan total (credits)"] == "600 to 600"  # 10x5x12, turbo row deleted


def test_planner_shows_every_problem_of_a_bad_file(app_for, seeded_db: Path) -> None:
    at = goto(app_for(seeded_db).run(), "planner")
    at.file_uploader(key="plan_file").upload(
        "bad.csv", b"model,count,seconds\ngen45,1,5\ngen4.5,-2,5\n", "text/csv"
    ).run()
    no_exception(at)
    assert texts(at, "error") == ["bad.csv cannot be priced (2 problem(s)); nothing was priced."]
    report = at.code[0].value
    assert "bad.csv: line 2" in report and "gen4.5" in report  # the suggestion
    assert "bad.csv: line 3" in report
    assert not at.metric


# --- states -------------------------------------------------------------------------

PAGES = ("overview", "spend", "limits", "alerts")


@pytest.mark.parametrize("kind", ["missing file", "no rows"])
def test_empty_database_shows_a_helpful_state(app_for, tmp_path: Path, kind: str) -> None:
    db = tmp_path / "empty.duckdb"
    if kind == "no rows":
        seed.create_empty(db)
    at = app_for(db).run()
    for page in PAGES:
        goto(at, page)
        assert any("No data yet" in t for t in texts(at, "info")), page
    goto(at, "planner")  # pricing needs no database
    assert metrics(at)["Plan total (credits)"] == "1,753 to 1,945"


def test_database_being_written_shows_a_helpful_state(
    app_for, seeded_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analytics_db, "LIVE_RETRIES", 2)
    monkeypatch.setattr(analytics_db, "LIVE_RETRY_SECONDS", 0.01)
    writer = duckdb.connect(str(seeded_db))  # holds the live file; no snapshot published yet
    try:
        at = app_for(seeded_db).run()
        no_exception(at)
        assert any("being written" in t for t in texts(at, "warning"))
    finally:
        writer.close()


def test_fresh_collection_shows_no_stale_warning(app_for, tmp_path: Path) -> None:
    db = tmp_path / "fresh.duckdb"
    seed.create(db, last_success=SANDBOX_AT - timedelta(minutes=10))  # the pinned clock
    at = app_for(db).run()
    no_exception(at)
    assert any(t.startswith("Last successful collection") for t in texts(at, "success"))
    assert not any("older than" in w for w in texts(at, "warning"))


# --- alerts -------------------------------------------------------------------------


def all_text(at: AppTest) -> str:
    """Every string the page shows (for secrets that must never appear)."""
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "code", "title"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [m.label + m.value for m in at.metric]
    parts += [f.value.to_csv() for f in at.dataframe]
    return "\n".join(parts)


def test_alerts_page_open_past_rules_and_budgets(app_for, seeded_db: Path) -> None:
    seed.add_alerts(seeded_db)
    at = app_for(seeded_db).run()
    assert metrics(at)["Open alerts"] == "1"  # alpha's run-out; beta's budget is resolved
    goto(at, "alerts")
    subheaders = texts(at, "subheader")
    assert "Open (1)" in subheaders
    assert (
        "**alpha** · runout: alpha runs out of credits in 5 days (2025-03-25) at the "
        "forecast rate" in texts(at, "warning")
    )
    open_ = table(at, "severity", "first_fired_at")
    assert open_["org"].tolist() == ["alpha"] and open_["rule"].tolist() == ["runout"]
    history = table(at, "event_at", "delivered")
    assert history["status"].tolist() == ["fired", "resolved", "fired"]  # newest first
    assert history["org"].tolist() == ["alpha", "beta", "beta"]
    rules = table(at, "rule", "setting").set_index("setting")["value"]
    assert rules["warning when run-out within (days)"] == "7"
    assert rules["no successful collection for (hours)"] == "2.0"
    budgets = table(at, "monthly_credits")
    assert budgets["org"].tolist() == ["alpha", "beta"]
    assert budgets["monthly_credits"].tolist() == [2000, 3000]
    assert any("No alert channels configured" in t for t in texts(at, "info"))

    at.selectbox(key="org_choice").set_value("beta").run()
    no_exception(at)
    assert "Open (0)" in texts(at, "subheader")
    assert table(at, "event_at", "delivered")["org"].tolist() == ["beta", "beta"]


@pytest.mark.integration
def test_test_notification_reaches_a_real_webhook(app_for, seeded_db: Path, tmp_path: Path):
    from tests.analytics.receivers import webhook

    with webhook() as hook:
        config = tmp_path / "alerts.toml"
        config.write_text(f'[alerts]\nurls = ["{hook.url}"]\n', encoding="utf-8")
        at = goto(app_for(seeded_db, config=config).run(), "alerts")
        assert "Configured: json#1" in texts(at, "markdown")
        at.button(key="test_notification").click().run()
        no_exception(at)
        assert texts(at, "success")[-1] == "json#1: delivered"
        assert len(hook.received) == 1
        assert hook.received[0]["title"] == "[TEST] runway-costs"
        assert "SECRET_CANARY" not in all_text(at)


# --- caching and the data layer -------------------------------------------------------


def test_page_data_is_cached_until_a_new_collection(app_for, seeded_db: Path, monkeypatch):
    import functools

    from runway_costs.dashboard import views

    calls = []
    original = views.overview

    @functools.wraps(original)
    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    # the loader looks the function up in its own module (``fn.__module__``): patch it there
    monkeypatch.setattr(sys.modules[original.__module__], "overview", counted)
    # "now" (to the minute) is part of the key: hold it so a minute boundary cannot interfere
    monkeypatch.setattr("runway_costs.dashboard.ui.utc_now", lambda: datetime(2025, 3, 21, 8, 0))
    at = app_for(seeded_db).run()
    assert metrics(at)["Balance (credits)"] == "24,300"
    at.run()
    assert len(calls) == 1  # the second view came from the cache
    with duckdb.connect(str(seeded_db)) as con:  # a later cycle stored a new alpha balance
        con.execute(
            "INSERT INTO org_snapshots VALUES ('alpha', TIMESTAMP '2025-03-20 09:30:00', 5000,"
            " 10000)"
        )
    at.run()
    assert len(calls) == 2  # the database changed: loaded again at once
    assert metrics(at)["Balance (credits)"] == "25,000"  # 5,000 + 20,000


def test_cache_lifetime_is_the_collection_interval(app_for, seeded_db, tmp_path, monkeypatch):
    from runway_costs.dashboard import data

    config = tmp_path / "intervals.toml"
    config.write_text("[collection]\nsnapshot_minutes = 5\nusage_minutes = 60\n", "utf-8")
    app_for(seeded_db, config=config)  # sets the environment and clears the caches
    assert data.ttl_seconds() == 300.0


def test_spend_groups_small_models_as_other(seeded_db: Path) -> None:
    from runway_costs.core.config import Settings
    from runway_costs.dashboard import views

    with views.reader(seeded_db) as con:
        spend = views.spend(
            con,
            Settings(db_path=seeded_db),
            views.Scope(("alpha", "beta"), True),
            date(2025, 2, 1),
            date(2025, 3, 31),
            top_n=1,
        )
    day = spend.daily.filter(spend.daily["date"] == date(2025, 3, 1))
    assert day["model"].to_list() == ["other"] and day["credits"].to_list() == [600]
    assert set(spend.daily["model"]) == {"gen4_turbo", "other"}  # gen4_turbo: 1,000 credits


def test_limits_keep_a_model_whose_latest_row_has_no_limits(app_for, seeded_db: Path):
    with duckdb.connect(str(seeded_db)) as con:  # kling left the tier table on 03-15
        con.execute(
            """INSERT INTO model_snapshots VALUES
               ('beta', TIMESTAMP '2025-03-12 00:00:00', 'kling3.0_pro', 2, 100, 3),
               ('beta', TIMESTAMP '2025-03-15 00:00:00', 'kling3.0_pro', NULL, NULL, 7)"""
        )
        rebuild_model_daily(con)
    at = goto(app_for(seeded_db).run(), "limits")
    now = table(at, "used %").set_index("model")
    assert now.loc["kling3.0_pro", "daily_generations"] == 7
    assert pd.isna(now.loc["kling3.0_pro", "max_daily_generations"])  # not the old 100
