"""The executor's safety rules, each against the real ledger, broker and CLOB simulator (safety review D2, D4, D7,
D10 and the hostile-input findings):

- nothing is POSTed at or after an intent's expiry, first attempt included (D2);
- the kill switch, pauses and follow/follower disables are honoured immediately before every POST, fresh or
  re-send, and unsent COPYs end terminal with the reason (D4);
- one bad COPY decision never stalls the executor: it is parked with its bytes and the follower's later orders
  still go out (D10, the NUL-byte / out-of-range timestamp / intent-conflict wedges).
"""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import psycopg
import pytest

from horus.codec import default_codec
from horus.db.engine import psycopg_conninfo
from horus.domain import ids
from horus.kafka.client import assign_from_beginning, make_consumer, poll_batch
from horus.topics import DEAD_LETTERS
from tests.integration.execute_helpers import (
    NO_TOKEN,
    TOKEN,
    Results,
    ServiceThread,
    all_terminal,
    copy_decision,
    make_followers,
    orders_by_intent,
    paper_settings,
    private_settings,
    produce_decisions,
    publish_control,
    publish_follow,
    publish_follower,
    set_faults,
    simulator,
    start_subprocess,
    venue_orders,
)

pytestmark = pytest.mark.integration


def now_us() -> int:
    return time.time_ns() // 1000


def ledger_row(settings, intent: str) -> dict | None:
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        cur = conn.execute(
            "SELECT status, attempts, last_error, order_hash FROM copy_trades WHERE idempotency_key = %s", (intent,)
        )
        row = cur.fetchone()
    return None if row is None else dict(zip(("status", "attempts", "last_error", "order_hash"), row))


def dead_letters(settings, stage: str = "execute") -> list[dict]:
    consumer = make_consumer(settings)
    assign_from_beginning(consumer, [settings.topic(DEAD_LETTERS.name)])
    codec = default_codec()
    out = []
    try:
        for m in poll_batch(consumer, 10_000, 3.0):
            record = codec.decode(m.value())[1]
            if record["stage"] == stage:
                out.append(record)
    finally:
        consumer.close()
    return out


# ----------------------------------------------------------------------------------------------- D2
def test_an_expired_copy_is_never_posted_and_settles_not_filled_expired(settings):
    sim = simulator()
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 1)
    late = copy_decision(followers[0].address, 0, tag="late", expires_at_us=now_us() - 1_000_000)
    fresh = copy_decision(followers[0].address, 1, tag="late")
    results = Results(s)
    produce_decisions(s, [late, fresh])
    with ServiceThread(s, followers):
        latest = results.wait(all_terminal({late["intent_id"], fresh["intent_id"]}))
    assert latest[late["intent_id"]]["status"] == "NOT_FILLED"
    assert latest[late["intent_id"]]["error"].startswith("EXPIRED")
    assert latest[fresh["intent_id"]]["status"] == "FILLED"
    orders = orders_by_intent(sim, {late["intent_id"], fresh["intent_id"]})
    assert orders[late["intent_id"]] == [] and len(orders[fresh["intent_id"]]) == 1
    assert ledger_row(s, late["intent_id"])["attempts"] == 0
    results.close()
    sim.stop()


# ----------------------------------------------------------------------------------------------- D4
def test_a_kill_switch_on_before_the_executor_starts_stops_every_post(settings):
    sim = simulator()
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 3)
    decisions = [copy_decision(f.address, n, tag="kill") for f in followers for n in range(3)]
    intents = {d["intent_id"] for d in decisions}
    publish_control(s, "GLOBAL", "KILL", reason="runaway leader")
    results = Results(s)
    produce_decisions(s, decisions)
    with ServiceThread(s, followers):
        latest = results.wait(all_terminal(intents))
    assert venue_orders(sim) == []
    assert {r["status"] for r in latest.values()} == {"NOT_FILLED"}
    assert all(r["error"].startswith("KILLED") and "runaway leader" in r["error"] for r in latest.values())
    results.close()
    sim.stop()


