"""`runway-costs sandbox` as a real process: one JSON line, then it serves until SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from tests.sandbox.wire import headers

pytestmark = pytest.mark.integration

STUDIO_KEY_SEED_7 = "key_8269ce6500d1c257627b4598f90af8e7c303540d88ee785a"


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "runway_costs.cli.main", "sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_line(proc: subprocess.Popen, timeout: float = 30) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        proc.kill()
        pytest.fail(f"no line from the sandbox in {timeout}s: {proc.stderr.read()}")
    return box[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_prints_one_json_line_then_serves_until_sigterm():
    port = free_port()
    proc = start("--port", str(port), "--seed", "7", "--now", "2026-11-24T12:00:00Z")
    try:
        info = json.loads(first_line(proc))
        assert info["base_url"] == f"http://127.0.0.1:{port}"
        assert [(o["name"], o["tier"]) for o in info["orgs"]] == [
            ("studio", 3),
            ("agency", 2),
            ("indie", 1),
        ]
        assert info["orgs"][0]["api_key"] == STUDIO_KEY_SEED_7
        r = httpx.get(f"{info['base_url']}/v1/organization", headers=headers(STUDIO_KEY_SEED_7))
        assert r.status_code == 200
        assert r.json()["creditBalance"] == 27748
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert out == ""  # nothing after the one line
    assert "Traceback" not in err


def test_orgs_and_faults_options():
    proc = start("--orgs", "5", "--seed", "11", "--faults", "rate_limit:n=1,retry_after=2")
    try:
        info = json.loads(first_line(proc))
        assert [o["tier"] for o in info["orgs"]] == [3, 2, 1, 4, 5]
        key = info["orgs"][3]["api_key"]
        assert key.startswith("key_") and key != STUDIO_KEY_SEED_7
        r = httpx.get(f"{info['base_url']}/v1/organization", headers=headers(key))
        assert (r.status_code, r.headers["Retry-After"]) == (429, "2")
        r = httpx.get(f"{info['base_url']}/v1/organization", headers=headers(key))
        assert r.json()["tier"]["maxMonthlyCreditSpend"] == 2_000_000
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--faults", "meteor"], "--faults: unknown fault 'meteor'"),
        (["--now", "yesterday"], "--now: not an ISO timestamp: 'yesterday'"),
        (["--orgs", "0"], "--orgs must be at least 1, got 0"),
        (["--port", "70000"], "--port must be 0..65535, got 70000"),
    ],
)
def test_bad_options_exit_2_with_a_message(args, message):
    proc = start(*args)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert out == ""
    assert message in " ".join(err.split())


def test_port_in_use_exits_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = start("--port", str(port))
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err
