"""Two executors in one consumer group: a second one joins mid-stream (partitions move while orders are in
flight), then the first is stopped with work in flight (SIGTERM: a clean leave; SIGKILL: its partitions
wait out the session timeout and its leases lapse). Checked with horus.ops.chaos.compare against the ledger,
the simulator's order log and execution.results: no duplicate, no orphan, nothing lost or left open.
And the lease that keeps executors and reconcilers apart holds while a row waits in its follower's lane."""

from __future__ import annotations

import signal
import time

import pytest

from horus.ops import paper
from tests.integration.execute_helpers import (
    DecisionStream,
    Results,
    ServiceThread,
    all_settled,
    all_terminal,
    copy_decision,
    group_partitions,
    leased_rows,
    make_followers,
    orders_by_intent,
    paper_settings,
    private_settings,
    produce_decisions,
    publish_accounts,
    simulator,
    start_worker,
    verdict,
)
from tests.integration.pipeline_helpers import wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 6


def at_least(n: int, rows: list[str]) -> list[str] | None:
    return rows if len(rows) >= n else None


def holding(settings, group: str, members: int) -> list[set[int]] | None:
    """The group's partitions per member once it is stable with `members` members each holding some."""
    found = group_partitions(settings, group)
    return found if found and len(found) == members and all(found) else None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_second_executor_joins_mid_stream_then_the_first_is_stopped_with_work_in_flight(settings, tmp_path, sig):
    sim = simulator(latency_ms=250)  # every POST is in flight for a quarter second
    s = paper_settings(private_settings(settings, partitions=PARTITIONS, session_timeout_s=6.0), sim)
    group = f"{s.app_id}-execute"
    followers = make_followers(s, 24)
    publish_accounts(s, followers)
    results = Results(s)
    stream = DecisionStream(s, followers, per_second=30, tag=sig.name)
    a_log = tmp_path / "a.log"
    a = start_worker(s, a_log)
    b = None
    try:
        wait_until(lambda: leased_rows(s, a.pid), 60, f"executor A at work ({a_log})")
        b = ServiceThread(s, followers)  # same group, while A has orders in flight
        held = wait_until(lambda: holding(s, group, 2), 30, "both executors holding partitions", every=0.3)
        assert sorted(p for member in held for p in member) == list(range(PARTITIONS))
        assert "execute: revoked" in a_log.read_text()  # partitions moved away from A while it ran
        # a few rows held, so some are surely still unfinished when the signal lands
        in_flight = wait_until(lambda: at_least(3, leased_rows(s, a.pid)), 30, "A with work in flight")
        a.send_signal(sig)
        assert a.wait(30) == (0 if sig == signal.SIGTERM else -signal.SIGKILL), a_log.read_text()[-3000:]
        abandoned = leased_rows(s, a.pid)  # rows A still held the lease on when it was gone
        if sig == signal.SIGTERM:
            assert abandoned == []  # a clean stop finishes what it started
        else:
            assert abandoned  # a kill mid-flight leaves rows for B (redelivery, lapsed lease, reconciler)
        # B alone now: all partitions (at once after a clean leave, after the session timeout after a kill)
        assert wait_until(lambda: holding(s, group, 1), 30, "B holding every partition", every=0.3) == [
            set(range(PARTITIONS))
        ]
        time.sleep(1.0)  # and the stream goes on a little while B owns everything
        decisions = stream.stop()
        intents = {d["intent_id"] for d in decisions}
        latest = results.wait(all_settled(intents), timeout=60)  # B's reconciler confirms every fill
    finally:
        stream.stop()
        if a.poll() is None:
            a.kill()
            a.wait(10)
        if b is not None:
            b.close()
    found = verdict(s, sim, decisions, results)
    assert found.ok, found.failures()
    assert found.copies == found.orders == len(intents)  # one venue order per COPY, none missing
    assert set(in_flight) <= intents and {r["status"] for r in latest.values()} == {"FILLED"}
    orders = orders_by_intent(sim, {*in_flight, *abandoned})
    for intent in {*in_flight, *abandoned}:  # what A held when it was stopped: one order, its hash on the result
        assert [o["order_id"] for o in orders[intent]] == [latest[intent]["order_hash"]]
    results.close()
    sim.stop()


def test_a_follower_backlog_longer_than_the_lease_is_sent_once_and_in_order(settings):
    """Rows wait in their follower's lane holding the lease taken at prewrite; the executor keeps that lease
    alive, so its reconciler (or another executor's) never sends a queued row meanwhile."""
    sim = simulator(latency_ms=500)
    s = paper_settings(private_settings(settings), sim)  # execute_lease_s 3: the 10th order waits ~5 s
    follower = make_followers(s, 1)[0]
    decisions = [copy_decision(follower.address, n, tag="backlog") for n in range(10)]
    intents = {d["intent_id"] for d in decisions}
    results = Results(s)
    produce_decisions(s, decisions)
    with ServiceThread(s, [follower]):
        results.wait(all_terminal(intents), timeout=60)
    log = paper.venue_orders(sim.url)
    assert log["counts"]["posts"] == log["counts"]["accepted"] == len(decisions)  # each POSTed once
    orders = orders_by_intent(sim, intents)
    created = [orders[d["intent_id"]][0]["created_ms"] for d in decisions]
    assert created == sorted(created)  # in the follower's order
    results.close()
    sim.stop()
