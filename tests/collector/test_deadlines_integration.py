"""Nothing an API host does can hang a collection: deadlines, a body cap, sane numbers.

Real parts only: a trickling HTTP server and Runway look-alikes on 127.0.0.1, the
sandbox, the installed CLI and a real DuckDB file.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from runway_costs.analytics.db import connect_reader
from runway_costs.collector.client import MAX_BODY_BYTES, ClientOptions, RunwayClient
from runway_costs.collector.cycle import run_cycle_sync
from runway_costs.collector.errors import ResponseTooLargeError
from runway_costs.collector.store import locked_connection
from runway_costs.core.config import OrgConfig
from tests.collector.support import (
    FAST,
    REPO,
    consistency_problems,
    settings_for,
    truth,
    usage_rows,
)
from tests.collector.test_cycle_integration import FIRST, TODAY
from tests.collector.trickle import trickling_server
from tests.conftest import SANDBOX_CLOCK, SANDBOX_NOW

pytestmark = pytest.mark.integration

ORG_BODY = {
    "creditBalance": 900,
    "tier": {
        "maxMonthlyCreditSpend": 10000,
        "models": {"gen4.5": {"maxConcurrentGenerations": 1, "maxDailyGenerations": 50}},
    },
    "usage": {"models": {"gen4.5": {"dailyGenerations": 3}}},
}
USAGE_BODY = {"results": [], "models": [], "apiKeys": None, "resultsByApiKey": None}
BOMB_BYTES = 64 * 1024 * 1024  # inflates to 8x the cap


def _bomb() -> bytes:
    return gzip.compress(b"\0" * BOMB_BYTES, compresslevel=9)


def _with(path: tuple, value: object) -> dict:
    body = json.loads(json.dumps(ORG_BODY))
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


# What each look-alike organization (its base_url's first path segment) answers.
LOOKALIKES: dict[str, dict] = {
    "neg-balance": _with(("creditBalance",), -5),
    "neg-cap": _with(("tier", "maxMonthlyCreditSpend"), -10000),
    "neg-limit": _with(("tier", "models", "gen4.5", "maxDailyGenerations"), -1),
}


@contextmanager
def lookalike() -> Iterator[str]:
    """A Runway look-alike: ``/<name>/v1/...`` answers as LOOKALIKES says; ``/bomb/``
    answers a gzip body that inflates to 64 MiB."""
    bomb = _bomb()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, data: bytes, gzipped: bool = False) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if gzipped:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            name = self.path.split("/")[1]
            if name == "bomb":
                self._send(bomb, gzipped=True)
            else:
                self._send(json.dumps(LOOKALIKES[name]).encode())

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._send(json.dumps(USAGE_BODY).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _runs(db: Path) -> dict[str, tuple[str, str | None]]:
    """org -> (status, error) of its collection runs, read from the live file under the
    write lock (so it sees each org as soon as the running cycle commits it)."""
    if not db.exists():
        return {}
    with locked_connection(db, timeout=30) as con:
        rows = con.execute("SELECT org, status, error FROM collection_runs").fetchall()
    return {org: (status, error) for org, status, error in rows}


def test_a_trickling_host_fails_alone_and_the_others_are_written_meanwhile(sandbox, tmp_path):
    """User report: one org whose host trickles a byte at a time kept `collect` running
    for minutes and no other org was written meanwhile."""
    db, cfg = tmp_path / "runway.duckdb", tmp_path / "orgs.toml"
    with trickling_server(interval=0.5) as slow:
        lines = ["[collection]", *(f"{k} = {v}" for k, v in FAST.items())]
        lines[1:] = [line for line in lines[1:] if not line.startswith("timeout_seconds")]
        lines += ["timeout_seconds = 2", "max_attempts = 2"]
        env = {"TEST_KEY_SLOW": "key_slow"}
        orgs = [("slow", "TEST_KEY_SLOW", slow.base_url)]  # first: the others must not wait
        for o in sandbox.orgs:
            if o["name"] in ("indie", "agency"):
                var = "TEST_KEY_" + o["name"].upper()
                env[var] = o["api_key"]
                orgs.append((o["name"], var, sandbox.base_url))
        for name, var, url in orgs:
            lines += ["", "[[orgs]]", f'name = "{name}"', f'api_key_env = "{var}"']
            lines += [f'base_url = "{url}"']
        cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
        exe = Path(sys.executable).with_name("runway-costs")
        began = time.monotonic()
        proc = subprocess.Popen(
            [str(exe), "collect", "--config", str(cfg), "--db", str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, **env, "COLUMNS": "250"},
        )
        written_meanwhile = False
        try:
            while proc.poll() is None and time.monotonic() - began < 30:
                runs = _runs(db)
                if set(runs) == {"indie", "agency"} and proc.poll() is None:
                    written_meanwhile = True
                time.sleep(0.1)
            out, err = proc.communicate(timeout=1)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        elapsed = time.monotonic() - began
    # 2 attempts of 2 s each (connect + whole body), a <= 50 ms backoff, process start-up
    assert proc.returncode == 1, (out[-2000:], err[-2000:])
    assert elapsed < 12, f"collect took {elapsed:.1f} s with a 2 s x 2 attempts budget"
    assert written_meanwhile, "the healthy orgs must be committed before the slow one ends"
    assert " slow " in out and "failed" in out
    runs = _runs(db)
    assert runs["indie"] == ("ok", None) and runs["agency"] == ("ok", None)
    assert runs["slow"] == (
        "failed",
        "organization 'slow': GET /v1/organization failed after 2 attempts; last error: "
        "no complete response within 2 s (connect + whole body)",
    )
    assert slow.requests == ["GET /v1/organization"] * 2
    with closing(connect_reader(db)) as con:
        assert consistency_problems(con) == []
        for table in ("org_snapshots", "model_snapshots", "daily_usage"):
            (n,) = con.execute(f"SELECT count(*) FROM {table} WHERE org = 'slow'").fetchone()
            assert n == 0, table
    for org in ("indie", "agency"):
        assert usage_rows(db, org) == truth(sandbox, org, FIRST, TODAY)


def test_a_gzip_bomb_is_stopped_at_the_cap_before_it_inflates():
    """User report: a gzip response inflating to 800 MB took 1.8 GB of memory."""
    with lookalike() as base:

        async def fetch() -> BaseException:
            client = RunwayClient(
                "bomb",
                f"{base}/bomb",
                SecretStr("key_bomb"),
                options=ClientOptions(timeout_seconds=20, max_attempts=3),
                clock=SANDBOX_CLOCK,
            )
            async with client:
                try:
                    await client.organization()
                except Exception as exc:  # noqa: BLE001 - the test inspects it
                    return exc
            raise AssertionError("the bomb was accepted")

        tracemalloc.start()
        try:
            error = asyncio.run(fetch())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(error, ResponseTooLargeError)
    assert str(error) == (
        "organization 'bomb': response from GET /v1/organization is larger than the "
        "8 MiB cap on a response body (decoded); stopped reading"
    )
    assert error.limit == MAX_BODY_BYTES == 8 * 1024 * 1024
    assert error.org == "bomb"
    assert peak < 3 * MAX_BODY_BYTES, f"peak {peak / 2**20:.0f} MiB while reading the bomb"


def test_bad_responses_fail_their_org_alone_and_store_nothing(sandbox, tmp_db):
    """User report: a negative balance, cap or limit was stored and reported as is."""
    with lookalike() as base:
        extra = [
            OrgConfig(name=name, api_key=SecretStr(f"key_{name}"), base_url=f"{base}/{name}")
            for name in ("neg-balance", "neg-cap", "neg-limit", "bomb")
        ]
        settings = settings_for(sandbox, tmp_db, ["indie"], extra=extra)
        result = run_cycle_sync(settings, clock=SANDBOX_CLOCK)
    where = "response from GET /v1/organization"
    assert [(r.org, r.status, r.error) for r in result.orgs] == [
        ("indie", "ok", None),
        (
            "neg-balance",
            "failed",
            f"organization 'neg-balance': {where} has 'creditBalance' = -5, "
            "expected a non-negative integer",
        ),
        (
            "neg-cap",
            "failed",
            f"organization 'neg-cap': {where} has 'tier.maxMonthlyCreditSpend' = -10000, "
            "expected a non-negative integer",
        ),
        (
            "neg-limit",
            "failed",
            f"organization 'neg-limit': {where} has "
            "'tier.models[\"gen4.5\"].maxDailyGenerations' = -1, expected a non-negative integer",
        ),
        (
            "bomb",
            "failed",
            f"organization 'bomb': {where} is larger than the 8 MiB cap on a response body "
            "(decoded); stopped reading",
        ),
    ]
    assert [r.http_calls for r in result.orgs] == [3, 1, 1, 1, 1]  # none of these retried
    with closing(connect_reader(tmp_db)) as con:
        for table in ("org_snapshots", "model_snapshots", "daily_usage"):
            assert con.execute(f"SELECT DISTINCT org FROM {table}").fetchall() == [("indie",)]
        assert consistency_problems(con) == []
    assert usage_rows(tmp_db, "indie") == truth(sandbox, "indie", FIRST, TODAY)
    assert SANDBOX_NOW.startswith(TODAY.isoformat())
