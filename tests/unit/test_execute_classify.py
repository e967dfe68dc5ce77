"""Venue replies and lookups -> outcomes: definitive answers, ambiguity as UNKNOWN, never a guess."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from horus.codec import default_codec
from horus.domain import ids
from horus.domain.execute import (
    ChainFill,
    OrderShape,
    Outcome,
    avg_price,
    classify_reply,
    decision_timestamp_ms,
    execute,
    expires_at_us,
    result_record,
    settle_from_evidence,
    with_reply_fee,
)
from horus.venue.polymarket.replies import order_trades, reply_facts
from horus.venue.polymarket.replies import venue_order as venue_order_facts

FOK_BUY = OrderShape("BUY", "FOK", maker_amount=5_000_000, taker_amount=10_000_000)  # 10 shares at 0.5
GTC_SELL = OrderShape("SELL", "GTC", maker_amount=10_000_000, taker_amount=5_000_000)
HASH = "0x" + "ab" * 32


def classify(status_code, body, error, transport, shape, **options):
    """classify_reply over the venue adapter's reading of one reply (what the executor does)."""
    return classify_reply(reply_facts(status_code, body, error, transport), shape, **options)


def settle_hash(order_hash, shape, *, venue_order, trades, chain_fills, expired):
    """settle_from_evidence over the venue adapter's reading of the order record and trades of `order_hash`."""
    order = venue_order_facts(venue_order) if venue_order else None
    parts = order_trades(order_hash, trades)
    return settle_from_evidence(shape, venue_order=order, trades=parts, chain_fills=chain_fills, expired=expired)


def ok(status, making="", taking=""):
    return {
        "success": True,
        "errorMsg": "",
        "orderID": HASH,
        "status": status,
        "makingAmount": making,
        "takingAmount": taking,
    }


def test_definitive_replies():
    filled = classify(200, ok("matched", "5", "10"), None, False, FOK_BUY)
    assert (filled.status, filled.filled_shares_e6, filled.filled_collateral_e6) == ("FILLED", 10_000_000, 5_000_000)
    fak = OrderShape("BUY", "FAK", 5_000_000, 10_000_000)
    partial = classify(200, ok("matched", "2.5", "5"), None, False, fak)
    assert partial.status == "PARTIAL" and partial.filled_shares_e6 == 5_000_000
    resting = classify(200, ok("live"), None, False, GTC_SELL)
    assert resting.status == "SUBMITTED" and resting.venue_status == "live" and not resting.terminal
    sold = classify(200, ok("matched", "10", "5"), None, False, GTC_SELL)
    assert (sold.filled_shares_e6, sold.filled_collateral_e6) == (10_000_000, 5_000_000)
    rejected = classify(
        400, {"error": "not enough balance / allowance"}, "not enough balance / allowance", False, FOK_BUY
    )
    assert rejected.status == "REJECTED" and "balance" in rejected.error and not rejected.retry


def test_ambiguous_replies_are_unknown_and_425_429_retry():
    for code, body, transport in ((None, None, True), (502, None, False), (500, {"error": "boom"}, False)):
        outcome = classify(code, body, "timeout", transport, FOK_BUY)
        assert outcome.status == "UNKNOWN" and not outcome.retry and not outcome.terminal
    for code in (425, 429):
        outcome = classify(code, {"error": "restarting"}, "restarting", False, FOK_BUY)
        assert outcome.status == "UNKNOWN" and outcome.retry
    post_only = classify(
        400, {"error": "post-only mode: only post-only orders and cancels are allowed"}, None, False, FOK_BUY
    )
    assert post_only.retry


def test_duplicate_and_killed_replies_need_a_lookup():
    dup = classify(
        400,
        {"error": f"order {HASH} is invalid. Duplicated. Same order has already been placed, can't be placed again"},
        None,
        False,
        FOK_BUY,
    )
    assert dup.status == "UNKNOWN" and dup.confirm
    killed = classify(
        400, {"error": "order couldn't be fully filled. FOK orders are fully filled or killed."}, None, False, FOK_BUY
    )
    assert killed.status == "NOT_FILLED" and killed.confirm
    unmatched = classify(200, ok("unmatched"), None, False, FOK_BUY)
    assert unmatched.confirm


