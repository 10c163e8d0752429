"""The set-based writer (``collector.writes.write_org_results``, issue #12) against the
per-org path it replaces (``reference_writer``: that path as it was, kept in the tests).

Differential: random cycles of random org results (snapshots moving forward, written
again at the same instant and with the clock gone back; usage windows with revisions,
vanished rows, rows outside their window, per-key usage answered or not; failed runs;
``written_at`` given or not) are written once org by org with the reference, once in
random batches with the batch writer; every table, the run ids included, must be
identical, and so must the rows changed per org. Then hand-written cases with their
expected rows written out.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import duckdb
import pytest
from pydantic import SecretStr

from runway_costs.collector import cycle
from runway_costs.collector.models import (
    KeyUsageRow,
    ModelState,
    OrgSnapshot,
    UsageRow,
    UsageWindow,
)
from runway_costs.collector.store import RunRecord, ensure_schema, rebuild_limit_rollup
from runway_costs.collector.writes import OrgWrite, write_org_results
from runway_costs.core.clock import fixed_clock
from runway_costs.core.config import OrgConfig, Settings
from tests.collector import reference_writer

TABLES = (
    "org_snapshots",
    "model_snapshots",
    "model_daily",
    "daily_usage",
    "key_usage",
    "usage_revisions",
    "org_usage_totals",
    "org_latest",
    "model_latest",
    "usage_coverage",
    "collection_runs",
    "model_day_start",
    "org_limit_daily",
)
T0 = datetime(2026, 11, 24, 12, 0)
DAY0 = date(2026, 11, 18)
MODELS = ("gen4.5", "veo3.1", "kling3.0_pro", "aleph")
KEYS = ("key-a", "key-b")


def fresh() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_schema(con)
    return con


def tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES}


# --- random cycles ---------------------------------------------------------------------


def random_snapshot(rng: random.Random, at: datetime) -> OrgSnapshot:
    models = []
    for name in rng.sample(MODELS, rng.randint(0, 3)):
        limits = rng.choice([(2, 200), (3, 300), (None, None)])
        models.append(ModelState(name, limits[0], limits[1], rng.randint(0, 4)))
    if models and rng.random() < 0.1:  # the same model twice: the last one counts
        models.append(ModelState(models[0].model, 2, 200, rng.randint(0, 4)))
    return OrgSnapshot(
        taken_at=at,
        credit_balance=rng.choice([5000, 4900, 4800]),
        max_monthly_credit_spend=rng.choice([10000, 10000, 20000]),
        models=tuple(models),
    )


def random_window(rng: random.Random) -> UsageWindow:
    start = DAY0 + timedelta(days=rng.randint(0, 5))
    before = start + timedelta(days=rng.randint(1, 4))
    days = (before - start).days
    rows = []
    for _ in range(rng.randint(0, 6)):
        offset = rng.randint(-1, days) if rng.random() < 0.1 else rng.randint(0, days - 1)
        rows.append(
            UsageRow(
                start + timedelta(days=offset), rng.choice(MODELS[:3]), rng.choice([5, 10, -3])
            )
        )
    key_rows = None
    if rng.random() < 0.6:
        key_rows = tuple(
            KeyUsageRow(
                start + timedelta(days=rng.randint(0, days - 1)),
                rng.choice(KEYS),
                rng.choice([1, 2, 7]),
                rng.choice(["", "gen4.5"]),
            )
            for _ in range(rng.randint(0, 4))
        )
    return UsageWindow(start, before, tuple(rows), key_rows)


def random_item(rng: random.Random, org: str, at: datetime, last: dict[str, datetime]) -> OrgWrite:
    """One org's result of a cycle at ``at``; its snapshot usually at ``at``, sometimes
    at its previous snapshot's instant again or before it (a clock gone back)."""
    finished = at + timedelta(seconds=rng.choice([0, 0, 5, 30]))
    taken = at
    if org in last and rng.random() < 0.25:
        taken = last[org] - timedelta(minutes=rng.choice([0, 0, 20, 60 * 24]))
    snapshot = random_snapshot(rng, taken) if rng.random() < 0.8 else None
    if snapshot is not None:
        last[org] = max(last.get(org, taken), taken)
    windows = [random_window(rng) for _ in range(rng.choice([0, 1, 1, 2]))]
    usage_start = min((w.start for w in windows), default=None)
    usage_before = max((w.before for w in windows), default=None)
    run = RunRecord(
        org=org,
        kind=rng.choice(["full", "snapshot", "usage"]),
        started_at=at,
        finished_at=finished,
        http_calls=rng.randint(1, 5),
        retries=rng.randint(0, 2),
        usage_start=usage_start,
        usage_before=usage_before,
    )
    if rng.random() < 0.1:
        return OrgWrite.failed(
            RunRecord(**{**{s: getattr(run, s) for s in RunRecord.__slots__}, "error": "boom"})
        )
    written_at = finished + timedelta(seconds=1) if rng.random() < 0.2 else None
    return OrgWrite(run, snapshot, windows, written_at)


