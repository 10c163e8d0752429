"""A writer process loops cycles while another process reads: zero errors, whole states."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from runway_costs.sandbox.server import SandboxServer
from tests.collector.support import REPO

pytestmark = pytest.mark.integration


def start_writer(sb: SandboxServer, db, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "WRITER_ORGS": json.dumps(sb.orgs)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.collector.writer_loop",
            "--db",
            str(db),
            "--base-url",
            sb.base_url,
            "--start",
            "2026-11-24T00:10:00Z",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def wait_committed(writer: subprocess.Popen, count: int) -> list[str]:
    lines = []
    while len([x for x in lines if x.startswith("committed")]) < count:
        line = writer.stdout.readline()
        if not line:
            raise AssertionError(f"writer exited early: {writer.stderr.read()[-2000:]}")
        lines.append(line.strip())
    return lines


def test_500_reads_while_a_writer_loops_cycles(tmp_db):
    with SandboxServer(seed=11, now="2026-11-24T00:10:00Z", n_orgs=4) as sb:
        writer = start_writer(sb, tmp_db)
        try:
            lines = wait_committed(writer, 1)
            assert not any(x.startswith("failed") for x in lines), lines
            reader = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.collector.reader_loop",
                    "--db",
                    str(tmp_db),
                    "--reads",
                    "500",
                ],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=240,
            )
            assert writer.poll() is None, "writer must still be running during the reads"
        finally:
            writer.terminate()
            writer.wait(timeout=30)
    assert reader.returncode == 0, reader.stderr[-2000:]
    report = json.loads(reader.stdout.strip().splitlines()[-1])
    print(report)
    assert report["reads"] == 500
    assert report["errors"] == 0, report["notes"]
    assert report["inconsistent"] == 0, report["notes"]
    assert report["states"] >= 3, "the writer must have published new states during the reads"