def test_evidence_settles_by_the_largest_source_and_never_guesses_absence():
    trade = {"taker_order_id": HASH, "size": "4", "price": "0.5", "status": "CONFIRMED", "fee_rate_bps": "0"}
    out = settle_hash(HASH, FOK_BUY, venue_order=None, trades=[trade], chain_fills=[], expired=False)
    assert (out.status, out.filled_shares_e6, out.filled_collateral_e6) == ("PARTIAL", 4_000_000, 2_000_000)
    failed = {**trade, "status": "TRADE_STATUS_FAILED"}
    assert (
        settle_hash(HASH, FOK_BUY, venue_order=None, trades=[failed], chain_fills=[], expired=False) is None
    )  # a failed trade is no fill, and absence is not proven
    chain = settle_hash(
        HASH,
        FOK_BUY,
        venue_order=None,
        trades=[trade],
        chain_fills=[ChainFill(10_000_000, 5_000_000, 1000)],
        expired=False,
    )
    assert chain.status == "FILLED" and chain.fee_e6 == 1000 and "chain" in chain.evidence
    maker = {
        "taker_order_id": "0x" + "cd" * 32,
        "status": "CONFIRMED",
        "maker_orders": [
            {"order_id": HASH.upper().replace("0X", "0x"), "matched_amount": "10", "price": "0.5", "fee_rate_bps": "0"}
        ],
    }
    assert (
        settle_hash(HASH, FOK_BUY, venue_order=None, trades=[maker], chain_fills=[], expired=False).status == "FILLED"
    )
    canceled = {"status": "CANCELED", "size_matched": "0", "price": "0.5"}
    assert (
        settle_hash(HASH, FOK_BUY, venue_order=canceled, trades=[], chain_fills=[], expired=False).status
        == "NOT_FILLED"
    )
    live = {"status": "LIVE", "size_matched": "3", "price": "0.5"}
    assert settle_hash(HASH, GTC_SELL, venue_order=live, trades=[], chain_fills=[], expired=False).status == "SUBMITTED"
    # nothing anywhere: unknown until the expiry passed, then provably never fillable
    assert settle_hash(HASH, FOK_BUY, venue_order=None, trades=[], chain_fills=[], expired=False) is None
    gone = settle_hash(HASH, FOK_BUY, venue_order=None, trades=[], chain_fills=[], expired=True)
    assert gone.status == "NOT_FILLED" and "no order, no trade, no chain fill" in gone.error
    removed = settle_hash(
        HASH,
        FOK_BUY,
        venue_order=None,
        trades=[],
        chain_fills=[ChainFill(10_000_000, 5_000_000, removed=True)],
        expired=False,
    )
    assert removed is None  # a log removed by a reorg is no fill


def test_result_records_are_deterministic_and_encode():
    record = result_record(
        intent_id="i1",
        follow_id="f",
        follower="0x" + "11" * 20,
        leader_fill_id="lf",
        decision_id="d1",
        occurred_at_us=5,
        status="SUBMITTED",
        seq=2,
        now_us=9,
        order_hash=HASH,
        filled_shares_e6=3_000_000,
        filled_collateral_e6=1_530_000,
    )
    assert record["envelope"]["event_id"] == ids.result_id("i1", 2) and record["avg_price"] == "0.51"
    default_codec().encode("ExecutionResult", record)  # SUBMITTED is in the schema
    decision = {"envelope": {"produced_at_us": 1_700_000_000_123_456, "occurred_at_us": 1}, "expires_at_us": None}
    assert decision_timestamp_ms(decision) == 1_700_000_000_123
    assert expires_at_us(decision, 60) == 1_700_000_060_123_000
    assert expires_at_us({**decision, "expires_at_us": 42}, 60) == 42


# ---------------------------------------------------------------------------- D11: nothing final too early
MATCHED_10 = {"status": "MATCHED", "size_matched": "10", "price": "0.5", "associate_trades": ["t1"]}


