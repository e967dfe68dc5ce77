"""`horus chaos` on a private stack (small configuration), the evidence it reads, and the comparison catching each
kind of fault.

The run: 12 followers x 10 leader fills over 40 s (more while a crash point has not fired yet) through 2 decide and
2 executor processes (one of each kind with its clock 2 s ahead, one 2 s behind), one of them SIGKILLed at random
and restarted, each executor crash point fired at least once, PostgreSQL killed -9 and restarted once, the broker
killed -9 and restarted once, against a simulator with a fee-bearing market and every fault on until the verdict
(latency, 5xx, held and lost replies, hidden partial fills, balance checked before duplicates, lagging and failing
trades, a 425 restart window), followers with $20-300 and daily caps. Every count must be zero and orders must have
reached the venue.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import psycopg
import pytest

from horus.db.engine import psycopg_conninfo
from horus.execution.ledger import Ledger, Prewrite
from horus.ops.chaos import (
    CRASH_POINTS,
    Caps,
    ChaosError,
    ChaosOptions,
    Children,
    compare,
    ledger_rows,
    require_commit_timestamps,
)
from horus.ops.stack.faketime import skewed_env
from horus.venue.polymarket.orders import intent_metadata
from tests.integration.private_postgres import PrivatePostgres

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
SUMMARY = re.compile(r"^orders=(\d+) " + " ".join(f"{name}=(\\d+)" for name in COUNTS) + "$", re.MULTILINE)


@pytest.mark.integration
def test_small_chaos_run_proves_every_count_zero_under_crashes_restarts_skew_and_venue_faults(settings):
    env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "horus.cli.main",
            "chaos",
            "--followers",
            "12",
            "--fills",
            "10",
            "--kills",
            "1",
            "--crash-kills",
            "1",
            "--pg-restarts",
            "1",
            "--broker-restarts",
            "1",
            "--instances",
            "2",
            "--decide-workers",
            "2",
            "--seed",
            "7",
            "--order-ttl",
            "15",
            "--clock-skew",
            "2",
            "--fill-rate",
            "0.25",
            "--timeout",
            "200",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=260,
    )
    output = done.stdout + done.stderr
    found = SUMMARY.findall(output)
    assert len(found) == 1, output
    orders, *counts = map(int, found[0])
    assert done.stdout.rstrip().splitlines()[-1].startswith("orders="), output  # the verdict line comes last
    assert dict(zip(COUNTS, counts)) == dict.fromkeys(COUNTS, 0), output
    assert orders > 0, output
    assert done.returncode == 0, output
    # every candidate decided (fills beyond the planned 10 only while a crash point had not fired yet)
    assert re.search(r"fills=\d+ \(10 planned\) candidates=(\d+)/\1 decisions=\d+ ", output), output
    assert "restarts: postgres=1 kafka=1" in output, output
    assert re.search(r"random: execute \d+, decide \d+;", output) and "drained=yes" in output, output
    for point in CRASH_POINTS:
        assert re.search(rf"{point}=[1-9]", output), output


# ----------------------------------------------------------------------------- the comparison itself
CLEAN = "duplicates=0 orphans=0 lost=0 unresolved=0 overfilled=0 mismatched=0 late=0 overspent=0 decided_twice=0"
EXPIRES_US = 10**15  # far away unless a test says otherwise


def decision(
    n: int,
    size_e6: int = 10_000_000,
    action: str = "COPY",
    expires_at_us: int = EXPIRES_US,
    follow: str = "fw0",
    follower: str = "0xf0",
) -> dict:
    return {
        "candidate_id": f"c{n}",
        "action": action,
        "intent_id": f"i{n}" if action == "COPY" else None,
        "size_e6": size_e6,
        "follow_id": follow,
        "follower": follower,
        "expires_at_us": expires_at_us if action == "COPY" else None,
    }


def row(
    n: int,
    status: str = "FILLED",
    filled: int = 10_000_000,
    order_hash: str | None = None,
    committed_us: int | None = 1_000,
) -> dict:
    return {
        "intent_id": f"i{n}",
        "status": status,
        "order_hash": order_hash or f"0xH{n}",
        "filled_shares_e6": filled,
        "committed_us": committed_us,
    }


def result(n: int, status: str = "FILLED", filled: int = 10_000_000) -> dict:
    return {"intent_id": f"i{n}", "status": status, "filled_shares_e6": filled}


def order(
    n: int,
    order_id: str | None = None,
    matched: int = 10_000_000,
    size: int = 10_000_000,
    metadata: str | None = None,
    received_us: int = 2_000,
) -> dict:
    return {
        "order_id": order_id or f"0xh{n}",
        "metadata": metadata or intent_metadata(f"i{n}"),
        "size_e6": size,
        "size_matched_e6": matched,
        "received_us": received_us,
    }


def trade(n: int, debit_e6: int, follower: str = "0xf0", day: int = 20_000) -> dict:
    return {"order_id": f"0xh{n}", "follower": follower, "day": day, "debit_e6": debit_e6}


def test_a_clean_run_counts_nothing():
    verdict = compare(
        [decision(0), decision(1), decision(2, action="SKIP")],
        [result(0), result(1)],
        [row(0), row(1)],
        [order(0), order(1)],
    )
    assert verdict.ok, verdict.failures()
    assert verdict.summary_line() == f"orders=2 {CLEAN}"
    assert (verdict.decisions, verdict.copies) == (3, 2)


def test_the_reviews_case_a_venue_fill_the_ledger_calls_not_filled_and_no_result_fails():
    """D13: decisions=[COPY i], ledger=[NOT_FILLED, 0], results=[], venue=[size_matched=size] passed before."""
    verdict = compare([decision(0)], [], [row(0, "NOT_FILLED", 0)], [order(0, matched=10_000_000)])
    assert not verdict.ok
    assert verdict.mismatched == ["i0"] and verdict.lost == ["i0"]
    assert verdict.summary_line() == (
        "orders=1 duplicates=0 orphans=0 lost=1 unresolved=0 overfilled=0 "
        "mismatched=1 late=0 overspent=0 decided_twice=0"
    )
    failures = "\n".join(verdict.failures())
    assert "venue order log" in failures and "i0" in failures


def test_each_fault_is_counted_and_named():
    decisions = [decision(n) for n in range(6)] + [decision(0, size_e6=9_000_000)]  # c0 decided twice, differently
    results = [result(0), result(1), result(2), result(4, "UNKNOWN", 0), result(5, filled=12_000_000)]
    ledger = [row(0), row(1), row(2, order_hash="0xh2"), row(4, "UNKNOWN", 0), row(5, filled=12_000_000)]
    venue = [
        order(0),
        order(1),
        order(1, order_id="0xsecond"),  # intent i1: two distinct venue orders
        order(2, order_id="0xother"),  # i2's order is not the hash its ledger row holds: an orphan
        order(9, metadata="0x" + "ab" * 32),  # no intent at all: an orphan
        order(5, order_id="0xh5", matched=12_000_000),
    ]  # more matched than the order's size
    verdict = compare(decisions, results, ledger, venue)
    # i2's row holds 0xh2, which differs from the venue's 0xother; i1's row holds 0xH1 (the case is ignored)
    assert verdict.duplicates == ["i1"]
    assert sorted(verdict.orphans) == sorted(["0xsecond", "0xother", "0xh9"])
    assert verdict.lost == ["i3", "i4"]  # i3: nothing anywhere; i4: only UNKNOWN
    assert verdict.unresolved_open == ["i4"] and verdict.unresolved_missing == ["i3"]
    assert verdict.unresolved == 2
    assert verdict.overfilled == ["i5"]  # venue size_matched above size, and fills above the decision
    assert verdict.mismatched == ["i1"]  # the venue matched 20 over two orders, the ledger and results say 10
    assert verdict.decided_twice == ["c0"]
    assert verdict.orders == 5  # 0xh9 traces to no intent: an orphan, not one of this run's orders
    assert not verdict.ok
    assert verdict.summary_line() == (
        "orders=5 duplicates=1 orphans=3 lost=2 unresolved=2 overfilled=1 "
        "mismatched=1 late=0 overspent=0 decided_twice=1"
    )
    failures = "\n".join(verdict.failures())
    assert "i3" in failures and "0xother" in failures and "c0" in failures


def test_a_candidate_decided_again_with_the_same_content_is_a_redelivery_not_a_second_decision():
    verdict = compare([decision(0), decision(0)], [result(0)], [row(0)], [order(0)])
    assert verdict.decided_twice == [] and verdict.ok, verdict.failures()


def test_a_fill_above_the_decision_is_an_overfill_even_when_the_venue_agrees():
    verdict = compare(
        [decision(0, size_e6=5_000_000)],
        [result(0, filled=6_000_000)],
        [row(0, filled=6_000_000)],
        [order(0, matched=6_000_000, size=6_000_000)],
    )
    assert verdict.overfilled == ["i0"] and verdict.mismatched == []
    assert "overfilled=1" in verdict.summary_line()


def test_a_terminal_ledger_row_without_its_result_is_lost():
    """The result on execution.results is what decide needs to release the reservation; the ledger alone is not."""
    verdict = compare([decision(0)], [], [row(0, "NOT_FILLED", 0)], [])
    assert verdict.lost == ["i0"] and not verdict.ok
    assert verdict.summary_line() == (
        "orders=0 duplicates=0 orphans=0 lost=1 unresolved=0 overfilled=0 "
        "mismatched=0 late=0 overspent=0 decided_twice=0"
    )


@pytest.mark.parametrize(
    "case, expected",
    [
        # (ledger, results, venue matched or None for no venue order)
        ((row(0, "PARTIAL", 4_000_000), [result(0, "PARTIAL", 4_000_000)], 5_000_000), "fill sizes differ"),
        ((row(0, "FILLED"), [result(0, "FILLED", 9_000_000)], 10_000_000), "results differ"),
        ((row(0, "REJECTED", 0), [result(0, "REJECTED", 0)], 10_000_000), "venue filled, recorded as rejected"),
        ((row(0, "FILLED"), [result(0, "FILLED")], None), "a fill recorded, no venue order"),
        ((row(0, "FILLED", 0), [result(0, "FILLED", 0)], 0), "FILLED with nothing matched"),
        (
            (row(0, "FILLED"), [result(0, "NOT_FILLED", 0), result(0, "FILLED")], 10_000_000),
            "an earlier terminal result said not filled (decide books the first)",
        ),
    ],
)
def test_each_disagreement_between_venue_ledger_and_results_is_a_mismatch(case, expected):
    ledger_row, results, matched = case
    venue = [] if matched is None else [order(0, matched=matched)]
    verdict = compare([decision(0)], results, [ledger_row], venue)
    assert verdict.mismatched == ["i0"], expected


def test_a_killed_order_with_nothing_matched_and_no_fill_recorded_agrees():
    verdict = compare([decision(0)], [result(0, "NOT_FILLED", 0)], [row(0, "NOT_FILLED", 0)], [order(0, matched=0)])
    assert verdict.ok, verdict.failures()


def test_an_order_the_venue_received_before_its_row_was_committed_is_an_orphan():
    ledger = [row(0, committed_us=5_000), row(1, committed_us=None), row(2, committed_us=1_999)]
    venue = [order(0, received_us=5_000), order(1), order(2, received_us=2_000)]
    verdict = compare([decision(0), decision(1), decision(2)], [result(0), result(1), result(2)], ledger, venue)
    # i0: committed at the same microsecond it was received (not before); i1: no commit time known
    assert sorted(verdict.orphans) == ["0xh0", "0xh1"]
    assert "committed" in "\n".join(verdict.failures())


def test_an_order_received_at_or_after_its_expiry_is_late():
    decisions = [decision(0, expires_at_us=2_000), decision(1, expires_at_us=2_001), decision(2, expires_at_us=1_500)]
    verdict = compare(
        decisions,
        [result(n) for n in range(3)],
        [row(n) for n in range(3)],
        [order(n, received_us=2_000) for n in range(3)],
    )
    assert verdict.late == ["i0", "i2"]
    assert "late=2" in verdict.summary_line()


def test_venue_debits_above_a_follower_or_follow_daily_cap_are_overspent():
    decisions = [
        decision(0, follow="a", follower="0xf0"),
        decision(1, follow="b", follower="0xf0"),
        decision(2, follow="a", follower="0xf0"),
        decision(3, follow="c", follower="0xf1"),
    ]
    everything = dict(
        results=[result(n) for n in range(4)],
        ledger=[row(n) for n in range(4)],
        venue_orders=[order(n) for n in range(4)],
    )
    trades = [
        trade(0, 6_000_000),
        trade(1, 5_000_000),
        trade(2, 4_500_000, day=20_001),
        trade(3, 9_000_000, follower="0xf1"),
    ]
    caps = Caps(follower={"0xf0": 10_000_000, "0xf1": 9_000_000}, follow={"a": 6_000_000, "b": 4_000_000})
    verdict = compare(
        decisions, everything["results"], everything["ledger"], everything["venue_orders"], trades=trades, caps=caps
    )
    # follower 0xf0 on day 20000: 6 + 5 = 11 > 10; follow b: 5 > 4; follow a: 6 on day 20000 and 4.5 on
    # 20001, each within 6; 0xf1: exactly its cap (9), which is allowed
    assert sorted(verdict.overspent) == ["follow b day 20000", "follower 0xf0 day 20000"]
    assert "overspent=2" in verdict.summary_line()
    assert (
        compare(
            decisions,
            everything["results"],
            everything["ledger"],
            everything["venue_orders"],
            trades=trades,
            caps=Caps(follower={}, follow={}),
        ).overspent
        == []
    )


# ----------------------------------------------------------------------------- the evidence behind the counts
def test_a_skewed_child_process_has_its_wall_clock_shifted_and_its_monotonic_clock_true():
    probe = "import time; print(time.time(), time.monotonic())"
    before, before_mono = time.time(), time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **skewed_env(-3.5)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    after, after_mono = time.time(), time.monotonic()
    wall, mono = map(float, out.split())
    assert before - 3.5 <= wall <= after - 3.5
    assert before_mono <= mono <= after_mono
    assert skewed_env(0) == {}


def test_the_verdict_refuses_to_count_orphans_without_commit_timestamps():
    with pytest.raises(ChaosError, match="track_commit_timestamp"):
        require_commit_timestamps("off")
    require_commit_timestamps("on")


@pytest.mark.integration
def test_a_prewritten_row_carries_the_commit_time_of_its_insert_through_later_updates(settings):
    """The ledger's own prewrite (INSERT ... SELECT FROM unnest, which does not list prewrite_xid) fills the column
    by its default; an update changes xmin but not prewrite_xid; the local stack's PostgreSQL tracks commit
    timestamps, so the row's commit time is known to the microsecond."""
    with PrivatePostgres() as pg:
        db = pg.settings(settings)
        intent = uuid.uuid4().hex
        row = Prewrite(
            intent_id=intent,
            follow_id="f",
            leader_fill_id="lf",
            follower="0x" + "f0" * 20,
            token_id="1",
            side="BUY",
            size_e6=5_000_000,
            price=None,
            decision_id="d",
            occurred_at_us=1,
            order_type="FAK",
            expires_at_us=2**50,
            signer=None,
            venue_mode="paper",
            order_hash="0xh",
            signed_order=None,
            body_text="{}",
        )

        async def prewrite():
            ledger = Ledger(db.database_url, connections=1)
            try:
                return await ledger.prewrite([row], "owner")
            finally:
                await ledger.close()

        before = time.time_ns() // 1000
        assert set(asyncio.run(prewrite())) == {intent}
        after = time.time_ns() // 1000
        with psycopg.connect(psycopg_conninfo(db.database_url), autocommit=True) as conn:
            xmin = conn.execute("SELECT xmin::text FROM copy_trades").fetchone()[0]
            conn.execute("UPDATE copy_trades SET status = 'UNKNOWN'")
            assert conn.execute("SELECT xmin::text FROM copy_trades").fetchone()[0] != xmin
        (got,) = ledger_rows(db, [intent])
        assert before <= got["committed_us"] <= after
        assert (got["intent_id"], got["status"], got["order_hash"]) == (intent, "UNKNOWN", "0xh")


