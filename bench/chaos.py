"""Chaos benchmark: the full `horus chaos` configuration (>= 10,000 decisions, >= 200 kills, 3 executor
instances) on the local stack, its figures printed and appended to docs/benchmarks.md.

Not a speed race: it records how much abuse one run took (decisions, venue orders, kills, wall time) and
that the five invariant counts stayed at zero. Takes several minutes on 2 cores.

    .venv/bin/python bench/chaos.py [--followers 100] [--fills 100] [--kills 200] [--instances 3] [--no-record]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from horus.chaos import ChaosOptions, ChaosReport, run_chaos  # noqa: E402
from horus.settings import load_settings  # noqa: E402

DOC = REPO / "docs" / "benchmarks.md"
SECTION = "## Chaos run (`bench/chaos.py`)"
HEADER = ("| date | followers x fills | decisions | venue orders | kills | unplanned exits "
          "| wall time | ledger statuses | duplicates | orphans | lost | unresolved | overfilled |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
INTRO = """
`.venv/bin/python bench/chaos.py`: `horus chaos` at full size. 2 decide workers and 3 executor processes
against the in-process CLOB simulator with faults on (20 ms + jitter latency, 3% 5xx before processing, 2%
replies held past the 2 s venue timeout, 3% replies lost after processing, 5% FOK/FAK "killed" replies hiding
a partial fill, 2% failed reads, one or two 425 restart windows with a post-only period). A seeded killer
SIGKILLs a random process (3 in 4 an executor) every ~1.5 s and restarts it at once. After the last kill,
once every COPY has reached an executor: faults off, drain, `horus reconcile --once` until no row is open;
then the COPY decisions are compared with the ledger, the venue's order log and execution.results.
"Unplanned exits" are processes that died by themselves (restarted by the harness; see the run's logs).
"""


def row(report: ChaosReport, options: ChaosOptions) -> str:
    v = report.verdict
    statuses = ", ".join(f"{s} {n:,}" for s, n in sorted(v.statuses.items()))
    return (f"| {time.strftime('%Y-%m-%d')} (2 cores) | {options.followers} x {options.fills} | {v.decisions:,} "
            f"| {v.orders:,} | {sum(report.kills.values())} ({report.kills['execute']} of {options.instances} "
            f"executors, {report.kills['decide']} of {options.decide_workers} decide workers) | {len(report.crashes)} "
            f"| {report.seconds:.0f} s | {statuses} | {len(v.duplicates)} | {len(v.orphans)} | {len(v.lost)} "
            f"| {v.unresolved} | {len(v.overfilled)} |\n")


def record(line: str) -> None:
    """Append the row to this benchmark's table (the section is created the first time), wherever the
    section sits in the shared file."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n{INTRO}\n{HEADER}"
    start = text.index(SECTION)
    following = text.find("\n## ", start + len(SECTION))
    end = len(text) if following < 0 else following
    section = text[start:end].rstrip("\n") + "\n" + line
    DOC.write_text(text[:start] + section + ("\n" + text[end:].lstrip("\n") if following >= 0 else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--fills", type=int, default=100)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--decide-workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to docs/benchmarks.md")
    args = parser.parse_args()
    options = ChaosOptions(followers=args.followers, fills=args.fills, kills=args.kills, instances=args.instances,
                           decide_workers=args.decide_workers, seed=args.seed, timeout=args.timeout)
    report = run_chaos(load_settings(), options, say=lambda line: print(line, flush=True))
    for line in report.lines():
        print(line, flush=True)
    if not args.no_record:
        record(row(report, options))
        print(f"recorded in {DOC.relative_to(REPO)}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