def taker_trade(status, size="10", price="0.5", fee_rate_bps="0", **extra):
    return {
        "id": "t1",
        "taker_order_id": HASH,
        "size": size,
        "price": price,
        "status": status,
        "fee_rate_bps": fee_rate_bps,
        "maker_orders": [],
        **extra,
    }


def maker_trade(status, matched="10", price="0.5", fee_rate_bps="0"):
    return {
        "id": "t2",
        "taker_order_id": "0x" + "cd" * 32,
        "size": matched,
        "price": price,
        "status": status,
        "fee_rate_bps": "100",
        "maker_orders": [{"order_id": HASH, "matched_amount": matched, "price": price, "fee_rate_bps": fee_rate_bps}],
    }


def settle(venue_order=None, trades=(), chain=(), shape=FOK_BUY, expired=False):
    return settle_hash(
        HASH, shape, venue_order=venue_order, trades=list(trades), chain_fills=list(chain), expired=expired
    )


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


@pytest.mark.parametrize(
    "status", ["MATCHED", "MINED", "RETRYING", "TRADE_STATUS_MINED", "MATCHED_NOT_BROADCASTED", "", "SOMETHING_NEW"]
)
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
    two = [
        taker_trade("CONFIRMED", size="4", fee_rate_bps="49.98"),
        taker_trade("CONFIRMED", size="6", price="0.52", fee_rate_bps="49.92") | {"id": "t3"},
    ]
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


# ---------------------------------------------------------------------------- every reply, its exact outcome
# The whole Outcome is compared: status, amounts, error text (it is what the ledger and the ExecutionResult say),
# venue status, retry / confirm and finality. Mutation testing (make mutation) found the branches below unpinned.
KILLED_TEXT = "order couldn't be fully filled. FOK orders are fully filled or killed."
DUPLICATE_TEXT = f"order {HASH} is invalid. Duplicated."
POST_ONLY_TEXT = "post-only mode: only post-only orders and cancels are allowed"


