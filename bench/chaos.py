"""Chaos benchmark: the full `horus chaos` configuration on its private stack, its figures printed and appended to
docs/benchmarks.md.

Full size (issue 9): >= 10,000 decisions, 3 executors + 2 decide workers, >= 200 kills with >= 20 at each executor
crash point, >= 3 PostgreSQL restarts, >= 3 broker restarts. The defaults are that size; a run that falls short of
it (smaller options, or fewer kills than planned) is printed and recorded as "not full size" and exits 1, as does
a run whose verdict is not all zeros.

Not a speed race: it records how much abuse one run took and that every count stayed at zero. Takes many minutes
on 2 cores.

    .venv/bin/python bench/chaos.py [--followers 100] [--fills 100] [--kills 130] [--crash-kills 20] [--no-record]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from horus.ops.chaos import CRASH_POINTS, ChaosOptions, ChaosReport, run_chaos  # noqa: E402
from horus.settings import load_settings  # noqa: E402

DOC = REPO / "docs" / "benchmarks.md"
SECTION = "## Chaos run (`bench/chaos.py`)"
COUNTS = (
    "duplicates",
    "orphans",
    "lost",
    "unresolved",
    "overfilled",
    "mismatched",
    "late",
    "overspent",
    "decided_twice",
)
HEADER = (
    "| date | followers x fills | decisions | venue orders | kills (random; at each crash point) "
    "| PostgreSQL / broker restarts | unplanned exits | drained | wall time | ledger statuses | "
    + " | ".join(COUNTS)
    + " | full size |\n"
    + "|---" * (10 + len(COUNTS) + 1)
    + "|\n"
)
INTRO = """
Since issue 9 (D13) the run reads the venue's own books: `.venv/bin/python bench/chaos.py` runs `horus chaos` at
full size on a private stack. 2 decide workers and 3 executor processes (clocks +2 s, -2 s and true, libfaketime)
against the in-process CLOB simulator, one fee-bearing market pair, every fault on until the verdict (latency,
5xx, held and lost replies, hidden partial fills, failed reads, balance checked before duplicates, lagging and
failing trades, 425 / post-only windows); followers funded with $20-300, balances read from the venue, follower
and follow daily caps. A seeded killer SIGKILLs a random process (3 in 4 an executor) and restarts it; executors
SIGKILL themselves at each crash point (`HORUS_CRASH_AT`: after prewrite commit, after POST sent, after reply,
after ledger commit); PostgreSQL (every server process) and the broker are killed -9 and restarted mid-flight.
Everything drains with the faults on, then `horus reconcile --once`; the counts come from the venue's order log
and trades, the ledger with Postgres' commit times, and execution.results (horus/ops/chaos.py says which count
reads what). "Unplanned exits" are processes that died by themselves (restarted by the harness, as a supervisor
would; see the run's logs).
"""
FULL = dict(
    decisions=10_000, kills=200, crash_kills=20, pg_restarts=3, broker_restarts=3, instances=3, decide_workers=2
)


def shortfalls(report: ChaosReport) -> list[str]:
    """How this run falls short of the full size, if it does."""
    out = []
    if report.verdict.decisions < FULL["decisions"]:
        out.append(f"{report.verdict.decisions} decisions < {FULL['decisions']}")
    if report.total_kills < FULL["kills"]:
        out.append(f"{report.total_kills} kills < {FULL['kills']}")
    for point in CRASH_POINTS:
        if report.crash_kills[point] < FULL["crash_kills"]:
            out.append(f"{report.crash_kills[point]} kills at {point} < {FULL['crash_kills']}")
    for part, key in (("postgres", "pg_restarts"), ("kafka", "broker_restarts")):
        if report.restarts[part] < FULL[key]:
            out.append(f"{report.restarts[part]} {part} restarts < {FULL[key]}")
    for key in ("instances", "decide_workers"):
        if getattr(report.options, key) != FULL[key]:
            out.append(f"{key} {getattr(report.options, key)} instead of {FULL[key]}")
    return out


def row(report: ChaosReport) -> str:
    v, o = report.verdict, report.options
    statuses = ", ".join(f"{s} {n:,}" for s, n in sorted(v.statuses.items()))
    points = ", ".join(str(report.crash_kills[p]) for p in CRASH_POINTS)
    short = shortfalls(report)
    return (
        f"| {time.strftime('%Y-%m-%d')} (2 cores) | {o.followers} x {o.fills} | {v.decisions:,} | {v.orders:,} "
        f"| {report.total_kills} ({sum(report.kills.values())}; {points}) "
        f"| {report.restarts['postgres']} / {report.restarts['kafka']} | {len(report.crashes)} "
        f"| {'yes' if report.drained else 'no'} | {report.seconds:.0f} s | {statuses} | "
        + " | ".join(str(n) for n in v.counts().values())
        + f" | {'yes' if not short else 'no: ' + '; '.join(short)} |\n"
    )


def record(line: str) -> None:
    """Append the row to this benchmark's section (created the first time), under the current table's header (a
    new table when the section's last one has other columns), wherever the section sits in the shared file."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n"
    start = text.index(SECTION)
    following = text.find("\n## ", start + len(SECTION))
    end = len(text) if following < 0 else following
    section = text[start:end].rstrip("\n") + "\n"
    if HEADER not in section:
        section += f"{INTRO}\n{HEADER}"
    section += line
    DOC.write_text(text[:start] + section + ("\n" + text[end:].lstrip("\n") if following >= 0 else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--fills", type=int, default=100)
    parser.add_argument("--kills", type=int, default=130, help="random kills (crash-point kills come on top)")
    parser.add_argument("--crash-kills", type=int, default=FULL["crash_kills"])
    parser.add_argument("--pg-restarts", type=int, default=FULL["pg_restarts"])
    parser.add_argument("--broker-restarts", type=int, default=FULL["broker_restarts"])
    parser.add_argument("--instances", type=int, default=FULL["instances"])
    parser.add_argument("--decide-workers", type=int, default=FULL["decide_workers"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to docs/benchmarks.md")
    args = parser.parse_args()
    options = ChaosOptions(
        followers=args.followers,
        fills=args.fills,
        kills=args.kills,
        crash_kills=args.crash_kills,
        pg_restarts=args.pg_restarts,
        broker_restarts=args.broker_restarts,
        instances=args.instances,
        decide_workers=args.decide_workers,
        seed=args.seed,
        timeout=args.timeout,
    )
    report = run_chaos(load_settings(), options, say=lambda line: print(line, flush=True))
    for line in report.lines():
        print(line, flush=True)
    short = shortfalls(report)
    print("full size: " + ("yes" if not short else "no (" + "; ".join(short) + ")"), flush=True)
    if not args.no_record:
        record(row(report))
        print(f"recorded in {DOC.relative_to(REPO)}")
    return 0 if report.ok and not short else 1


if __name__ == "__main__":
    sys.exit(main())
