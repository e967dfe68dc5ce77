"""Exact money rules of the executor's facts and numbers: the venue adapter's readings (replies, order records,
trades), the fee formula's guards, and the roundings that are pinned to half-even whatever the thread's decimal
context says (a library that changes the context must not move a single micro-unit)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest

from horus.domain.execute import (
    Accepted,
    OrderShape,
    OrderState,
    Outcome,
    ReplyFacts,
    TradePart,
    TradeState,
    avg_price,
    classify_reply,
    settle_from_evidence,
    with_reply_fee,
)
from horus.domain.fees import effective_rate, fee_at_rate_e6, taker_fee_e6
from horus.venue.polymarket.replies import amount_e6, order_trades, reply_facts, venue_order

GTC_BUY = OrderShape("BUY", "GTC", maker_amount=5_000_000, taker_amount=10_000_000)  # 10 shares at 0.5
HASH = "0x" + "ab" * 32


# ----------------------------------------------------------------------------------------------- pinned roundings
def test_a_venue_amount_rounds_half_even_to_the_micro_unit():
    assert amount_e6("5.0000005") == 5_000_000  # a tie goes to the even micro-unit
    assert amount_e6("5.0000015") == 5_000_002
    assert amount_e6("5.00000051") == 5_000_001  # past the tie: up


def test_a_venue_amount_rounds_half_even_even_when_the_context_rounds_half_up():
    with localcontext() as ctx:
        ctx.rounding = ROUND_HALF_UP
        assert amount_e6("5.0000005") == 5_000_000
        assert amount_e6("0.0000005") == 0


def test_avg_price_rounds_half_even_to_six_places():
    assert avg_price(2_000_000, 1_000_001) == "0.5"  # 0.5000005: the tie goes to the even 0.500000
    assert avg_price(2_000_000, 1_000_003) == "0.500002"  # 0.5000015: the tie goes to the even 0.500002
    assert avg_price(3_000_000, 1_000_000) == "0.333333"


def test_avg_price_rounds_half_even_even_when_the_context_rounds_half_up():
    with localcontext() as ctx:
        ctx.rounding = ROUND_HALF_UP
        assert avg_price(2_000_000, 1_000_001) == "0.5"


def test_a_confirmed_trade_collateral_rounds_half_even_even_when_the_context_rounds_half_up():
    """shares x price = 1_500_000.5 micro-units: half-even gives 1_500_000, whatever the thread's context."""
    part = TradePart(TradeState.CONFIRMED, 3_000_001, Decimal("0.5"), Decimal(0))
    with localcontext() as ctx:
        ctx.rounding = ROUND_HALF_UP
        outcome = settle_from_evidence(
            OrderShape("BUY", "FOK", 1_500_001, 3_000_001),
            venue_order=None,
            trades=[part],
            chain_fills=[],
            expired=False,
        )
    assert outcome is not None
    assert (outcome.status, outcome.filled_shares_e6, outcome.filled_collateral_e6) == ("FILLED", 3_000_001, 1_500_000)


# ----------------------------------------------------------------------------------------------- fees
@pytest.mark.parametrize(
    "rate, exponent, message",
    [
        ("-0.01", "1", "fee rate -0.01 and exponent 1 must be >= 0"),  # a negative rate alone is refused
        ("0.02", "-1", "fee rate 0.02 and exponent -1 must be >= 0"),  # a negative exponent alone is refused
        ("-0.01", "-1", "fee rate -0.01 and exponent -1 must be >= 0"),
    ],
)
def test_a_negative_fee_rate_or_exponent_is_refused_naming_both(rate, exponent, message):
    with pytest.raises(ValueError) as raised:
        effective_rate(Decimal("0.5"), Decimal(rate), Decimal(exponent))
    assert str(raised.value) == message


def test_a_rate_of_one_is_a_real_rate_not_a_zero_fee():
    """Only a zero rate short-cuts to no fee; a rate of 1 (100 %) is r x (p(1-p))^e like any other."""
    assert effective_rate(Decimal("0.5"), Decimal(1), Decimal(1)) == Decimal("0.25")
    assert effective_rate(Decimal("0.5"), Decimal(1), Decimal(0)) == Decimal(1)
    assert taker_fee_e6(10_000_000, Decimal("0.5"), Decimal(1), Decimal(1)) == 2_500_000
    assert effective_rate(Decimal("0.5"), Decimal(0), Decimal(1)) == 0