@pytest.mark.parametrize(
    "status_code, body, error, transport, shape, landed, expected",
    [
        # no reply at all, whatever else came with it
        (None, None, "timeout", True, FOK_BUY, False, Outcome("UNKNOWN", error="no reply: timeout")),
        (None, None, None, True, FOK_BUY, False, Outcome("UNKNOWN", error="no reply: transport error")),
        (None, None, "reset by peer", False, FOK_BUY, False, Outcome("UNKNOWN", error="no reply: reset by peer")),
        (
            200,
            ok("matched", "5", "10"),
            None,
            True,
            FOK_BUY,
            False,
            Outcome("UNKNOWN", error="no reply: transport error"),
        ),
        # try the same bytes later
        (
            425,
            {"error": "restarting"},
            None,
            False,
            FOK_BUY,
            False,
            Outcome("UNKNOWN", error="HTTP 425: restarting", retry=True),
        ),
        (429, None, None, False, FOK_BUY, False, Outcome("UNKNOWN", error="HTTP 429: try later", retry=True)),
        (
            400,
            {"error": POST_ONLY_TEXT},
            None,
            False,
            FOK_BUY,
            False,
            Outcome("UNKNOWN", error=f"HTTP 400: {POST_ONLY_TEXT}", retry=True),
        ),
        # the venue failed: ambiguous; the texts of the body and of the transport are both kept
        (503, None, None, False, FOK_BUY, False, Outcome("UNKNOWN", error="HTTP 503: server error")),
        (
            500,
            {"error": "boom"},
            "upstream",
            False,
            FOK_BUY,
            False,
            Outcome("UNKNOWN", error="HTTP 500: boom; upstream"),
        ),
        # the order exists / a kill may hide a fill: look it up
        (
            400,
            {"error": DUPLICATE_TEXT},
            None,
            False,
            FOK_BUY,
            False,
            Outcome("UNKNOWN", error=f"duplicate: {DUPLICATE_TEXT}", confirm=True),
        ),
        (
            400,
            {"error": KILLED_TEXT},
            None,
            False,
            FOK_BUY,
            False,
            Outcome("NOT_FILLED", error=f"killed: {KILLED_TEXT}", venue_status="killed", confirm=True),
        ),
        # a 2xx whose body cannot be read says nothing; any other status is a refusal
        (200, None, None, False, FOK_BUY, False, Outcome("UNKNOWN", error="HTTP 200 with an unreadable body")),
        (200, "<html>", None, False, FOK_BUY, False, Outcome("UNKNOWN", error="HTTP 200 with an unreadable body")),
        (300, None, None, False, FOK_BUY, False, Outcome("REJECTED", error="HTTP 300: rejected without a reason")),
        (
            300,
            ok("matched", "5", "10"),
            None,
            False,
            FOK_BUY,
            False,
            Outcome("REJECTED", error="HTTP 300: rejected without a reason"),
        ),
        (
            400,
            {"errorMsg": "invalid signature"},
            None,
            False,
            FOK_BUY,
            False,
            Outcome("REJECTED", error="HTTP 400: invalid signature"),
        ),
        (400, {"message": "bad tick"}, None, False, FOK_BUY, False, Outcome("REJECTED", error="HTTP 400: bad tick")),
        (400, {"detail": "bad size"}, None, False, FOK_BUY, False, Outcome("REJECTED", error="HTTP 400: bad size")),
        (
            200,
            {"success": False, "errorMsg": "invalid signature"},
            None,
            False,
            FOK_BUY,
            False,
            Outcome("REJECTED", error="HTTP 200: invalid signature"),
        ),
        # ... unless an earlier attempt of the same bytes may have landed (D5)
        (
            400,
            None,
            None,
            False,
            FOK_BUY,
            True,
            Outcome("UNKNOWN", error="HTTP 400 to a re-send: refused", confirm=True),
        ),
        (
            400,
            {"error": "not enough balance"},
            None,
            False,
            FOK_BUY,
            True,
            Outcome("UNKNOWN", error="HTTP 400 to a re-send: not enough balance", confirm=True),
        ),
        # accepted: matched fills are the venue's match, not final until the chain settles them (D11)
        (
            200,
            ok("matched", "5", "10"),
            None,
            False,
            FOK_BUY,
            False,
            Outcome("FILLED", 10_000_000, 5_000_000, venue_status="matched", final=False),
        ),
        (
            200,
            ok("MATCHED", "10", "5"),
            None,
            False,
            GTC_SELL,
            False,
            Outcome("FILLED", 10_000_000, 5_000_000, venue_status="matched", final=False),
        ),
        (
            200,
            ok("matched", "0.000001", "0.000001"),
            None,
            False,
            FOK_BUY,
            False,
            Outcome("PARTIAL", 1, 1, venue_status="matched", final=False),
        ),
        (200, ok("matched"), None, False, FOK_BUY, False, Outcome("NOT_FILLED", venue_status="matched")),
        (200, ok("live"), None, False, GTC_SELL, False, Outcome("SUBMITTED", venue_status="live")),
        (
            200,
            ok("live", "2.5", "5"),
            None,
            False,
            FOK_BUY,
            False,
            Outcome("SUBMITTED", 5_000_000, 2_500_000, venue_status="live"),
        ),
        (
            200,
            ok("live", "0.000001", "0.000001"),
            None,
            False,
            FOK_BUY,
            False,
            Outcome("SUBMITTED", 1, 1, venue_status="live"),
        ),
        (200, ok("delayed"), None, False, FOK_BUY, False, Outcome("SUBMITTED", venue_status="delayed")),
        (200, ok("unmatched"), None, False, GTC_SELL, False, Outcome("SUBMITTED", venue_status="unmatched")),
        (
            200,
            ok("unmatched"),
            None,
            False,
            FOK_BUY,
            False,
            Outcome("NOT_FILLED", venue_status="unmatched", confirm=True),
        ),
        (
            200,
            ok("weird"),
            None,
            False,
            FOK_BUY,
            False,
            Outcome("UNKNOWN", error="accepted with an unknown status 'weird'", confirm=True),
        ),
        (
            200,
            {"success": True},
            None,
            False,
            FOK_BUY,
            False,
            Outcome("UNKNOWN", error="accepted with an unknown status None", confirm=True),
        ),
    ],
)
def test_each_reply_classifies_to_its_exact_outcome(status_code, body, error, transport, shape, landed, expected):
    assert classify(status_code, body, error, transport, shape, may_have_landed=landed) == expected