def reference_write(con: duckdb.DuckDBPyConnection, item: OrgWrite) -> int:
    if not item.ok:
        reference_writer.write_failed_run(con, item.run)
        return 0
    return reference_writer.write_org_result(
        con, item.run, item.snapshot, item.windows, written_at=item.written_at
    )


def batches(rng: random.Random, items: list[OrgWrite]) -> list[list[OrgWrite]]:
    out, i = [], 0
    while i < len(items):
        n = rng.randint(1, len(items))
        out.append(items[i : i + n])
        i += n
    return out


@pytest.mark.parametrize("seed", range(24))
def test_batches_store_what_org_by_org_writes_store(seed):
    rng = random.Random(seed)
    orgs = [f"org-{i}" for i in range(rng.randint(1, 7))]
    one_by_one, batched = fresh(), fresh()
    reference_writer.use_keyed_layout(one_by_one)  # the layout the reference upserts into
    # odd seeds: cycles 7 hours apart, so models carry over days without rows
    step = timedelta(hours=7) if seed % 2 else timedelta(minutes=15)
    last: dict[str, datetime] = {}
    at = T0
    for n in range(6):
        if n and rng.random() < 0.7:  # else the previous cycle's instant again
            at = T0 + step * n
        items = [random_item(rng, org, at, last) for org in rng.sample(orgs, len(orgs))]
        expected = [reference_write(one_by_one, item) for item in items]
        got = [n for batch in batches(rng, items) for n in write_org_results(batched, batch)]
        assert got == expected, f"cycle {n}"
        # the frozen writer knows no limit roll-up: derive it from its model_daily (the
        # migration's path), which the batches must have kept row for row
        rebuild_limit_rollup(one_by_one)
        assert tables(batched) == tables(one_by_one), f"cycle {n}"


# --- hand-written cases ------------------------------------------------------------------


def run(org: str, at: datetime = T0, **kw) -> RunRecord:
    base = dict(org=org, kind="full", started_at=at, finished_at=at, http_calls=2, retries=0)
    base.update(kw)
    return RunRecord(**base)


def window(*rows: tuple[str, str, int], start: str = "2026-11-22") -> UsageWindow:
    return UsageWindow(
        date.fromisoformat(start),
        date(2026, 11, 25),
        tuple(UsageRow(date.fromisoformat(d), m, c) for d, m, c in rows),
    )


def snap(at: datetime, balance: int, gens: int) -> OrgSnapshot:
    return OrgSnapshot(at, balance, 10000, (ModelState("gen4.5", 2, 200, gens),))


D22, D23, D24 = date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)
T1 = datetime(2026, 11, 24, 12, 15)
U = dict(usage_start=D22, usage_before=date(2026, 11, 25))


def test_two_orgs_and_a_failed_run_in_one_batch():
    con = fresh()
    changed = write_org_results(
        con,
        [
            OrgWrite(run("a", **U), snap(T0, 5000, 3), [window(("2026-11-23", "gen4.5", 10))]),
            OrgWrite.failed(run("b", error="organization 'b': API key rejected (401)")),
            OrgWrite(run("c", kind="snapshot"), snap(T0, 70, 1)),
        ],
    )
    assert changed == [1 + 1 + 1, 0, 1 + 1]
    t = tables(con)
    assert t["org_snapshots"] == [("a", T0, 5000, 10000), ("c", T0, 70, 10000)]
    assert t["model_latest"] == [
        ("a", "gen4.5", T0, 2, 200, 3, 3),
        ("c", "gen4.5", T0, 2, 200, 1, 1),
    ]
    assert t["daily_usage"] == [("a", D23, "gen4.5", 10, T0)]
    assert t["org_usage_totals"] == [("a", 1, 10, date(2026, 11, 25)), ("c", 0, 0, None)]
    assert t["usage_coverage"] == [("a", D22, T0), ("a", D23, T0), ("a", D24, T0)]
    assert [(r[0], r[1], r[5], r[6], r[11], r[12], r[13]) for r in t["collection_runs"]] == [
        (1, "a", "ok", None, 3, 1, 10),
        (2, "b", "failed", "organization 'b': API key rejected (401)", 0, None, None),
        (3, "c", "ok", None, 2, 0, 0),
    ]


