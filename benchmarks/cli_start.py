"""How fast the CLI starts, against a bare interpreter measured in the same run.

Runs each command ``--repeat`` times as a user would (the installed ``runway-costs``
entry point, a fresh process each time, no config file) and prints the median and best
wall time, the median CPU time (user + system: less moved by other work on a shared
machine) and the ratio to ``python -c pass``. The cases take turns, one run each per round,
so a burst of load from elsewhere falls on all of them alike. Then lists the slowest imports
of each command's start (``python -X importtime``), so a heavy import sneaking back into the
start shows by name.

``--before REF`` also runs the package as it was at git ``REF`` (``git archive`` into a
temporary directory, first on ``PYTHONPATH``: the same interpreter and libraries), in the
same rounds, checks that ``price`` prints the same, and prints the ratio now / before.

    .venv/bin/python benchmarks/cli_start.py [--repeat 15] [--before HEAD~3]

Targets (issue #11): ``--help`` < 0.25 s and ``price`` of the sample plan < 0.35 s on the
project's 2-core machine (bare interpreter ~0.05 s).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("runway-costs")
SAMPLE = ROOT / "data" / "sample-plan.csv"
TARGETS = {"--help": 0.25, "price sample-plan.csv": 0.35}
BASE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"RUNWAY_COSTS_CONFIG": ""}


@dataclass
class Case:
    argv: list[str]
    env: dict[str, str]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    stdout: bytes = b""


def run_once(case: Case) -> None:
    """One run: its wall time, and its CPU time from the children's resource usage."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        case.argv, capture_output=True, check=True, env=case.env, cwd=ROOT, timeout=120
    )
    case.wall.append(time.perf_counter() - began)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    case.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    case.stdout = done.stdout


def old_package(ref: str, into: Path) -> Path:
    """The package as it was at ``ref``, unpacked under ``into`` (for PYTHONPATH)."""
    archive = into / "old.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", ref, "runway_costs"], cwd=ROOT, stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
    return into


def slowest_imports(code: str, n: int = 6) -> list[tuple[float, str]]:
    """The ``n`` top-level imports with the largest cumulative time (seconds)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=BASE_ENV,
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
    parser.add_argument("--before", help="also run the package at this git ref")
    args = parser.parse_args()
    commands = {
        "--help": [str(EXE), "--help"],
        "price sample-plan.csv": [str(EXE), "price", str(SAMPLE)],
    }
    cases = {"bare interpreter": Case([sys.executable, "-c", "pass"], BASE_ENV)}
    cases |= {name: Case(argv, BASE_ENV) for name, argv in commands.items()}
    with tempfile.TemporaryDirectory() as tmp:
        if args.before:
            old_env = BASE_ENV | {"PYTHONPATH": str(old_package(args.before, Path(tmp)))}
            cases |= {
                f"{name} at {args.before}": Case(argv, old_env) for name, argv in commands.items()
            }
        for case in cases.values():  # warm the file cache once
            run_once(case)
            case.wall.clear()
            case.cpu.clear()
        for _ in range(args.repeat):
            for case in cases.values():
                run_once(case)
    bare = statistics.median(cases["bare interpreter"].wall)
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    width = max(len(name) for name in cases)
    print(f"{'case':{width}} {'median s':>9} {'best s':>7} {'cpu s':>6} {'x bare':>7}  target")
    for name, case in cases.items():
        median = statistics.median(case.wall)
        target = TARGETS.get(name)
        verdict = (
            "" if target is None else f"< {target} s: {'met' if median < target else 'MISSED'}"
        )
        print(
            f"{name:{width}} {median:9.3f} {min(case.wall):7.3f} "
            f"{statistics.median(case.cpu):6.3f} {median / bare:7.1f}  {verdict}"
        )
    if args.before:
        print(f"\nnow / at {args.before} (median wall, median cpu):")
        for name in commands:
            now, old = cases[name], cases[f"{name} at {args.before}"]
            wall = statistics.median(now.wall) / statistics.median(old.wall)
            cpu = statistics.median(now.cpu) / statistics.median(old.cpu)
            print(f"  {name:{width}} {wall:5.2f} {cpu:5.2f}")
        price = "price sample-plan.csv"
        same = cases[price].stdout == cases[f"{price} at {args.before}"].stdout
        print(f"  price prints the same before and now: {same}")
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