# ---------------------------------------------------------------------------- D8: a reply's fee from the schedule
MATCHED_BUY = Outcome("FILLED", 10_000_000, 5_000_000, venue_status="matched", final=False)


def test_a_reply_buy_pays_the_schedule_fee_on_top_of_its_fill():
    priced = with_reply_fee(MATCHED_BUY, "BUY", (Decimal("0.02"), Decimal(1)))
    assert priced == replace(MATCHED_BUY, fee_e6=50_000)  # 10 x 0.02 x 0.5 x 0.5; the fill itself unchanged
    squared = with_reply_fee(MATCHED_BUY, "BUY", (Decimal("0.25"), Decimal(2)))
    assert squared.fee_e6 == 156_250  # 10 x 0.25 x 0.0625


def test_a_reply_sell_adds_the_fee_back_to_its_proceeds():
    sold = Outcome("FILLED", 10_000_000, 4_950_000, venue_status="matched", final=False)  # takingAmount: net
    priced = with_reply_fee(sold, "SELL", (Decimal("0.02"), Decimal(1)))
    # the price is taken from the net proceeds (0.495): 10 x 0.02 x 0.495 x 0.505 = 0.049995 -> 0.05
    assert priced == replace(sold, filled_collateral_e6=4_950_000 + 50_000, fee_e6=50_000)


def test_an_unknown_schedule_prices_a_reply_at_the_maximum_flat_rate():
    # 5 % of one share per share, whatever the price: an over-estimate the reconciler replaces
    assert with_reply_fee(MATCHED_BUY, "BUY", None).fee_e6 == 500_000
    assert with_reply_fee(replace(MATCHED_BUY, filled_collateral_e6=9_000_000), "BUY", None).fee_e6 == 500_000


def test_a_reply_without_fills_or_with_a_fee_already_is_left_alone():
    for outcome in (
        Outcome("NOT_FILLED", venue_status="matched"),
        Outcome("SUBMITTED", venue_status="live"),
        replace(MATCHED_BUY, fee_e6=1234),
    ):
        assert with_reply_fee(outcome, "BUY", (Decimal("0.02"), Decimal(1))) is outcome


def test_a_reply_price_above_one_is_taken_as_one():
    # collateral over the shares (a garbage reply): priced at 1, where p(1-p) and so the fee is 0
    garbage = Outcome("FILLED", 10_000_000, 15_000_000, venue_status="matched", final=False)
    assert with_reply_fee(garbage, "BUY", (Decimal("0.02"), Decimal(1))) == garbage


# ---------------------------------------------------------------------------- evidence: exact outcomes
FOREIGN = "0x" + "ee" * 32


def test_settled_outcomes_name_their_sources_and_the_venue_status():
    full = taker_trade("CONFIRMED", fee_rate_bps="50")
    assert settle(None, [full]) == Outcome("FILLED", 10_000_000, 5_000_000, 50_000, evidence=("trades",))
    assert settle(MATCHED_10, [full]) == Outcome(
        "FILLED", 10_000_000, 5_000_000, 50_000, venue_status="matched", evidence=("trades", "venue-order")
    )
    # the record's status may come with the enum's prefix; an order record without a status has none
    canceled = {"status": "ORDER_STATUS_CANCELED", "size_matched": "0"}
    assert settle(canceled) == Outcome("NOT_FILLED", venue_status="canceled", evidence=("venue-order",))
    assert settle({"size_matched": "10"}, [full]) == Outcome(
        "FILLED", 10_000_000, 5_000_000, 50_000, evidence=("trades", "venue-order")
    )


