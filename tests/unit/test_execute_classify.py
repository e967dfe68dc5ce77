"""Venue replies and lookups -> outcomes: definitive answers, ambiguity as UNKNOWN, never a guess."""
from __future__ import annotations

import pytest

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
    trade = {"taker_order_id": HASH, "size": "4", "price": "0.5", "status": "CONFIRMED", "fee_rate_bps": "0"}
    out = settle_from_evidence(HASH, FOK_BUY, venue_order=None, trades=[trade], chain_fills=[], expired=False)
    assert (out.status, out.filled_shares_e6, out.filled_collateral_e6) == ("PARTIAL", 4_000_000, 2_000_000)
    failed = {**trade, "status": "TRADE_STATUS_FAILED"}
    assert settle_from_evidence(HASH, FOK_BUY, venue_order=None, trades=[failed], chain_fills=[],
                                expired=False) is None  # a failed trade is no fill, and absence is not proven
    chain = settle_from_evidence(HASH, FOK_BUY, venue_order=None, trades=[trade],
                                 chain_fills=[ChainFill(10_000_000, 5_000_000, 1000)], expired=False)
    assert chain.status == "FILLED" and chain.fee_e6 == 1000 and "chain" in chain.evidence
    maker = {"taker_order_id": "0x" + "cd" * 32, "status": "CONFIRMED",
             "maker_orders": [{"order_id": HASH.upper().replace("0X", "0x"), "matched_amount": "10", "price": "0.5",
                               "fee_rate_bps": "0"}]}
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


# ---------------------------------------------------------------------------- D11: nothing final too early
MATCHED_10 = {"status": "MATCHED", "size_matched": "10", "price": "0.5", "associate_trades": ["t1"]}


def taker_trade(status, size="10", price="0.5", fee_rate_bps="0", **extra):
    return {"id": "t1", "taker_order_id": HASH, "size": size, "price": price, "status": status,
            "fee_rate_bps": fee_rate_bps, "maker_orders": [], **extra}


def maker_trade(status, matched="10", price="0.5", fee_rate_bps="0"):
    return {"id": "t2", "taker_order_id": "0x" + "cd" * 32, "size": matched, "price": price, "status": status,
            "fee_rate_bps": "100", "maker_orders": [{"order_id": HASH, "matched_amount": matched, "price": price,
                                                    "fee_rate_bps": fee_rate_bps}]}


def settle(venue_order=None, trades=(), chain=(), shape=FOK_BUY, expired=False):
    return settle_from_evidence(HASH, shape, venue_order=venue_order, trades=list(trades), chain_fills=list(chain),
                                expired=expired)


def test_an_unreadable_or_missing_size_matched_is_unknown_never_zero():
    for size in ("1,000", "", None, "abc", "-1", "NaN"):
        assert settle({"status": "MATCHED", "size_matched": size, "price": "0.5"}) is None, size
        assert settle({"status": "MATCHED", "size_matched": size, "price": "0.5"}, expired=True) is None, size
    assert settle({"status": "MATCHED", "price": "0.5"}) is None  # no size_matched at all
    # a venue saying MATCHED with nothing matched and no failed trade to explain it contradicts itself
    assert settle({"status": "MATCHED", "size_matched": "0", "price": "0.5"}) is None
    # an unreadable size of a dead order: the order may hide a fill
    assert settle({"status": "CANCELED", "size_matched": "1,000", "price": "0.5"}) is None


def test_garbage_in_a_trade_is_unknown_not_a_crash():
    for bad in ({"size": "1,000"}, {"price": "abc"}, {"size": None}, {"fee_rate_bps": "x"}):
        assert settle(MATCHED_10, [taker_trade("CONFIRMED") | bad]) is None, bad


@pytest.mark.parametrize("status", ["MATCHED", "MINED", "RETRYING", "TRADE_STATUS_MINED", "MATCHED_NOT_BROADCASTED",
                                    "", "SOMETHING_NEW"])
def test_trades_in_flight_never_settle_a_row(status):
    for trades in ([taker_trade(status)], [maker_trade(status)]):
        for expired in (False, True):
            out = settle(MATCHED_10, trades, expired=expired)
            assert out is not None and not out.terminal and out.status == "SUBMITTED", (status, trades, out)
            assert out.venue_status == "in-flight" and out.filled_shares_e6 == 0
            alone = settle(None, trades, expired=expired)
            assert alone is not None and not alone.terminal and alone.venue_status == "in-flight"


