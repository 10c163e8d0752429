"""A seeded database whose alert names a model written as Markdown: an image that would
load from ``target_url`` if the page rendered it."""

from __future__ import annotations

from contextlib import closing
from datetime import datetime
from pathlib import Path

import duckdb

from runway_costs.analytics.alerts import check_alerts
from runway_costs.core.config import load_settings
from tests.dashboard import seed


def hostile_model(target_url: str) -> str:
    return f"![x]({target_url}) **bold** <img src='{target_url}'> :red[r]"


def create(db: Path, config: Path, target_url: str) -> str:
    """Seed ``db``, spend on the hostile model, budget it, and record the alert."""
    model = hostile_model(target_url)
    seed.create(db)
    with closing(duckdb.connect(str(db))) as con:
        con.execute(
            "INSERT INTO daily_usage VALUES ('alpha', DATE '2025-03-19', ?, 500, "
            "TIMESTAMP '2025-03-20 10:00:00')",
            [model],
        )
    quoted = model.replace("\\", "\\\\").replace('"', '\\"')
    config.write_text(
        f'[[budgets]]\norg = "alpha"\nmodel = "{quoted}"\ncredits = 100\n', encoding="utf-8"
    )
    settings = load_settings(config_path=config, db_path=db)
    result = check_alerts(settings, datetime(2025, 3, 20, 12, 0))
    assert any(model in a.message for a in result.alerts), result.alerts
    return model