def test_chain_fills_win_a_tie_and_the_source_with_more_shares_wins_otherwise():
    # same shares: the chain's own fee, not the one the trade rate gives
    tie = settle(MATCHED_10, [taker_trade("CONFIRMED", fee_rate_bps="50")], [ChainFill(10_000_000, 5_000_000, 1000)])
    assert tie == Outcome(
        "FILLED", 10_000_000, 5_000_000, 1000, venue_status="matched", evidence=("chain", "trades", "venue-order")
    )
    # more shares for less collateral (other prices): the shares decide
    more = settle(None, [taker_trade("CONFIRMED", size="6", price="0.9")], [ChainFill(10_000_000, 4_000_000, 0)])
    assert more == Outcome("FILLED", 10_000_000, 4_000_000, 0, evidence=("chain", "trades"))


def test_a_resting_order_stays_submitted_with_what_it_filled_so_far():
    assert settle({"status": "LIVE", "size_matched": "0"}, shape=GTC_SELL) == Outcome(
        "SUBMITTED", venue_status="live", evidence=("venue-order",)
    )
    # matched shares without their trades yet: a resting order, not a trade in flight
    assert settle({"status": "LIVE", "size_matched": "3"}, shape=GTC_SELL) == Outcome(
        "SUBMITTED", venue_status="live", evidence=("venue-order",)
    )
    part = settle(
        {"status": "LIVE", "size_matched": "4"}, [taker_trade("CONFIRMED", size="4", fee_rate_bps="50")], shape=GTC_SELL
    )
    assert part == Outcome(
        "SUBMITTED", 4_000_000, 2_000_000, 20_000, venue_status="live", evidence=("trades", "venue-order")
    )


def test_trades_in_flight_keep_the_confirmed_part_and_its_fee():
    trades = [taker_trade("CONFIRMED", size="4", fee_rate_bps="50"), taker_trade("MINED", size="6") | {"id": "t3"}]
    assert settle(MATCHED_10, trades) == Outcome(
        "SUBMITTED", 4_000_000, 2_000_000, 20_000, venue_status="in-flight", evidence=("trades", "venue-order")
    )
    # however little is in flight, and wherever it is in the list, nothing is proven absent
    tiny = settle(None, [taker_trade("MINED", size="0.000001")], expired=True)
    assert tiny == Outcome("SUBMITTED", venue_status="in-flight", evidence=("trades",))
    last_empty = [taker_trade("MINED", size="6"), taker_trade("MINED", size="0") | {"id": "t3"}]
    assert settle(None, last_empty, expired=True) == Outcome(
        "SUBMITTED", venue_status="in-flight", evidence=("trades",)
    )


def test_a_partial_fill_of_a_resting_order_the_venue_no_longer_lists_waits():
    part = [taker_trade("CONFIRMED", size="4")]
    assert settle(None, part, shape=GTC_SELL) is None  # it may still fill: no order record, not expired
    assert settle(None, part, shape=GTC_SELL, expired=True) == Outcome(
        "PARTIAL", 4_000_000, 2_000_000, evidence=("trades",)
    )
    dead = settle({"status": "CANCELED", "size_matched": "4"}, part, shape=GTC_SELL)
    assert dead == Outcome("PARTIAL", 4_000_000, 2_000_000, venue_status="canceled", evidence=("trades", "venue-order"))
    # a full fill needs no record
    assert settle(None, [taker_trade("CONFIRMED")], shape=GTC_SELL) == Outcome(
        "FILLED", 10_000_000, 5_000_000, evidence=("trades",)
    )
    # the smallest fill on a dead order is a fill, not NOT_FILLED
    speck = settle({"status": "CANCELED", "size_matched": "0.000001"}, [taker_trade("CONFIRMED", size="0.000001")])
    assert speck == Outcome("PARTIAL", 1, 0, venue_status="canceled", evidence=("trades", "venue-order"))


def test_absence_after_expiry_says_why():
    failed = settle(None, [taker_trade("FAILED")], expired=True)
    assert failed == Outcome(
        "NOT_FILLED", error="its trades FAILED and no order is left at the venue after expiry", evidence=("trades",)
    )
    assert settle(expired=True) == Outcome(
        "NOT_FILLED", error="not at the venue: no order, no trade, no chain fill after expiry", evidence=("absent",)
    )


