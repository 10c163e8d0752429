"""The Spend page reads sums and at most ``row_limit`` raw rows (issue #12).

Expected figures are worked out by hand from tests/dashboard/seed.py's usage:
alpha 02-27 gen4.5 100, 03-01 gen4.5 200, 03-01 veo3.1 400, 03-10 gen4.5 -50,
03-20 veo3.1 300; beta 03-05 gen4_turbo 1000, 03-20 gen4.5 120 (all 2025).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from runway_costs.analytics import spend as spend_mod
from runway_costs.core.config import Settings
from runway_costs.dashboard import views

EVERY = views.Scope(("alpha", "beta"), True)
FEB, MAR_END = date(2025, 2, 1), date(2025, 3, 31)


def _spend(db: Path, scope: views.Scope, **kw) -> views.SpendData:
    with views.reader(db) as con:
        return views.spend(con, Settings(db_path=db), scope, FEB, MAR_END, **kw)


def test_totals_cover_every_row_when_the_table_is_cut(seeded_db: Path) -> None:
    data = _spend(seeded_db, EVERY, row_limit=3)
    assert (data.total_credits, data.total_usd, data.row_count) == (2070, 20.70, 7)
    assert data.rows_cut
    # Rows per day, newest first: 03-20 two, 03-10 one (3 in all), 03-05 one more (4 > 3):
    # the newest days holding 3 rows, by date descending, org, model.
    assert data.rows.select("org", "date", "model", "credits").rows() == [
        ("alpha", date(2025, 3, 20), "veo3.1", 300),
        ("beta", date(2025, 3, 20), "gen4.5", 120),
        ("alpha", date(2025, 3, 10), "gen4.5", -50),
    ]
    assert data.monthly.select("month", "credits", "usd").rows() == [
        (date(2025, 2, 1), 100, 1.0),
        (date(2025, 3, 1), 1970, 19.7),
    ]
    # gen4.5: 100 + 200 - 50 + 120 = 370
    assert data.by_model.select("model", "credits").rows() == [
        ("gen4_turbo", 1000),
        ("veo3.1", 700),
        ("gen4.5", 370),
    ]


def test_a_day_larger_than_the_limit_gives_its_first_rows(seeded_db: Path) -> None:
    data = _spend(seeded_db, EVERY, row_limit=1)  # 03-20 alone holds 2 rows
    assert data.rows.select("org", "date", "model").rows() == [
        ("alpha", date(2025, 3, 20), "veo3.1")
    ]
    assert (data.total_credits, data.row_count) == (2070, 7)


def test_uncut_rows_keep_org_date_model_order(seeded_db: Path) -> None:
    data = _spend(seeded_db, views.Scope(("alpha",)))
    assert not data.rows_cut
    assert (data.total_credits, data.row_count) == (950, 5)  # 100+200+400-50+300
    assert data.rows.select("date", "model").rows() == [
        (date(2025, 2, 27), "gen4.5"),
        (date(2025, 3, 1), "gen4.5"),
        (date(2025, 3, 1), "veo3.1"),
        (date(2025, 3, 10), "gen4.5"),
        (date(2025, 3, 20), "veo3.1"),
    ]


def test_grouping_by_organization_sums_each_one(seeded_db: Path) -> None:
    data = _spend(seeded_db, EVERY, group_by="org")
    # beta 1000 + 120 = 1120 (0.5411 of 2070), alpha 950 (0.4589)
    assert data.by_group.select("group", "credits", "share").rows() == [
        ("beta", 1120, 0.5411),
        ("alpha", 950, 0.4589),
    ]
    day = data.daily_by_group.filter(data.daily_by_group["date"] == date(2025, 3, 20))
    assert day.select("group", "credits").rows() == [("alpha", 300), ("beta", 120)]


def test_sums_per_date_and_model_count_their_rows(seeded_db: Path) -> None:
    with duckdb.connect(str(seeded_db)) as con:  # beta also used gen4.5 on 03-01
        con.execute(
            "INSERT INTO daily_usage VALUES ('beta', DATE '2025-03-01', 'gen4.5', 30,"
            " TIMESTAMP '2025-03-20 10:00:00')"
        )
    with views.reader(seeded_db) as con:
        every = spend_mod.spend_by_date_model(con, None, date(2025, 3, 1), date(2025, 3, 10))
        beta = spend_mod.spend_by_date_model(con, ["beta"], date(2025, 3, 1), date(2025, 3, 10))
        per_org = spend_mod.spend_by_org_date(con, None, date(2025, 3, 1), date(2025, 3, 10))
    assert every.select("date", "model", "credits", "rows").rows() == [
        (date(2025, 3, 1), "gen4.5", 230, 2),  # alpha 200 + beta 30
        (date(2025, 3, 1), "veo3.1", 400, 1),
        (date(2025, 3, 5), "gen4_turbo", 1000, 1),
        (date(2025, 3, 10), "gen4.5", -50, 1),
    ]
    assert beta.select("date", "model", "credits").rows() == [
        (date(2025, 3, 1), "gen4.5", 30),
        (date(2025, 3, 5), "gen4_turbo", 1000),
    ]
    assert per_org.select("org", "date", "credits", "usd").rows() == [
        ("alpha", date(2025, 3, 1), 600, 6.0),
        ("alpha", date(2025, 3, 10), -50, -0.5),
        ("beta", date(2025, 3, 1), 30, 0.3),
        ("beta", date(2025, 3, 5), 1000, 10.0),
    ]
