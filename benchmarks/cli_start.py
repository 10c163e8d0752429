"""How fast the CLI starts, against a bare interpreter measured in the same run.

Runs each command ``--repeat`` times as a user would (the installed ``runway-costs``
entry point, a fresh process each time) and prints the median and best wall time and the
ratio to ``python -c pass``. Then lists the slowest imports of each command's start
(``python -X importtime``), so a heavy import sneaking back into the start shows by name.

    .venv/bin/python benchmarks/cli_start.py [--repeat 15]

Targets (issue #11): ``--help`` < 0.25 s and ``price`` of the sample plan < 0.35 s on the
project's 2-core machine (bare interpreter ~0.05 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("runway-costs")
SAMPLE = ROOT / "data" / "sample-plan.csv"
TARGETS = {"--help": 0.25, "price sample-plan.csv": 0.35}


def timed(argv: list[str], repeat: int) -> list[float]:
    env = {**os.environ, "RUNWAY_COSTS_CONFIG": ""}
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env, cwd=ROOT, timeout=120)
        out.append(time.perf_counter() - began)
    return out


def slowest_imports(code: str, n: int = 6) -> list[tuple[float, str]]:
    """The ``n`` top-level imports with the largest cumulative time (seconds)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "RUNWAY_COSTS_CONFIG": ""},
        timeout=120,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split("|"))
        if cumulative.isdigit() and not name.startswith(" ") and "." not in name.strip():
            rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    cases = {
        "bare interpreter": [sys.executable, "-c", "pass"],
        "--help": [str(EXE), "--help"],
        "price sample-plan.csv": [str(EXE), "price", str(SAMPLE)],
    }
    timed(cases["price sample-plan.csv"], 2)  # warm the file cache once
    results = {name: timed(argv, args.repeat) for name, argv in cases.items()}
    bare = statistics.median(results["bare interpreter"])
    print(f"{'case':24} {'median s':>9} {'best s':>8} {'x bare':>7}  target")
    for name, runs in results.items():
        median = statistics.median(runs)
        target = TARGETS.get(name)
        verdict = (
            "" if target is None else f"< {target} s: {'met' if median < target else 'MISSED'}"
        )
        print(f"{name:24} {median:9.3f} {min(runs):8.3f} {median / bare:7.1f}  {verdict}")
    print("\nslowest imports at start (cumulative s):")
    starts = {
        "--help": "from runway_costs.cli.main import build_app; build_app([])",
        "price": "from runway_costs.cli.main import build_app; "
        "build_app(['runway_costs.cli.price_cmd'])",
    }
    for name, code in starts.items():
        top = ", ".join(f"{mod} {sec:.3f}" for sec, mod in slowest_imports(code))
        print(f"  {name:8} {top}")


if __name__ == "__main__":
    main()
