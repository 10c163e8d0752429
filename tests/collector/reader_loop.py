"""A reader process for the concurrency test: many reads through connect_reader.

    python -m tests.collector.reader_loop --db DB --reads 500

Each read opens the published snapshot, checks the consistency invariant and that
every org has the same number of runs (whole cycles only), and closes. Prints one JSON
line: reads, errors, inconsistent reads, distinct states seen, first problems.
"""

from __future__ import annotations

import argparse
import json
from contextlib import closing
from pathlib import Path

from runway_costs.analytics.db import connect_reader
from tests.collector.support import consistency_problems, runs_per_org


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--reads", type=int, default=500)
    args = parser.parse_args()
    errors, inconsistent, states, notes = 0, 0, set(), []
    for _ in range(args.reads):
        try:
            with closing(connect_reader(args.db)) as con:
                problems = consistency_problems(con)
                runs = runs_per_org(con)
                (credits,) = con.execute(
                    "SELECT coalesce(sum(credits), 0) FROM daily_usage"
                ).fetchone()
        except Exception as exc:  # every error counts: the test wants zero
            errors += 1
            notes.append(f"{type(exc).__name__}: {exc}")
            continue
        if len(set(runs.values())) != 1:
            problems.append(f"partial cycle visible: runs per org {runs}")
        if problems:
            inconsistent += 1
            notes.extend(problems)
        states.add((tuple(sorted(runs.items())), int(credits)))
    print(
        json.dumps(
            {
                "reads": args.reads,
                "errors": errors,
                "inconsistent": inconsistent,
                "states": len(states),
                "notes": notes[:5],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