def test_a_kill_mid_stream_stops_the_posts_still_queued_in_a_followers_lane(settings):
    sim = simulator(latency_ms=400)
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 1)
    decisions = [copy_decision(followers[0].address, n, tag="midkill") for n in range(12)]
    intents = {d["intent_id"] for d in decisions}
    results = Results(s)
    produce_decisions(s, decisions)
    with ServiceThread(s, followers):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(venue_orders(sim)) < 2:
            time.sleep(0.02)
        publish_control(s, "GLOBAL", "KILL", reason="stop now")
        killed_at_ms = time.time() * 1000
        latest = results.wait(all_terminal(intents))
    orders = venue_orders(sim)
    # one follower's orders go out one at a time, 400 ms each: at most the one in flight arrives after the kill
    assert 2 <= len(orders) <= 4, len(orders)
    assert len([o for o in orders if o["received_us"] / 1000 > killed_at_ms + 250]) == 0
    killed = [r for r in latest.values() if r["status"] == "NOT_FILLED" and r["error"].startswith("KILLED")]
    assert len(killed) == len(intents) - len(orders)
    results.close()
    sim.stop()


def test_pauses_and_disables_stop_posts_for_their_scope_only(settings):
    sim = simulator()
    s = paper_settings(private_settings(settings), sim)
    paused_follower, disabled_follower, follow_off, follow_gone, free = make_followers(s, 5)
    publish_control(s, "FOLLOWER", "PAUSE", paused_follower.address, reason="under review")
    publish_control(s, "MARKET", "PAUSE", NO_TOKEN, reason="resolution dispute")
    publish_follower(s, disabled_follower, enabled=False)
    off = copy_decision(follow_off.address, 0, tag="scope")
    publish_follow(s, off["follow_id"], follow_off.address, enabled=False)
    gone = copy_decision(follow_gone.address, 0, tag="scope")
    publish_follow(s, gone["follow_id"], follow_gone.address)
    publish_follow(s, gone["follow_id"], follow_gone.address, delete=True)
    decisions = {
        "PAUSED_FOLLOWER": copy_decision(paused_follower.address, 0, tag="scope"),
        "FOLLOWER_DISABLED": copy_decision(disabled_follower.address, 0, tag="scope"),
        "FOLLOW_DISABLED": off,
        "FOLLOW_DELETED": gone,
        "PAUSED_MARKET": copy_decision(free.address, 0, tag="scope", token=NO_TOKEN),
        "free": copy_decision(free.address, 1, tag="scope"),
    }
    intents = {d["intent_id"] for d in decisions.values()}
    results = Results(s)
    produce_decisions(s, list(decisions.values()))
    with ServiceThread(s, [paused_follower, disabled_follower, follow_off, follow_gone, free]):
        latest = results.wait(all_terminal(intents))
    orders = orders_by_intent(sim, intents)
    for why, d in decisions.items():
        result = latest[d["intent_id"]]
        if why == "free":
            assert result["status"] == "FILLED" and len(orders[d["intent_id"]]) == 1
        else:
            assert orders[d["intent_id"]] == [], why
            assert result["status"] == "NOT_FILLED" and result["error"].startswith(f"PAUSED: {why}"), (why, result)
    results.close()
    sim.stop()


def test_the_reconciler_does_not_resend_an_unknown_order_after_the_kill_switch(settings):
    sim = simulator(error_rate=1.0)  # every POST answers 5xx before the venue processed it
    s = paper_settings(private_settings(settings, venue_timeout_s=1.0), sim)
    followers = make_followers(s, 1)
    d = copy_decision(followers[0].address, 0, tag="nokillresend", expires_at_us=now_us() + 6_000_000)
    results = Results(s)
    produce_decisions(s, [d])
    with ServiceThread(s, followers, resend_unknown=0, reconcile=False):
        results.wait(lambda latest: latest.get(d["intent_id"], {}).get("status") == "UNKNOWN")
    publish_control(s, "GLOBAL", "KILL", reason="halt")
    set_faults(sim, error_rate=0.0)  # a re-send would now be accepted and fill
    with ServiceThread(s.model_copy(update={"app_id": s.app_id + "-rec"}), followers):
        latest = results.wait(all_terminal({d["intent_id"]}), timeout=60)
    assert venue_orders(sim) == []
    assert latest[d["intent_id"]]["status"] == "NOT_FILLED"
    results.close()
    sim.stop()