def test_second_batch_revises_one_org_and_leaves_the_other_unchanged():
    con = fresh()
    first = window(("2026-11-23", "gen4.5", 10), ("2026-11-24", "veo3.1", 4))
    write_org_results(
        con,
        [
            OrgWrite(run("a", **U), snap(T0, 5000, 3), [first]),
            OrgWrite(run("b", **U), None, [window(("2026-11-22", "gen4.5", 1))]),
        ],
    )
    revised = window(("2026-11-23", "gen4.5", 12), ("2026-11-24", "kling", 2))
    changed = write_org_results(
        con,
        [
            OrgWrite(run("b", T1, **U), None, [window(("2026-11-22", "gen4.5", 1))]),
            OrgWrite(run("a", T1, **U), snap(T1, 5000, 3), [revised]),
        ],
    )
    assert changed == [0, 3]  # b: nothing; a: 10 -> 12, veo3.1 gone, kling new
    t = tables(con)
    assert t["daily_usage"] == [
        ("a", D23, "gen4.5", 12, T1),
        ("a", D24, "kling", 2, T1),
        ("b", D22, "gen4.5", 1, T0),
    ]
    assert t["usage_revisions"] == [
        ("a", D23, "gen4.5", T1, 10, 12, T0),
        ("a", D24, "kling", T1, None, 2, T0),
        ("a", D24, "veo3.1", T1, 4, None, T0),
    ]
    assert t["org_usage_totals"] == [
        ("a", 2, 14, date(2026, 11, 25)),
        ("b", 1, 1, date(2026, 11, 25)),
    ]
    assert [(r[0], r[1], r[11], r[12], r[13]) for r in t["collection_runs"]] == [
        (1, "a", 4, 2, 14),
        (2, "b", 1, 1, 1),
        (3, "b", 0, 1, 1),
        (4, "a", 3, 2, 14),
    ]


def test_the_same_org_twice_in_a_batch_is_refused_before_writing():
    con = fresh()
    with pytest.raises(ValueError, match="written twice in one batch: a"):
        write_org_results(con, [OrgWrite(run("a")), OrgWrite(run("b")), OrgWrite(run("a", T1))])
    assert all(rows == [] for rows in tables(con).values())


def test_a_refused_row_rolls_the_whole_batch_back():
    con = fresh()
    with pytest.raises(duckdb.ConstraintException, match="collection_runs.kind"):
        write_org_results(
            con,
            [
                OrgWrite(run("a", **U), snap(T0, 5000, 3), [window(("2026-11-23", "x", 1))]),
                OrgWrite(run("b", kind=None), snap(T0, 1, 1)),
            ],
        )
    assert all(rows == [] for rows in tables(con).values())
    assert write_org_results(con, []) == []


# --- the cycle's batches -------------------------------------------------------------------


def fetched(name: str, gens: int, error: str | None = None) -> cycle._Fetched:
    org = OrgConfig(name=name, api_key=SecretStr("k-" + name), base_url="http://127.0.0.1:9")
    plan = cycle.OrgPlan(org=org, snapshot=True, windows=[], backfill=False)
    f = cycle._Fetched(plan=plan, started_at=T0, finished_at=T0, error=error)
    if error is None:
        f.snapshot = snap(T0, 100, gens)
    return f


def test_cycle_writes_a_batch_whole_and_a_refused_org_fails_alone(tmp_path):
    settings = Settings(db_path=tmp_path / "runway.duckdb", orgs=())
    clock = fixed_clock(T1)
    # 2**40 generations do not fit the INTEGER column: the database refuses org "bad"
    batch = [fetched("a", 3), fetched("bad", 2**40), fetched("c", 1, error="c: timed out")]
    results = cycle._write(settings, "snapshot", batch, clock)
    assert [(r.org, r.status, r.rows_changed) for r in results] == [
        ("a", "ok", 2),
        ("bad", "failed", 0),
        ("c", "failed", 0),
    ]
    assert results[1].error is not None
    assert results[1].error.startswith("organization 'bad': cannot store the data: ")
    with duckdb.connect(str(settings.db_path), read_only=True) as con:
        t = tables(con)
    assert t["org_snapshots"] == [("a", T0, 100, 10000)]
    assert t["model_snapshots"] == [("a", T0, "gen4.5", 2, 200, 3)]
    assert [(r[1], r[5], r[6]) for r in t["collection_runs"]] == [
        ("a", "ok", None),
        ("bad", "failed", results[1].error),
        ("c", "failed", "c: timed out"),
    ]
    # and a batch that goes through is one transaction: all three run rows, data of two
    good = [fetched("a", 4), fetched("c", 1, error="c: timed out"), fetched("d", 5)]
    assert [r.rows_changed for r in cycle._write(settings, "snapshot", good, clock)] == [1, 0, 2]
