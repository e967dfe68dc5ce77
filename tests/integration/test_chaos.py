"""`horus chaos` on the real stack (small configuration), and the comparison catching each kind of fault.

The run: 12 followers x 8 leader fills through 2 decide and 2 executor processes, 4 of them SIGKILLed and
restarted mid-stream, against a simulator injecting latency, 5xx, held and lost replies, hidden partial
fills and a 425 restart window. The five counts must be zero and orders must have reached the venue.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from horus.chaos import compare
from horus.venue.polymarket.orders import intent_metadata

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUMMARY = re.compile(r"^orders=(\d+) duplicates=(\d+) orphans=(\d+) lost=(\d+) unresolved=(\d+) overfilled=(\d+)$",
                     re.MULTILINE)


@pytest.mark.integration
def test_small_chaos_run_places_every_copy_at_most_once_and_settles_all(settings):
    env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "horus.cli.main", "chaos", "--followers", "12", "--fills", "8",
                           "--kills", "4", "--instances", "2", "--decide-workers", "2", "--seed", "7",
                           "--timeout", "150"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=200)
    output = done.stdout + done.stderr
    found = SUMMARY.findall(output)
    assert len(found) == 1, output
    orders, duplicates, orphans, lost, unresolved, overfilled = map(int, found[0])
    assert done.returncode == 0, output
    assert orders > 0, output
    assert (duplicates, orphans, lost, unresolved, overfilled) == (0, 0, 0, 0, 0), output
    assert re.search(r"candidates=96/96 decisions=\d+", output), output
    assert "kills=4 (" in output, output


# ----------------------------------------------------------------------------- the comparison itself
def decision(n: int, size_e6: int = 10_000_000, action: str = "COPY") -> dict:
    return {"candidate_id": f"c{n}", "action": action, "intent_id": f"i{n}" if action == "COPY" else None,
            "size_e6": size_e6}


def row(n: int, status: str = "FILLED", filled: int = 10_000_000, order_hash: str | None = None) -> dict:
    return {"intent_id": f"i{n}", "status": status, "order_hash": order_hash or f"0xH{n}", "filled_shares_e6": filled}


def result(n: int, status: str = "FILLED", filled: int = 10_000_000) -> dict:
    return {"intent_id": f"i{n}", "status": status, "filled_shares_e6": filled}


def order(n: int, order_id: str | None = None, matched: int = 10_000_000, size: int = 10_000_000,
          metadata: str | None = None) -> dict:
    return {"order_id": order_id or f"0xh{n}", "metadata": metadata or intent_metadata(f"i{n}"), "size_e6": size,
            "size_matched_e6": matched}


def test_a_clean_run_counts_nothing():
    verdict = compare([decision(0), decision(1), decision(2, action="SKIP")], [result(0), result(1)],
                      [row(0), row(1)], [order(0), order(1)])
    assert verdict.ok
    assert verdict.summary_line() == "orders=2 duplicates=0 orphans=0 lost=0 unresolved=0 overfilled=0"
    assert (verdict.decisions, verdict.copies) == (3, 2)


def test_each_fault_is_counted_and_named():
    decisions = [decision(n) for n in range(6)] + [decision(0)]  # candidate c0 decided twice
    results = [result(0), result(1), result(2), result(4, "UNKNOWN", 0), result(5, filled=12_000_000)]
    ledger = [row(0), row(1), row(2, order_hash="0xh2"), row(4, "UNKNOWN", 0), row(5, filled=12_000_000)]
    venue = [order(0),
             order(1), order(1, order_id="0xsecond"),  # intent i1: two distinct venue orders
             order(2, order_id="0xother"),  # i2's order is not the hash its ledger row holds: an orphan
             order(9, metadata="0x" + "ab" * 32),  # no intent at all: an orphan
             order(5, order_id="0xh5", matched=12_000_000)]  # more matched than the order's size
    verdict = compare(decisions, results, ledger, venue)
    # i2's row holds 0xh2, which differs from the venue's 0xother; i1's row holds 0xH1 (the case is ignored)
    assert verdict.duplicates == ["i1"]
    assert sorted(verdict.orphans) == sorted(["0xsecond", "0xother", "0xh9"])
    assert verdict.lost == ["i3", "i4"]  # i3: nothing anywhere; i4: only UNKNOWN
    assert verdict.unresolved_open == ["i4"] and verdict.unresolved_missing == ["i3"]
    assert verdict.unresolved == 2
    assert verdict.overfilled == ["i5"]  # venue size_matched above size, and fills above the decision
    assert verdict.decided_twice == ["c0"]
    assert verdict.orders == 5  # 0xh9 traces to no intent: an orphan, not one of this run's orders
    assert not verdict.ok
    assert verdict.summary_line() == "orders=5 duplicates=1 orphans=3 lost=2 unresolved=2 overfilled=1"
    failures = "\n".join(verdict.failures())
    assert "i3" in failures and "0xother" in failures


def test_a_fill_above_the_decision_is_an_overfill_even_when_the_venue_agrees():
    verdict = compare([decision(0, size_e6=5_000_000)], [result(0, filled=6_000_000)], [row(0, filled=5_000_000)],
                      [order(0, matched=5_000_000)])
    assert verdict.overfilled == ["i0"]
    assert verdict.summary_line().endswith("overfilled=1")


def test_a_terminal_ledger_row_without_its_result_is_not_lost():
    verdict = compare([decision(0)], [], [row(0, "NOT_FILLED", 0)], [])
    assert verdict.lost == [] and verdict.ok
    assert verdict.summary_line() == "orders=0 duplicates=0 orphans=0 lost=0 unresolved=0 overfilled=0"