# ----------------------------------------------------------------------------------------------- D10
def test_bad_copy_decisions_are_parked_and_the_followers_later_orders_still_go_out(settings):
    sim = simulator()
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 1)
    who = followers[0].address
    bad_price = {**copy_decision(who, 0, tag="poison"), "worst_price": "abc"}
    nul_byte = {**copy_decision(who, 1, tag="poison"), "token_id": TOKEN + "\x00"}
    far_expiry = copy_decision(who, 2, tag="poison", expires_at_us=2**62)
    negative = {**copy_decision(who, 3, tag="poison"), "size_e6": -5}
    price_above_one = {**copy_decision(who, 4, tag="poison"), "worst_price": "1.5"}
    first = copy_decision(who, 5, tag="poison")
    # a new intent id for a (follow, leader fill) that already has a row: the insert does nothing
    conflict = {**first, "intent_id": ids.intent_id(first["follow_id"], "another-fill")}
    after = copy_decision(who, 6, tag="poison")
    poison = [bad_price, nul_byte, far_expiry, negative, price_above_one]
    results = Results(s)
    produce_decisions(s, [first])
    with ServiceThread(s, followers):
        results.wait(all_terminal({first["intent_id"]}))
        produce_decisions(s, poison + [conflict, after])
        latest = results.wait(all_terminal({after["intent_id"]}), timeout=60)
    assert latest[after["intent_id"]]["status"] == "FILLED"
    parked = dead_letters(s)
    assert len(parked) >= len(poison) + 1, [p["error"] for p in parked]
    assert all(p["original"] for p in parked)
    orders = orders_by_intent(sim, {d["intent_id"] for d in poison + [conflict, first, after]})
    assert all(orders[d["intent_id"]] == [] for d in poison + [conflict])
    results.close()
    sim.stop()


# ----------------------------------------------------------------------------------------------- D7
def insert_unsettleable_rows(settings, follower: str, n: int) -> None:
    """`n` UNKNOWN rows of `follower` an hour old whose account cannot be resolved (no credentials anywhere):
    rows the reconciler looks at every round without progress (the old ledger's columns only)."""
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        conn.execute(
            "INSERT INTO copy_trades (idempotency_key, follow_id, leader_fill_id, follower, token_id, side, status, "
            "order_hash, size_e6, expires_at, created_at, updated_at) "
            "SELECT 'stale-' || i, 'stale-follow', 'stale-fill-' || i, %s, %s, 'BUY', 'UNKNOWN', "
            "'0x' || lpad(to_hex(i), 64, '0'), 1000000, now() + interval '1 day', now() - interval '1 hour', "
            "now() - interval '1 hour' FROM generate_series(1, %s) AS i",
            (follower, TOKEN, n),
        )


def reconcile_rounds(settings, accounts, rounds: int) -> None:
    import asyncio

    from horus.credentials import CredentialStore
    from horus.execution.service import ExecuteService

    for _ in range(rounds):
        service = ExecuteService(settings, follower_account=accounts, secrets=CredentialStore(settings).get)
        asyncio.run(service.reconcile_only(asyncio.Event(), once=True))


def test_unsettleable_rows_never_starve_the_others_and_a_disabled_followers_fill_is_recorded(settings):
    import uuid

    from horus.db.engine import scratch_database

    sim = simulator(reply_lost_rate=1.0)  # every order processed, its reply lost: UNKNOWN until looked up
    # a database of its own: 501 rows stuck for an hour would be everyone's alert
    with scratch_database(settings, f"horus_fair_{uuid.uuid4().hex[:8]}") as own:
        s = paper_settings(private_settings(own), sim)
        active, disabled, ghost = make_followers(s, 3)
        insert_unsettleable_rows(s, ghost.address, 501)  # more than one round takes, and due before the others
        mine = copy_decision(active.address, 0, tag="fair")
        theirs = copy_decision(disabled.address, 0, tag="fair")
        results = Results(s)
        produce_decisions(s, [mine, theirs])
        with ServiceThread(s, [active, disabled], resend_unknown=0, reconcile=False):
            results.wait(
                lambda latest: all(latest.get(d["intent_id"], {}).get("status") == "UNKNOWN" for d in (mine, theirs))
            )
        configs = {active.address: active.config(), disabled.address: disabled.config(enabled=False)}
        reconcile_rounds(s, configs.get, 3)
        assert ledger_row(s, mine["intent_id"])["status"] == "FILLED"  # not starved behind 501 hopeless rows
        assert ledger_row(s, theirs["intent_id"])["status"] == "FILLED"  # looked up though its follower is disabled
        assert len(venue_orders(sim)) == 2  # settled by lookups, nothing re-sent
        results.close()
    sim.stop()


