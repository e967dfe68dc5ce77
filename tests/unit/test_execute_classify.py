"""Venue replies and lookups -> outcomes: definitive answers, ambiguity as UNKNOWN, never a guess."""
from __future__ import annotations

from horus.codec import default_codec
from horus.domain import ids
from horus.domain.execute import (ChainFill, OrderShape, classify_reply, decision_timestamp_ms, expires_at_us,
                                  result_record, settle_from_evidence)

FOK_BUY = OrderShape("BUY", "FOK", maker_amount=5_000_000, taker_amount=10_000_000)  # 10 shares at 0.5
GTC_SELL = OrderShape("SELL", "GTC", maker_amount=10_000_000, taker_amount=5_000_000)
HASH = "0x" + "ab" * 32


def ok(status, making="", taking=""):
    return {"success": True, "errorMsg": "", "orderID": HASH, "status": status, "makingAmount": making,
            "takingAmount": taking}


def test_definitive_replies():
    filled = classify_reply(200, ok("matched", "5", "10"), None, False, FOK_BUY)
    assert (filled.status, filled.filled_shares_e6, filled.filled_collateral_e6) == ("FILLED", 10_000_000, 5_000_000)
    fak = OrderShape("BUY", "FAK", 5_000_000, 10_000_000)
    partial = classify_reply(200, ok("matched", "2.5", "5"), None, False, fak)
    assert partial.status == "PARTIAL" and partial.filled_shares_e6 == 5_000_000
    resting = classify_reply(200, ok("live"), None, False, GTC_SELL)
    assert resting.status == "SUBMITTED" and resting.venue_status == "live" and not resting.terminal
    sold = classify_reply(200, ok("matched", "10", "5"), None, False, GTC_SELL)
    assert (sold.filled_shares_e6, sold.filled_collateral_e6) == (10_000_000, 5_000_000)
    rejected = classify_reply(400, {"error": "not enough balance / allowance"}, "not enough balance / allowance",
                              False, FOK_BUY)
    assert rejected.status == "REJECTED" and "balance" in rejected.error and not rejected.retry


def test_ambiguous_replies_are_unknown_and_425_429_retry():
    for code, body, transport in ((None, None, True), (502, None, False), (500, {"error": "boom"}, False)):
        outcome = classify_reply(code, body, "timeout", transport, FOK_BUY)
        assert outcome.status == "UNKNOWN" and not outcome.retry and not outcome.terminal
    for code in (425, 429):
        outcome = classify_reply(code, {"error": "restarting"}, "restarting", False, FOK_BUY)
        assert outcome.status == "UNKNOWN" and outcome.retry
    post_only = classify_reply(400, {"error": "post-only mode: only post-only orders and cancels are allowed"},
                               None, False, FOK_BUY)
    assert post_only.retry


def test_duplicate_and_killed_replies_need_a_lookup():
    dup = classify_reply(400, {"error": f"order {HASH} is invalid. Duplicated. Same order has already been placed, "
                                        "can't be placed again"}, None, False, FOK_BUY)
    assert dup.status == "UNKNOWN" and dup.confirm
    killed = classify_reply(400, {"error": "order couldn't be fully filled. FOK orders are fully filled or killed."},
                            None, False, FOK_BUY)
    assert killed.status == "NOT_FILLED" and killed.confirm
    unmatched = classify_reply(200, ok("unmatched"), None, False, FOK_BUY)
    assert unmatched.confirm


def test_evidence_settles_by_the_largest_source_and_never_guesses_absence():
    trade = {"taker_order_id": HASH, "size": "4", "price": "0.5", "status": "CONFIRMED"}
    out = settle_from_evidence(HASH, FOK_BUY, venue_order=None, trades=[trade], chain_fills=[], expired=False)
    assert (out.status, out.filled_shares_e6, out.filled_collateral_e6) == ("PARTIAL", 4_000_000, 2_000_000)
    failed = {**trade, "status": "TRADE_STATUS_FAILED"}
    assert settle_from_evidence(HASH, FOK_BUY, venue_order=None, trades=[failed], chain_fills=[],
                                expired=False) is None  # a failed trade is no fill, and absence is not proven
    chain = settle_from_evidence(HASH, FOK_BUY, venue_order=None, trades=[trade],
                                 chain_fills=[ChainFill(10_000_000, 5_000_000, 1000)], expired=False)
    assert chain.status == "FILLED" and chain.fee_e6 == 1000 and "chain" in chain.evidence
    maker = {"taker_order_id": "0x" + "cd" * 32, "status": "MATCHED",
             "maker_orders": [{"order_id": HASH.upper().replace("0X", "0x"), "matched_amount": "10", "price": "0.5"}]}
    assert settle_from_evidence(HASH, FOK_BUY, venue_order=None, trades=[maker], chain_fills=[],
                                expired=False).status == "FILLED"
    canceled = {"status": "CANCELED", "size_matched": "0", "price": "0.5"}
    assert settle_from_evidence(HASH, FOK_BUY, venue_order=canceled, trades=[], chain_fills=[],
                                expired=False).status == "NOT_FILLED"
    live = {"status": "LIVE", "size_matched": "3", "price": "0.5"}
    assert settle_from_evidence(HASH, GTC_SELL, venue_order=live, trades=[], chain_fills=[],
                                expired=False).status == "SUBMITTED"
    # nothing anywhere: unknown until the expiry passed, then provably never fillable
    assert settle_from_evidence(HASH, FOK_BUY, venue_order=None, trades=[], chain_fills=[], expired=False) is None
    gone = settle_from_evidence(HASH, FOK_BUY, venue_order=None, trades=[], chain_fills=[], expired=True)
    assert gone.status == "NOT_FILLED" and "no order, no trade, no chain fill" in gone.error
    removed = settle_from_evidence(HASH, FOK_BUY, venue_order=None, trades=[],
                                   chain_fills=[ChainFill(10_000_000, 5_000_000, removed=True)], expired=False)
    assert removed is None  # a log removed by a reorg is no fill


def test_result_records_are_deterministic_and_encode():
    record = result_record(intent_id="i1", follow_id="f", follower="0x" + "11" * 20, leader_fill_id="lf",
                           decision_id="d1", occurred_at_us=5, status="SUBMITTED", seq=2, now_us=9,
                           order_hash=HASH, filled_shares_e6=3_000_000, filled_collateral_e6=1_530_000)
    assert record["envelope"]["event_id"] == ids.result_id("i1", 2) and record["avg_price"] == "0.51"
    default_codec().encode("ExecutionResult", record)  # SUBMITTED is in the schema
    decision = {"envelope": {"produced_at_us": 1_700_000_000_123_456, "occurred_at_us": 1}, "expires_at_us": None}
    assert decision_timestamp_ms(decision) == 1_700_000_000_123
    assert expires_at_us(decision, 60) == 1_700_000_060_123_000
    assert expires_at_us({**decision, "expires_at_us": 42}, 60) == 42