def test_trade_amounts_are_summed_and_prices_above_one_are_unreadable():
    confirmed = [taker_trade("CONFIRMED", size="4"), taker_trade("CONFIRMED", size="6") | {"id": "t3"}]
    assert settle(MATCHED_10, confirmed) == Outcome(
        "FILLED", 10_000_000, 5_000_000, venue_status="matched", evidence=("trades", "venue-order")
    )
    failed = [taker_trade("FAILED", size="4"), taker_trade("FAILED", size="6") | {"id": "t3"}]
    assert settle(MATCHED_10, failed) == Outcome(
        "NOT_FILLED", venue_status="matched", evidence=("trades", "venue-order")
    )
    assert settle(None, [taker_trade("CONFIRMED", price="1")]).filled_collateral_e6 == 10_000_000
    assert settle(None, [taker_trade("CONFIRMED", price="1.5")]) is None


def test_only_the_orders_own_part_of_a_trade_counts():
    foreign = {
        "id": "t9",
        "taker_order_id": FOREIGN,
        "size": "10",
        "price": "0.5",
        "status": "CONFIRMED",
        "fee_rate_bps": "0",
        "maker_orders": [{"order_id": "0x" + "dd" * 32, "matched_amount": "10", "price": "0.5", "fee_rate_bps": "0"}],
    }
    # someone else's trade is no evidence: after expiry the order is absent
    assert settle(None, [foreign], expired=True).evidence == ("absent",)
    # and neither it nor a record that is no trade at all hides the order's own trade after it
    assert settle(None, [None, "garbage", foreign, taker_trade("CONFIRMED")]) == Outcome(
        "FILLED", 10_000_000, 5_000_000, evidence=("trades",)
    )


# ---------------------------------------------------------------------------- records
def test_a_result_record_without_amounts_has_none():
    record = result_record(
        intent_id="i1",
        follow_id="f",
        follower="0x" + "11" * 20,
        leader_fill_id="lf",
        decision_id="d1",
        occurred_at_us=5,
        status="NOT_FILLED",
        seq=1,
        now_us=9,
        order_hash=HASH,
    )
    assert (
        record["filled_shares_e6"],
        record["filled_collateral_e6"],
        record["fee_e6"],
        record["avg_price"],
        record["error"],
        record["attempts"],
        record["final"],
    ) == (0, 0, 0, None, None, 0, True)


def test_avg_price_needs_a_share():
    assert avg_price(0, 5) is None
    assert avg_price(1, 1) == "1"
    assert avg_price(3_000_000, 1_000_000) == "0.333333"


def test_the_order_timestamp_is_whole_milliseconds_of_the_decision():
    assert decision_timestamp_ms({"envelope": {"produced_at_us": None, "occurred_at_us": 5_000_999}}) == 5_000
    # integer arithmetic: exact for any clock value, no float rounding
    big = 2**62 + 999
    assert decision_timestamp_ms({"envelope": {"produced_at_us": big, "occurred_at_us": 1}}) == big // 1000


def test_a_copy_without_an_intent_is_refused_by_the_dry_run():
    decision = {"action": "COPY", "intent_id": None, "envelope": {"event_id": "d1", "occurred_at_us": 1}}
    with pytest.raises(ValueError, match="COPY decision d1 has no intent_id"):
        execute(decision, now_us=2)


def test_a_reply_priced_at_zero_or_one_with_an_unknown_schedule_still_gets_its_fee():
    """The unknown-schedule fallback is a flat 5 % per share (exponent 0); Decimal refuses 0 ** 0, so a reply whose
    average price is 0 (no collateral) or 1 raised right after the POST."""
    assert with_reply_fee(Outcome("FILLED", 10_000_000, 0), "BUY", None).fee_e6 == 500_000
    assert with_reply_fee(Outcome("FILLED", 10_000_000, 10_000_000), "BUY", None).fee_e6 == 500_000