class FakeProcess:
    """Stands in for a worker's Popen: `code` is what poll() returns once it has ended."""

    def __init__(self, code: int | None = None) -> None:
        self.code = code

    def poll(self) -> int | None:
        return self.code


class RecordingChildren(Children):
    """Children whose start records the crash spec it armed instead of spawning a worker."""

    def start(self, name: str, argv: list[str]) -> None:
        self.argv[name] = argv
        self.armed[name] = self._crash_spec(name)
        self.procs[name] = FakeProcess()


def test_executors_are_armed_through_every_crash_point_and_self_kills_are_counted_per_point(tmp_path):
    children = RecordingChildren({}, tmp_path, ChaosOptions(instances=2, crash_kills=2), random.Random(3))
    for name in ("execute-0", "execute-1", "decide-0"):
        children.start(name, ["worker"])
    assert children.armed["decide-0"] is None  # only executors have crash points
    first = {children.armed["execute-0"].split(":")[0], children.armed["execute-1"].split(":")[0]}
    assert first == set(CRASH_POINTS[:2])  # the least-fired points first, never the same one twice at once
    fired = Counter()
    for _ in range(40):  # each armed executor fires its point; an exit code other than -9 is an unplanned exit
        for name in ("execute-0", "execute-1"):
            spec = children.armed[name]
            if spec:
                n = int(spec.split(":")[1])
                assert 1 <= n <= 3
                fired[spec.split(":")[0]] += 1
                children.procs[name].code = -signal.SIGKILL
        children.restart_crashed()
    assert children.crash_kills == fired == Counter(dict.fromkeys(CRASH_POINTS, 2))  # then no more arming
    assert children.armed == {"execute-0": None, "execute-1": None, "decide-0": None}
    children.procs["decide-0"].code = 1
    children.procs["execute-0"].code = -signal.SIGKILL  # not armed: a SIGKILL nobody planned
    children.restart_crashed()
    assert sorted(children.crashes) == ["decide-0 exited with 1", "execute-0 exited with -9"]