# ----------------------------------------------------------------------------------------------- crash points
@pytest.mark.parametrize("step", ["after_prewrite_commit", "after_post_sent", "after_reply", "after_ledger_commit"])
def test_an_executor_killed_at_each_named_step_leaves_one_order_per_copy_and_every_result(settings, tmp_path, step):
    sim = simulator(latency_ms=50)
    s = paper_settings(private_settings(settings, venue_timeout_s=2.0), sim)
    followers = make_followers(s, 4)
    decisions = [copy_decision(f.address, n, tag=f"crash-{step}") for f in followers for n in range(3)]
    intents = {d["intent_id"] for d in decisions}
    results = Results(s)
    produce_decisions(s, decisions)
    # the second time, so some work is done first; but a batch's prewrite may be the only one: the first time
    nth = 1 if step == "after_prewrite_commit" else 2
    child = start_subprocess(s, followers, tmp_path / "crashing.log", env={"HORUS_CRASH_AT": f"{step}:{nth}"})
    assert child.wait(90) == -9, (tmp_path / "crashing.log").read_text()[-3000:]
    assert f"crash point {step} reached" in (tmp_path / "crashing.log").read_text()
    child = start_subprocess(s, followers, tmp_path / "after.log")
    try:
        latest = results.wait(all_terminal(intents), timeout=120)
    finally:
        child.terminate()
        child.wait(30)
    orders = orders_by_intent(sim, intents)
    assert {i: len(o) for i, o in orders.items() if len(o) > 1} == {}  # never twice
    by_hash = {o["order_id"]: i for i, os_ in orders.items() for o in os_}
    for intent, result in latest.items():
        if intent in intents:  # what the venue matched is what the result says
            matched = sum(o["size_matched_e6"] for o in orders[intent])
            assert result["filled_shares_e6"] == matched, (intent, result, orders[intent])
    assert all(ledger_row(s, i)["order_hash"] in by_hash or not orders[i] for i in intents)
    results.close()
    sim.stop()


# ----------------------------------------------------------------------------------------------- D5, D8, D11
def test_a_resend_refused_for_balance_after_a_lost_reply_is_settled_from_the_venue_not_rejected(settings):
    import threading

    from horus.ops import paper

    # the venue checks the balance before duplicates; the first reply is lost after the order filled
    sim = simulator(balance_before_duplicate=True, reply_lost_rate=1.0)
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 1)
    paper.fund(sim.url, [(followers[0].address, Decimal("6"))])  # enough for one order of 10 x 0.55, not two
    d = copy_decision(followers[0].address, 0, tag="d5")

    def restore_replies_after_the_first_order() -> None:  # so the re-send's own answer (400) gets through
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not venue_orders(sim):
            time.sleep(0.01)
        set_faults(sim, reply_lost_rate=0.0)

    watcher = threading.Thread(target=restore_replies_after_the_first_order, daemon=True)
    watcher.start()
    results = Results(s)
    produce_decisions(s, [d])
    with ServiceThread(s, followers, resend_unknown=1, reconcile=False):
        latest = results.wait(all_terminal({d["intent_id"]}))
    [order] = venue_orders(sim)
    assert order["post_count"] == 2  # it was re-sent once, with the same bytes
    assert latest[d["intent_id"]]["status"] == "FILLED"
    assert latest[d["intent_id"]]["filled_shares_e6"] == order["size_matched_e6"] == 10_000_000
    assert ledger_row(s, d["intent_id"])["status"] == "FILLED"
    results.close()
    sim.stop()


