"""`price --json` and `--csv` are written from columns (orjson for the document, polars for
the tables, in chunks). Parsed, they are the same as the output of the writers they
replaced (the rows as Python dicts through ``json.dumps(indent=2, default=str)``, the CSV as
one string): same keys in the same order, same values of the same JSON types, on a plan
with every kind of row, with feasibility, a budget and --compare. The terminal shows at
most MAX_SHOWN_ROWS rows of any table."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from runway_costs.analytics.compare import alternatives, cheapest
from runway_costs.analytics.feasibility import feasibility_for_tier
from runway_costs.analytics.plan import read_plan
from runway_costs.analytics.pricing import price_plan, summarize
from runway_costs.analytics.rates import load_rates, resolve_rates_path
from runway_costs.analytics.tiertable import load_tiers
from runway_costs.cli import price_cmd
from runway_costs.cli.main import app

ON = date(2026, 11, 24)
EVERY_KIND = (
    "label,model,count,seconds,resolution,ratio,audio,characters,text,date,endpoint\n"
    "launch,gen4.5,4,10,,1280:720,,,,,\n"  # priced
    "launch,veo3.1_fast,6,6,,720:1280,,,,,text_to_video\n"  # ranged (audio open)
    "launch,veo3.1,2,8,720p,,true,,,2025-06-30,\n"  # dated, audio
    "stills,gen4_image,20,,,,,,,,\n"  # ranged (resolution open)
    ",gen4_image_turbo,40,,,,,,,,\n"  # no label
    "voice,eleven_multilingual_v2,3,,,,,130,,,\n"  # characters
    'voice,eleven_multilingual_v2,1,,,,,,"Say ""hi"", café \\ ok",,\n'  # text, escapes
    "sfx,eleven_text_to_sound_v2,12,,,,,,,,\n"  # ranged per job
    "avatar,gwm1_avatars,1,,,,,,,,\n"  # unpriced: no published price
    "old,gen4.5,1,5,,,,,,2024-06-01,\n"  # unpriced: before the first price
    "ünïcode ☃,veo3,3,8,,,,,,,\n"
)


def old_json(plan: Path) -> str:
    """The document exactly as the replaced writer made it (its code, kept here)."""
    table = load_rates(resolve_rates_path(None, None))
    planned = read_plan(plan, table)
    priced = price_plan(planned, table, ON)
    summary = summarize(priced)
    best = cheapest(priced, alternatives(planned, table, ON))
    feas = feasibility_for_tier(load_tiers(), 1, priced, table)
    feas_doc = asdict(feas)
    feas_doc["models"] = feas.models.to_dicts()
    feas_doc["notes"] = list(feas.notes)
    del feas_doc["window"]
    feas_doc["purchases_window"] = feas.purchases_window
    feas_doc["purchases_observed_since"] = feas.purchases_observed_since
    doc: dict[str, Any] = {
        "plan": str(plan),
        "priced_on": ON.isoformat(),
        "rates": str(table.source),
        "credit_usd": table.credit_usd,
        "rows": priced.to_dicts(),
        "by_model": summary.by_model.to_dicts(),
        "by_label": summary.by_label.to_dicts(),
        "total": asdict(summary.total),
        "unpriced_rows": summary.unpriced_rows.to_dicts(),
        "budget": {
            "unit": "credits",
            "limit": 1000,
            "exceeded": summary.total.credits_max > 1000,
        },
        "compare": best.to_dicts(),
        "feasibility": feas_doc,
    }
    return json.dumps(doc, indent=2, default=str) + "\n"


def old_csv(plan: Path) -> str:
    table = load_rates(resolve_rates_path(None, None))
    planned = read_plan(plan, table)
    priced = price_plan(planned, table, ON)
    summary = summarize(priced)
    best = cheapest(priced, alternatives(planned, table, ON))
    feas = feasibility_for_tier(load_tiers(), 1, priced, table)
    rows = priced.join(
        best.select(
            "row", "alt_model", "alt_credits_min", "alt_credits_max", "saving_credits",
            "saving_usd",
        ),
        on="row",
        how="left",
    )  # fmt: skip
    parts = [
        rows.select(pl.lit("row").alias("section"), pl.all()),
        summary.by_model.select(pl.lit("by_model").alias("section"), pl.all()),
        summary.by_label.select(pl.lit("by_label").alias("section"), pl.all()),
        pl.DataFrame([asdict(summary.total)]).select(pl.lit("total").alias("section"), pl.all()),
        feas.models.select(pl.lit("feasibility").alias("section"), pl.all()),
    ]
    return pl.concat(parts, how="diagonal_relaxed").write_csv()


def typed(value: Any) -> Any:
    """A parsed JSON value with key order and JSON types kept (1 and 1.0 differ)."""
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return [(k, typed(v)) for k, v in value]
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def parse(text: str) -> Any:
    return typed(json.loads(text, object_pairs_hook=list))


def price(*args: str):
    return CliRunner().invoke(app, ["price", *args], env={"RUNWAY_COSTS_CONFIG": ""})


COMMON = ("--date", ON.isoformat(), "--compare", "--tier", "1", "--budget", "1000")


@pytest.mark.parametrize("chunk", [100_000, 3, 1])
def test_json_parses_to_the_old_document(write, monkeypatch, chunk: int) -> None:
    monkeypatch.setattr(price_cmd, "JSON_CHUNK_ROWS", chunk)  # tables written in many chunks
    plan = write("plan.csv", EVERY_KIND)
    result = price(str(plan), "--json", *COMMON)
    assert result.exit_code == 3, result.output  # over the budget: the document is still out
    new, old = parse(result.stdout), parse(old_json(plan))
    assert new == old
    doc = json.loads(result.stdout)
    assert len(doc["rows"]) == 11 and len(doc["compare"]) == 11
    assert [u["line"] for u in doc["unpriced_rows"]] == [10, 11]
    assert doc["rows"][6]["label"] == "voice" and doc["rows"][11 - 1]["label"] == "ünïcode ☃"
    assert doc["rows"][2]["date"] == "2025-06-30" and doc["rows"][2]["priced_on"] == "2025-06-30"


def test_json_of_an_empty_table_and_the_layout(write) -> None:
    plan = write("plan.csv", "model,count\ngen4_image_turbo,2\ngen4_image_turbo,3\n")
    result = price(str(plan), "--json", "--date", ON.isoformat())
    assert result.exit_code == 0, result.output
    assert parse(result.stdout) == parse(
        json.dumps(json.loads(result.stdout), indent=2)
    )  # valid JSON
    assert '  "unpriced_rows": []\n}\n' in result.stdout
    assert '  "rows": [\n    {"line":2,"row":1,' in result.stdout
    assert result.stdout.endswith("}\n")


def test_csv_parses_to_the_old_csv(write) -> None:
    plan = write("plan.csv", EVERY_KIND)
    result = price(str(plan), "--csv", *COMMON)
    assert result.exit_code == 3, result.output
    new = list(csv.reader(io.StringIO(result.stdout)))
    old = list(csv.reader(io.StringIO(old_csv(plan))))
    assert new == old
    assert new[0][:3] == ["section", "line", "row"]
    assert sum(1 for r in new if r[0] == "row") == 11


def test_terminal_tables_stop_at_max_shown_rows(write, monkeypatch) -> None:
    monkeypatch.setattr(price_cmd, "MAX_SHOWN_ROWS", 3)
    rows = "".join(f"label{i},gwm1_avatars,1\n" for i in range(7))
    plan = write("plan.csv", "label,model,count\n" + rows)
    result = price(str(plan), "--date", ON.isoformat(), "--compare")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.count("... 4 more rows (use --json or --csv)") == 2  # plan rows, compare
    assert "... 4 more labels (use --json or --csv)" in out
    assert "... 4 more unpriced rows (use --json or --csv)" in out
    assert out.count("unpriced: line") == 3
    assert "label6" not in out
