"""``make bench``: the rush (SQLite and PostgreSQL) and the page benchmark, both tables.

    .venv/bin/python bench/run.py [--only rush|pages|cpu|history] [--history-scales 1,10,100]

``history`` is the page sweep over 1x, 10x and 100x of the accumulated history
(``bench/sweep.py``; 100x on PostgreSQL only, SQLite up to 10x); ``--history-scales 0.1,1``
runs it small. It prints its table and sets no target (docs/performance.md keeps the figures).

Exit status 0 when every target is met: the rush gives exactly 280 confirmed, 120 waitlisted,
0 errors, 0 duplicates and 0 lost on both databases; visitor pages reach 60% of the ceiling
and the logged-in event page 25%; query counts do not grow with the data; the CPU per request
of uncached pages stays under its targets (bench/cpu.py). See docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cpu, pages, rush, sweep


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Portal benchmarks (docs/performance.md)")
    parser.add_argument("--only", choices=("rush", "pages", "cpu", "history"))
    parser.add_argument(
        "--history-scales", default="1,10,100", help="history sweep sizes, e.g. 0.1,1"
    )
    parser.add_argument("--history-databases", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per page")
    args = parser.parse_args(argv)
    started = time.monotonic()
    ok = True
    rush_results = []
    pages_result = None
    cpu_result = None
    if args.only in (None, "rush"):
        rush_results = rush.run()
        ok = ok and bool(rush_results) and all(r.ok and r.fast for r in rush_results)
    if args.only in (None, "pages"):
        pages_result = pages.run(seconds=args.seconds)
        ok = ok and pages_result.ok
    if args.only in (None, "cpu"):
        cpu_result = cpu.run()
        ok = ok and not cpu.check(cpu_result)
    history_runs = []
    if args.only in (None, "history"):
        history_runs = sweep.run(
            scales=[float(x) for x in args.history_scales.split(",") if x],
            databases=[d for d in args.history_databases.split(",") if d],
        )
    if rush_results:
        rush.print_table(rush_results)
    if pages_result is not None:
        pages.print_table(pages_result)
    if cpu_result is not None:
        cpu.print_table(cpu_result)
    if history_runs:
        sweep.print_table(history_runs)
    print()
    print(
        f"bench: {'all targets met' if ok else 'TARGETS MISSED'} ({time.monotonic() - started:.0f} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
