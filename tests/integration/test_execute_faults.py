"""Fault tests of the executor: SIGKILL mid-batch, lost replies, 425 windows, hidden FOK fills,
chain-only evidence, expiry without a trace, and per-follower ordering under concurrency."""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest

from horus.db.engine import psycopg_conninfo
from horus.ops.testchain import V2Fill, deploy_emitters, emit_v2
from tests.integration.execute_helpers import (
    TOKEN,
    Results,
    ServiceThread,
    all_terminal,
    copy_decision,
    group_partitions,
    make_followers,
    orders_by_intent,
    paper_settings,
    private_settings,
    produce_decisions,
    set_faults,
    simulator,
    start_subprocess,
    venue_orders,
)
from tests.integration.pipeline_helpers import wait_until

pytestmark = pytest.mark.integration


def ledger_rows(settings, intents):
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, status, order_hash, attempts, filled_shares_e6 FROM copy_trades "
            "WHERE idempotency_key = ANY(%s)",
            (sorted(intents),),
        ).fetchall()
    return {r[0]: r for r in rows}


def statuses_of(results, intent):
    return [r["status"] for r in results.seen if r["intent_id"] == intent]


def test_sigkill_mid_batch_then_restart_leaves_one_order_per_copy_and_no_orphan(settings, tmp_path):
    sim = simulator(latency_ms=250)
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 40)
    decisions = [copy_decision(f.address, n, tag="kill") for f in followers for n in range(5)]
    intents = {d["intent_id"] for d in decisions}
    produce_decisions(s, decisions)
    results = Results(s)
    child = start_subprocess(s, followers, tmp_path / "exec1.log")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(venue_orders(sim)) < 30:
            time.sleep(0.05)
        assert len(venue_orders(sim)) >= 30, (tmp_path / "exec1.log").read_text()[-3000:]
        os.kill(child.pid, signal.SIGKILL)  # mid-flight: POSTs out, results and offsets half done
        child.wait(10)
        placed_at_kill = len(venue_orders(sim))
        assert placed_at_kill < len(decisions)
        child = start_subprocess(s, followers, tmp_path / "exec2.log")
        latest = results.wait(all_terminal(intents), timeout=120)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(30)
    orders = orders_by_intent(sim, intents)
    assert {i: len(o) for i, o in orders.items() if len(o) != 1} == {}  # exactly one venue order per COPY
    assert {r["status"] for r in latest.values()} == {"FILLED"}
    rows = ledger_rows(s, intents)
    by_hash = {row[2]: row for row in rows.values()}
    for order in venue_orders(sim):  # no orphan: every order the venue saw has its ledger row
        assert order["order_id"] in by_hash, order
    results.close()
    sim.stop()


def test_lost_reply_is_unknown_until_the_reconciler_finds_the_fill(settings):
    sim = simulator(reply_lost_rate=1.0)
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 3)
    decisions = [copy_decision(f.address, 0, tag="lost") for f in followers]
    intents = {d["intent_id"] for d in decisions}
    results = Results(s)
    produce_decisions(s, decisions)
    with ServiceThread(s, followers, resend_unknown=0, reconcile=False):
        results.wait(lambda latest: intents <= set(latest) and all(latest[i]["status"] == "UNKNOWN" for i in intents))
    assert {r[1] for r in ledger_rows(s, intents).values()} == {"UNKNOWN"}
    set_faults(sim, reply_lost_rate=0.0)
    with ServiceThread(s.model_copy(update={"app_id": s.app_id + "-rec"}), followers):
        latest = results.wait(all_terminal(intents))
    orders = orders_by_intent(sim, intents)
    for intent in intents:
        assert statuses_of(results, intent)[:1] == ["UNKNOWN"] and latest[intent]["status"] == "FILLED"
        assert len(orders[intent]) == 1 and orders[intent][0]["post_count"] == 1  # settled by lookup, not re-sent
        assert latest[intent]["filled_shares_e6"] == orders[intent][0]["size_matched_e6"] == 10_000_000
    results.close()
    sim.stop()


def test_425_window_is_retried_with_the_same_bytes(settings):
    sim = simulator()
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 2)
    decisions = [copy_decision(f.address, 0, tag="425") for f in followers]
    intents = {d["intent_id"] for d in decisions}
    results = Results(s)
    with ServiceThread(s, followers, backoff_s=0.5):
        # the restart window opens once the executor consumes, so its first POST meets it however slow the start
        wait_until(lambda: group_partitions(s, f"{s.app_id}-execute") == [set(range(4))], 60, "the executor's group")
        set_faults(sim, restart_seconds=2.5)
        produce_decisions(s, decisions)
        latest = results.wait(all_terminal(intents))
    orders = orders_by_intent(sim, intents)
    rows = ledger_rows(s, intents)
    for intent in intents:
        assert latest[intent]["status"] == "FILLED" and len(orders[intent]) == 1
        assert rows[intent][3] >= 2 and latest[intent]["attempts"] == rows[intent][3]  # refused, then the same order
        assert orders[intent][0]["order_id"] == rows[intent][2]
    results.close()
    sim.stop()