def test_a_fee_rounds_half_up_to_whole_units_of_1e_5():
    assert fee_at_rate_e6(5, Decimal(1)) == 10  # 0.5 unit of 1e-5: half up, one unit
    assert fee_at_rate_e6(4, Decimal(1)) == 0
    assert fee_at_rate_e6(15, Decimal(1)) == 20  # 1.5 units: half up, not half-even
    assert fee_at_rate_e6(25, Decimal(1)) == 30  # 2.5 units: half up, not half-even


def test_even_one_micro_share_of_a_reply_fill_is_priced():
    """Every positive fill gets the schedule's fee, down to a single micro-share (a flat rate of 5 per share makes
    its fee 0.5 unit of 1e-5, which rounds up to one unit: 10 micro-units)."""
    one = Outcome("FILLED", filled_shares_e6=1, filled_collateral_e6=1)
    priced = with_reply_fee(one, "BUY", (Decimal(5), Decimal(0)))
    assert (priced.filled_collateral_e6, priced.fee_e6) == (1, 10)
    sold = with_reply_fee(one, "SELL", (Decimal(5), Decimal(0)))
    assert (sold.filled_collateral_e6, sold.fee_e6) == (11, 10)  # a SELL's gross is its proceeds plus the fee


# ----------------------------------------------------------------------------------------------- replies
def test_an_object_reply_with_an_unknown_status_reads_as_other():
    """A reply body that is an object always has an Accepted: a status this engine does not know is OTHER, not
    absent (None is kept for a reply with no object body)."""
    facts = reply_facts(200, {"success": True, "status": "teleported"}, None, False)
    assert facts.accepted is Accepted.OTHER and facts.status_text == "teleported"
    assert reply_facts(200, {"success": True}, None, False).accepted is Accepted.OTHER
    assert reply_facts(200, "not json", None, False).accepted is None


def test_a_non_string_status_is_kept_as_its_own_text():
    facts = reply_facts(200, {"success": True, "status": 5}, None, False)
    assert facts.status_text == "5" and facts.accepted is Accepted.OTHER
    outcome = classify_reply(facts, GTC_BUY)
    assert outcome.status == "UNKNOWN" and outcome.confirm
    assert outcome.error == "accepted with an unknown status '5'"


def test_an_accepted_reply_without_status_text_invents_no_venue_status():
    facts = ReplyFacts(200, object_body=True, success=True, accepted=Accepted.LIVE, status_text=None)
    outcome = classify_reply(facts, GTC_BUY)
    assert outcome.status == "SUBMITTED" and not outcome.venue_status


def test_a_live_reply_that_took_no_shares_records_no_fill_at_all():
    """A resting order counts collateral only with the shares it crossed: no shares, no collateral either."""
    outcome = classify_reply(
        reply_facts(200, {"success": True, "status": "live", "makingAmount": "5"}, None, False), GTC_BUY
    )
    assert outcome == Outcome("SUBMITTED", venue_status="live")
    crossed = classify_reply(
        reply_facts(200, {"success": True, "status": "live", "makingAmount": "1", "takingAmount": "2"}, None, False),
        GTC_BUY,
    )
    assert (crossed.status, crossed.filled_shares_e6, crossed.filled_collateral_e6) == (
        "SUBMITTED",
        2_000_000,
        1_000_000,
    )


# ----------------------------------------------------------------------------------------------- order records, trades
def test_an_order_record_with_an_unknown_status_is_other():
    order = venue_order({"status": "ORDER_STATUS_SLEEPING", "size_matched": "1.5"})
    assert order.state is OrderState.OTHER
    assert (order.status_text, order.size_matched_e6) == ("SLEEPING", 1_500_000)


def test_a_trade_status_that_is_neither_confirmed_nor_failed_is_in_flight():
    trades = [
        {"taker_order_id": HASH, "status": status, "size": "2", "price": "0.5", "fee_rate_bps": "10"}
        for status in ("MATCHED", "TRADE_STATUS_MINED", "RETRYING", None, "CONFIRMED", "TRADE_STATUS_FAILED")
    ]
    states = [part.state for part in order_trades(HASH, trades)]
    assert states == [TradeState.IN_FLIGHT] * 4 + [TradeState.CONFIRMED, TradeState.FAILED]


def test_a_makers_unknown_trade_status_is_in_flight():
    trade = {
        "taker_order_id": "0x" + "cd" * 32,
        "status": "MINED",
        "maker_orders": [
            {"order_id": "0x" + "ef" * 32, "matched_amount": "9", "price": "0.4", "fee_rate_bps": "0"},
            {"order_id": HASH.upper(), "matched_amount": "3", "price": "0.5", "fee_rate_bps": "0"},
        ],
    }
    assert order_trades(HASH, [trade]) == [TradePart(TradeState.IN_FLIGHT, 3_000_000, Decimal("0.5"), Decimal(0))]
