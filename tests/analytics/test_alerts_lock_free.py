"""``check_alerts`` evaluates the rules on the published snapshot without the collector's
write lock, and decides each alert against the state as it is when it takes the lock."""

from __future__ import annotations

from datetime import datetime

from runway_costs.analytics import alerts
from runway_costs.analytics.alert_store import alert_history
from runway_costs.analytics.alerts import check_alerts
from runway_costs.analytics.db import connect_reader
from runway_costs.collector.locks import write_lock
from runway_costs.collector.store import publish_snapshot
from runway_costs.core.config import Settings
from tests.analytics.conftest import add_run, new_db

AT = datetime(2026, 11, 1, 12)


def test_evaluation_holds_no_lock_and_a_check_finished_meanwhile_is_not_repeated(
    tmp_path, monkeypatch
):
    db = tmp_path / "runway.duckdb"
    con = new_db(db)
    add_run(con, "acme", datetime(2026, 11, 1, 6))  # last success 6 h before AT: stale
    con.close()
    publish_snapshot(db)
    settings = Settings(db_path=db)
    evaluate = alerts.evaluate_rules
    inner: list[list[tuple[str, str]]] = []
    started: list[bool] = []

    def evaluate_while_others_work(con, settings_, orgs, as_of):
        with write_lock(db, timeout=0):  # free: a cycle starting now would not wait
            pass
        if not started:  # another check runs start to end during this evaluation
            started.append(True)
            inner.append([(a.rule, a.status) for a in check_alerts(settings, AT).visible()])
        return evaluate(con, settings_, orgs, as_of)

    monkeypatch.setattr(alerts, "evaluate_rules", evaluate_while_others_work)
    outer = check_alerts(settings, AT)
    assert inner == [[("collection_stale", "fired")]]
    # evaluated on the snapshot from before the inner check, decided against its state
    assert [(a.rule, a.status) for a in outer.visible()] == [("collection_stale", "ongoing")]
    with connect_reader(db) as con:
        history = alert_history(con)
    assert history.select("rule", "status").rows() == [("collection_stale", "fired")]