def test_killed_fok_with_a_hidden_partial_fill_reports_the_fill(settings):
    sim = simulator(hidden_fill_rate=1.0)
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 2)
    decisions = [copy_decision(f.address, 0, tag="fok", order_type="FOK") for f in followers]
    intents = {d["intent_id"] for d in decisions}
    results = Results(s)
    produce_decisions(s, decisions)
    with ServiceThread(s, followers):
        latest = results.wait(all_terminal(intents))
    orders = orders_by_intent(sim, intents)
    for intent in intents:
        venue = orders[intent][0]
        assert 0 < venue["size_matched_e6"] < 10_000_000  # the venue did fill part of a "killed" order
        assert latest[intent]["status"] == "PARTIAL"
        assert latest[intent]["filled_shares_e6"] == venue["size_matched_e6"]
    results.close()
    sim.stop()


def test_chain_fill_settles_an_unknown_order_the_venue_never_answered_for(settings):
    sim = simulator(error_rate=1.0)  # every POST: 5xx before processing
    emitters = deploy_emitters(settings.eth_rpc_url)
    s = paper_settings(private_settings(settings, exchanges=emitters.v2), sim)
    followers = make_followers(s, 1)
    d = copy_decision(followers[0].address, 0, tag="chain")
    results = Results(s)
    produce_decisions(s, [d])
    with ServiceThread(s, followers, resend_unknown=0, reconcile=False):
        results.wait(lambda latest: latest.get(d["intent_id"], {}).get("status") == "UNKNOWN")
    order_hash = ledger_rows(s, {d["intent_id"]})[d["intent_id"]][2]
    # the order reached the chain anyway (a fill the venue's API never showed us): 4 of 10 shares
    emit_v2(
        s.eth_rpc_url,
        emitters.v2,
        V2Fill(
            order_hash,
            maker=followers[0].address,
            taker=None,
            side=0,
            token_id=int(TOKEN),
            maker_amount_filled=2_000_000,
            taker_amount_filled=4_000_000,
        ),
    )
    set_faults(sim, error_rate=0.0)
    with ServiceThread(s.model_copy(update={"app_id": s.app_id + "-rec"}), followers):
        latest = results.wait(all_terminal({d["intent_id"]}))
    result = latest[d["intent_id"]]
    assert result["status"] == "PARTIAL" and result["filled_shares_e6"] == 4_000_000
    assert result["filled_collateral_e6"] == 2_000_000 and result["avg_price"] == "0.5"
    assert venue_orders(sim) == []  # evidence found: the stored order was not sent again
    results.close()
    sim.stop()


def test_expired_order_without_any_trace_settles_not_filled_and_is_never_sent_late(settings):
    sim = simulator(error_rate=1.0)
    # absence proves NOT_FILLED only once a POST started before the expiry cannot be in flight any more:
    # expiry + venue timeout (1 s here) + lease (3 s) + 1 s
    s = paper_settings(private_settings(settings, venue_timeout_s=1.0), sim)
    followers = make_followers(s, 1)
    expires_at_us = time.time_ns() // 1000 + 8_000_000  # long enough for a first POST after the executor starts
    d = copy_decision(followers[0].address, 0, tag="expire", expires_at_us=expires_at_us)
    results = Results(s)
    produce_decisions(s, [d])
    with ServiceThread(s, followers, resend_unknown=0, reconcile=False):
        results.wait(lambda latest: latest.get(d["intent_id"], {}).get("status") == "UNKNOWN")
    time.sleep(max(0.0, (expires_at_us - time.time_ns() // 1000) / 1e6 + 0.5))
    set_faults(sim, error_rate=0.0)
    with ServiceThread(s.model_copy(update={"app_id": s.app_id + "-rec"}), followers):
        latest = results.wait(all_terminal({d["intent_id"]}))
    result = latest[d["intent_id"]]
    assert result["status"] == "NOT_FILLED" and "no order, no trade, no chain fill" in result["error"]
    assert venue_orders(sim) == []
    results.close()
    sim.stop()


def test_one_follower_in_order_while_others_run_concurrently(settings):
    sim = simulator(latency_ms=300)
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 21)
    serial = followers[0]
    mine = [copy_decision(serial.address, n, tag="order") for n in range(5)]
    others = [copy_decision(f.address, 0, tag="order") for f in followers[1:]]
    intents = {d["intent_id"] for d in mine + others}
    results = Results(s)
    produce_decisions(s, mine[:2] + others + mine[2:])
    started = time.monotonic()
    with ServiceThread(s, followers):
        results.wait(all_terminal(intents))
    orders = orders_by_intent(sim, intents)
    created = [orders[d["intent_id"]][0]["created_ms"] for d in mine]
    assert created == sorted(created) and all(b - a >= 250 for a, b in zip(created, created[1:]))  # one at a time
    other_created = sorted(orders[d["intent_id"]][0]["created_ms"] for d in others)
    assert other_created[-1] - other_created[0] < 1000  # 20 followers at 300 ms each: side by side, not in a row
    assert time.monotonic() - started < 30
    results.close()
    sim.stop()