def test_a_matched_fill_is_confirmed_from_the_trades_or_corrected_when_a_trade_fails_and_fees_are_recorded(settings):
    from horus.venue.simulator.clob import SimulatorConfig, run_simulator
    from tests.integration.execute_helpers import market_config

    # a fee-bearing market whose trades settle 1.5 s after the match, every one of them FAILED at first
    sim = run_simulator(
        SimulatorConfig(
            markets=[market_config(fee_rate=Decimal("0.05"))],
            default_collateral_e6=10**12,
            seed=7,
            faults={"trade_mined_seconds": 0.5, "trade_confirmed_seconds": 1.5, "trade_failed_rate": 1.0},
        )
    )
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 2)
    doomed = copy_decision(followers[0].address, 0, tag="confirm")
    fine = copy_decision(followers[1].address, 0, tag="confirm")
    results = Results(s)
    with ServiceThread(s, followers):
        produce_decisions(s, [doomed])
        results.wait(lambda latest: latest.get(doomed["intent_id"], {}).get("status") == "FILLED")
        set_faults(sim, trade_failed_rate=0.0)
        produce_decisions(s, [fine])
        results.wait(
            lambda latest: (
                latest.get(doomed["intent_id"], {}).get("status") == "NOT_FILLED" and fine["intent_id"] in latest
            ),
            timeout=60,
        )
        results.wait(lambda latest: latest.get(fine["intent_id"], {}).get("final") is True, timeout=30)
    orders = orders_by_intent(sim, {doomed["intent_id"], fine["intent_id"]})
    [lost], [kept] = orders[doomed["intent_id"]], orders[fine["intent_id"]]
    assert lost["size_matched_e6"] == 0 and kept["size_matched_e6"] == 10_000_000
    seen = [(r["intent_id"], r["status"]) for r in results.seen]
    assert seen.count((doomed["intent_id"], "FILLED")) == 1 and seen.count((doomed["intent_id"], "NOT_FILLED")) == 1
    # confirmed as it was: the same result again, now final (decide stops expecting a correction)
    assert [(r["status"], r["final"]) for r in results.seen if r["intent_id"] == fine["intent_id"]] == [
        ("FILLED", False),
        ("FILLED", True),
    ]
    assert final(s, fine["intent_id"]) and final(s, doomed["intent_id"])
    fee = results.latest()[fine["intent_id"]]["fee_e6"]
    trades = [t for t in httpx.get(f"{sim.url}/_sim/trades").json() if t["taker_order_id"] == kept["order_id"]]
    assert fee > 0 and fee == sum(t["_fee_e6"] for t in trades)
    results.close()
    sim.stop()


def final(settings, intent: str) -> bool:
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        return conn.execute("SELECT final FROM copy_trades WHERE idempotency_key = %s", (intent,)).fetchone()[0]


def test_an_executor_whose_clock_runs_behind_still_never_posts_after_the_expiry(settings, tmp_path):
    from horus.ops.stack.faketime import skewed_env

    sim = simulator(latency_ms=1000)  # each of the follower's orders takes a second: the third goes out at ~2 s
    s = paper_settings(private_settings(settings, venue_timeout_s=5.0), sim)
    followers = make_followers(s, 1)
    child = start_subprocess(s, followers, tmp_path / "skewed.log", env=skewed_env(-2))  # its clock 2 s behind
    results = Results(s)
    try:
        warm = copy_decision(followers[0].address, 0, tag="skew")
        produce_decisions(s, [warm])
        results.wait(all_terminal({warm["intent_id"]}), timeout=60)
        lane = [copy_decision(followers[0].address, n, tag="skew") for n in (1, 2)]
        # expired 1.5 s from now by the venue's clock, when the executor's own clock will still give it 2 s more
        late = copy_decision(followers[0].address, 3, tag="skew", expires_at_us=now_us() + 1_500_000)
        produce_decisions(s, [*lane, late])
        latest = results.wait(all_terminal({d["intent_id"] for d in [*lane, late]}), timeout=60)
    finally:
        child.terminate()
        child.wait(30)
    orders = orders_by_intent(sim, {late["intent_id"]})[late["intent_id"]]
    assert orders == [], (orders, (tmp_path / "skewed.log").read_text()[-2000:])
    assert latest[late["intent_id"]]["status"] == "NOT_FILLED"
    assert latest[late["intent_id"]]["error"].startswith("EXPIRED")
    results.close()
    sim.stop()


def test_an_executor_whose_switch_tail_died_sends_nothing_and_stops(settings):
    """The kill switch, pauses and enables are folded by tails; one that dies leaves them frozen, so a later
    `horus kill` would go unseen. The gate refuses every POST and marks the service for exit 70 instead."""
    from types import SimpleNamespace

    from horus.execution.service import ExecuteService, SwitchesUnknown

    service = ExecuteService(settings, follower_account=lambda address: None, secrets=None)
    try:
        row = SimpleNamespace(follower="0x" + "f1" * 20, follow_id="fw", condition_id=None, token_id="1")
        assert service.gate(row) is None  # tails alive (none yet), nothing switched on
        service.tails = [
            SimpleNamespace(topic="control.commands", failed=None),
            SimpleNamespace(topic="control.commands", failed=RuntimeError("broker gone")),
        ]
        with pytest.raises(SwitchesUnknown, match="no longer folded"):
            service.gate(row)
        assert isinstance(service.fatal, SwitchesUnknown)
    finally:
        service.output.close()