def test_a_provisional_fill_settled_by_a_later_result_is_no_mismatch_until_it_stays_provisional():
    """A matched reply's fills are provisional (final = false) until the chain settles them; a trade that FAILED
    makes the venue undo them and the executor records the settled truth as the next result."""
    provisional = {**result(0), "final": False}
    settled = {**result(0, "NOT_FILLED", 0), "final": True}
    verdict = compare([decision(0)], [provisional, settled], [row(0, "NOT_FILLED", 0)], [order(0, matched=0)])
    assert verdict.mismatched == [] and verdict.ok
    still = compare([decision(0)], [provisional], [row(0, "FILLED")], [order(0, matched=0)])
    assert still.mismatched == ["i0"] and "not final" in still.notes["mismatched"]["i0"]
    wrong = compare([decision(0)], [provisional, {**result(0), "final": True}], [row(0)], [order(0, matched=0)])
    assert wrong.mismatched == ["i0"]  # a final result that says FILLED while the venue matched nothing


def test_an_older_result_redelivered_after_the_settled_one_is_not_the_last_word():
    """Results carry their sequence: a redelivered decision can re-emit the provisional result (seq 1) after the
    reconciler's final one (seq 2); the highest sequence is the last word, whatever the topic order."""
    provisional = {**result(0), "final": False, "seq": 1}
    settled = {**result(0), "final": True, "seq": 2}
    verdict = compare([decision(0)], [provisional, settled, provisional], [row(0)], [order(0)])
    assert verdict.mismatched == [] and verdict.ok
