"""Outside text on the pages (AppTest): Markdown in a model name is escaped, a bad
database file is one clear notice, a damaged snapshot is read past with a caption."""

from __future__ import annotations

import shutil
from pathlib import Path

from runway_costs.core.files import snapshot_path
from runway_costs.dashboard.ui import md
from tests.dashboard import hostile, seed

TARGET = "http://127.0.0.1:1/steal.png"


def goto(at, page: str):
    at.switch_page(f"app_pages/{page}.py").run()
    return at


def test_md_escapes_what_markdown_would_act_on() -> None:
    assert md("![x](http://h/i.png)") == "\\!\\[x\\](http\u2060\\://h/i.png)"
    assert md("www.x.io a@b.io") == "www\u2060.x.io a\u2060@b.io"
    assert md("# not a heading") == "\\# not a heading"
    assert md("1. not a list, gen4_turbo") == "1\\. not a list, gen4\\_turbo"
    assert md("a\nb\x1b[2J") == "a b\\\\x1b\\[2J"
    assert md("plain name, 10 (x)") == "plain name, 10 (x)"


def test_alert_with_markdown_model_is_escaped(app_for, tmp_path: Path) -> None:
    db, config = tmp_path / "h.duckdb", tmp_path / "h.toml"
    model = hostile.create(db, config, TARGET)
    at = goto(app_for(db, config).run(), "alerts")
    assert not at.exception
    shown = [e.value for e in [*at.error, *at.warning, *at.info]]
    assert any(md(model) in text for text in shown), shown
    assert not any(model in text for text in shown)  # never the raw Markdown


def test_a_bad_database_file_is_a_notice_not_an_error_trace(app_for, tmp_path: Path) -> None:
    db = tmp_path / "bad.duckdb"
    db.write_text("not a database\n", encoding="utf-8")
    at = app_for(db).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["The database file cannot be read."]
    assert [c.value for c in at.caption] == [
        md(f"database {db} cannot be read: it is not a DuckDB database file")
    ]


def test_a_damaged_snapshot_is_read_past_with_a_caption(app_for, tmp_path: Path) -> None:
    good = tmp_path / "good.duckdb"
    seed.create(good)
    db = tmp_path / "runway.duckdb"
    shutil.copy(good, db)
    snapshot_path(db).write_bytes(b"DUCK" * 100)  # not a database
    at = app_for(db).run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert captions[0].startswith("⚠️ the snapshot ")
    assert md(f"Reading the live database {db} instead (read-only)") in captions[0]
    assert {m.label: m.value for m in at.metric}["Balance (credits)"] == "24,300"