def test_confirmed_trades_settle_and_a_mix_waits_for_the_rest():
    done = settle(MATCHED_10, [taker_trade("TRADE_STATUS_CONFIRMED")])
    assert (done.status, done.filled_shares_e6, done.filled_collateral_e6) == ("FILLED", 10_000_000, 5_000_000)
    half = [taker_trade("CONFIRMED", size="4"), taker_trade("MINED", size="6") | {"id": "t3"}]
    waiting = settle(MATCHED_10, half)
    assert waiting.status == "SUBMITTED" and waiting.filled_shares_e6 == 4_000_000 and not waiting.terminal


def test_failed_trades_are_no_fill():
    failed = [taker_trade("FAILED")]
    # the venue kept (or lowered) size_matched: the failed trade explains it, the order never filled
    for record in (MATCHED_10, {**MATCHED_10, "size_matched": "0"}):
        out = settle(record, failed)
        assert out.status == "NOT_FILLED" and out.filled_shares_e6 == 0 and out.terminal, record
    partly = settle(MATCHED_10, [taker_trade("CONFIRMED", size="4"), taker_trade("FAILED", size="6") | {"id": "t3"}])
    assert (partly.status, partly.filled_shares_e6) == ("PARTIAL", 4_000_000)


def test_the_order_record_alone_is_not_final():
    # the venue counts matched-but-unsettled shares in size_matched: without its trades it is in flight
    out = settle(MATCHED_10)
    assert out.status == "SUBMITTED" and out.venue_status == "in-flight" and out.filled_shares_e6 == 0
    # more matched than the visible trades explain: a trade we cannot see yet
    hidden = settle({**MATCHED_10, "size_matched": "10"}, [taker_trade("CONFIRMED", size="4")])
    assert hidden.status == "SUBMITTED" and hidden.filled_shares_e6 == 4_000_000
    # chain logs are authoritative as before
    chain = settle(MATCHED_10, chain=[ChainFill(10_000_000, 5_000_000, 50_000)])
    assert (chain.status, chain.fee_e6) == ("FILLED", 50_000)


# ---------------------------------------------------------------------------- D8: fees from the trades
def test_the_fee_of_each_trade_comes_from_its_fee_rate_and_amounts():
    # fee_rate_bps is the effective rate at the trade's price: fee = shares x bps / 10^4, rounded to 5 dp
    out = settle(MATCHED_10, [taker_trade("CONFIRMED", fee_rate_bps="200")])
    assert out.status == "FILLED" and out.fee_e6 == 200_000  # 10 x 0.02
    two = [taker_trade("CONFIRMED", size="4", fee_rate_bps="49.98"),
           taker_trade("CONFIRMED", size="6", price="0.52", fee_rate_bps="49.92") | {"id": "t3"}]
    out = settle({**MATCHED_10, "associate_trades": ["t1", "t3"]}, two)
    assert out.fee_e6 == 19_990 + 29_950  # 4 x 0.004998 = 0.019992 -> 0.01999; 6 x 0.004992 = 0.029952 -> 0.02995
    assert out.filled_collateral_e6 == 2_000_000 + 3_120_000
    tiny = settle(MATCHED_10, [taker_trade("CONFIRMED", size="10", fee_rate_bps="0.004")])
    assert tiny.fee_e6 == 0  # 0.000004 rounds to 0 at 5 dp
    # a maker pays its own entry's rate: 0 when the market charges takers only
    maker = settle(MATCHED_10, [maker_trade("CONFIRMED")])
    assert maker.status == "FILLED" and maker.fee_e6 == 0
    paying_maker = settle(MATCHED_10, [maker_trade("CONFIRMED", fee_rate_bps="50")])
    assert paying_maker.fee_e6 == 50_000
    sell = settle({**MATCHED_10, "side": "SELL"}, [taker_trade("CONFIRMED", fee_rate_bps="50")], shape=GTC_SELL)
    # a SELL's fee is reported the same way; the proceeds are filled_collateral_e6 - fee_e6
    assert (sell.status, sell.filled_collateral_e6, sell.fee_e6) == ("FILLED", 5_000_000, 50_000)
