"""decide, to the letter: every SKIP's code and detail as an operator reads them, every field a decision's `inputs`
records, and the edges of each rule (a price of exactly 1, a cost of exactly the budget, a quote exactly as old as
its TTL). test_decide.py holds the rules; this file pins what they write."""

from __future__ import annotations

import dataclasses
import json
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest

from horus.domain.control import apply_control, control_command
from horus.domain.decide import (
    MAX_CANDIDATE_TEXT,
    CandidateInvalid,
    DecideState,
    _fit_to_budget,
    apply_decision,
    apply_result,
    buy_cost_e6,
    buy_share_step_e6,
    decide,
    fee_per_share,
    fee_schedule,
    notional_e6,
    to_tick,
)
from horus.domain.market import Balance, FeeParams, Quote
from tests.unit.test_decide import (
    COND,
    COND2,
    E6,
    FOLLOWER,
    LEADER,
    NOW,
    OTHER_LEADER,
    TOKEN,
    bought,
    candidate,
    market,
    one,
    result,
    view,
)

UNKNOWN_TOKEN = "9999"


def with_fees(fees):
    return dataclasses.replace(market(), fees=fees)


def skip(d):
    assert d["action"] == "SKIP" and d["size_e6"] == 0 and d["reserved_e6"] == 0 and d["intent_id"] is None
    return d["reason_code"], d["reason_detail"]


def inputs(d):
    return json.loads(d["inputs"])


def fresh_quote(bid="0.49", ask="0.50", **depth):
    return Quote(Decimal(bid) if bid else None, Decimal(ask) if ask else None, NOW - 1000, **depth)


# ------------------------------------------------------------------------------------------ who may copy


def test_an_unknown_follow_is_named():
    assert skip(one(candidate(follow="gone"))) == ("FOLLOW_UNKNOWN", "no config for follow gone")


def test_an_invalid_follow_carries_what_is_wrong_with_it():
    v = view()
    v.config.invalid["gone"] = "invalid follow: sizing: amount must be > 0"
    assert skip(one(candidate(follow="gone"), v=v)) == ("FOLLOW_INVALID", "invalid follow: sizing: amount must be > 0")


def test_a_disabled_follow_is_named():
    assert skip(one(candidate(), v=view({"enabled": False}))) == ("FOLLOW_DISABLED", "follow f1 is disabled")


@pytest.mark.parametrize("changed", ["follower", "leader"])
def test_a_follow_whose_follower_or_leader_changed_skips_a_candidate_planned_for_the_old_pair(changed):
    c = candidate()
    c[changed] = "0x" + "e" * 40
    assert skip(one(c)) == ("FOLLOW_CHANGED", f"follow f1 is now {FOLLOWER} <- {LEADER}")


def test_an_unknown_follower_is_named():
    v = view()
    del v.config.followers[FOLLOWER]
    assert skip(one(candidate(), v=v)) == ("FOLLOWER_UNKNOWN", f"no account for follower {FOLLOWER}")


def test_an_invalid_follower_carries_what_is_wrong_with_it():
    v = view()
    del v.config.followers[FOLLOWER]
    v.config.invalid["follower:" + FOLLOWER] = "invalid follower: custody: unknown"
    assert skip(one(candidate(), v=v)) == ("FOLLOWER_INVALID", "invalid follower: custody: unknown")


def test_a_disabled_follower_is_named():
    d = one(candidate(), v=view(follower={"enabled": False}))
    assert skip(d) == ("FOLLOWER_DISABLED", f"follower {FOLLOWER} is disabled")


# ------------------------------------------------------------------------------------------ guards


def test_the_kill_switch_gives_its_reason():
    v = view()
    apply_control(control_command("GLOBAL", "KILL", reason="incident"), v.control)
    assert skip(one(candidate(), v=v)) == ("KILL_SWITCH", "kill for everything: incident")


def test_a_paused_market_holds_even_when_its_rules_are_not_known_yet():
    """No market rules for the token: the pause is looked up by the candidate's own condition id."""
    v = view()
    apply_control(control_command("MARKET", "PAUSE", COND2, reason="resolution dispute"), v.control)
    c = candidate(token=UNKNOWN_TOKEN)
    c["condition_id"] = COND2
    d = one(c, v=v)
    assert skip(d) == ("PAUSED_MARKET", f"pause for market {COND2}: resolution dispute")
    assert d["condition_id"] == COND2  # a SKIP keeps the candidate's market for the projections


def test_a_fill_older_than_the_follow_allows_is_skipped_with_its_age():
    d = one(candidate(age_us=60_000_050))  # 50 microseconds past the follow's 60 s
    assert skip(d) == ("FILL_TOO_OLD", "leader fill is 60.0s old, the follow allows 60s")


def test_a_fill_exactly_as_old_as_the_follow_allows_is_not_too_old():
    d = one(candidate(age_us=60_000_000))
    assert d["reason_code"] == "NO_PRICE"  # the next rule: no quote, and the leader's price is past the quote TTL


def test_an_unknown_market_names_the_token():
    d = one(candidate(token=UNKNOWN_TOKEN))
    assert skip(d) == ("MARKET_UNKNOWN", f"no market rules (tick size) for token {UNKNOWN_TOKEN}")


def test_a_closed_market_is_named():
    v = view(markets={TOKEN: market(closed=True)})
    assert skip(one(candidate(), v=v)) == ("MARKET_CLOSED", f"market {COND} is not accepting orders")


def test_the_deny_entry_that_matched_is_named():
    assert skip(one(candidate(), v=view({"markets_deny": [COND]}))) == (
        "MARKET_DENIED",
        f"market matches deny entry {COND}",
    )


def test_a_market_outside_the_allow_list_is_named():
    d = one(candidate(), v=view({"markets_allow": [COND2]}))
    assert skip(d) == ("MARKET_NOT_ALLOWED", f"market {COND} matches no allow entry")


def test_the_price_band_includes_both_ends():
    assert one(candidate(price="0.50"), v=view({"price_min": "0.50"}))["action"] == "COPY"
    assert one(candidate(price="0.50"), v=view({"price_max": "0.50"}))["action"] == "COPY"
    d = one(candidate(price="0.50"), v=view({"price_min": "0.6"}))
    assert skip(d) == ("PRICE_OUT_OF_BAND", "leader price 0.50 is outside [0.6, 1]")


# ------------------------------------------------------------------------------------------ the reference price


@pytest.mark.parametrize(
    ("side", "bid", "ask", "missing"), [("BUY", "0.49", None, "asks"), ("SELL", None, "0.50", "bids")]
)
def test_an_empty_side_of_a_fresh_book_is_no_liquidity(side, bid, ask, missing):
    d = one(candidate(side=side), v=view(quotes={TOKEN: fresh_quote(bid, ask)}, tokens=[(TOKEN, 100 * E6)]))
    assert skip(d) == ("NO_LIQUIDITY", f"the book has no {missing}")


def test_a_quote_exactly_as_old_as_its_ttl_is_still_fresh():
    q = Quote(Decimal("0.49"), Decimal("0.50"), NOW - 5_000_000)
    d = one(candidate(age_us=10_000_000), v=view(quotes={TOKEN: q}))  # the leader's own price is too old
    assert d["action"] == "COPY" and inputs(d)["reference"] == "book"


def test_no_fresh_book_and_an_old_leader_price_is_no_price():
    d = one(candidate(age_us=6_000_000))
    assert skip(d) == ("NO_PRICE", "no fresh order book and the leader's price is older than the quote TTL")


@pytest.mark.parametrize(
    ("side", "bid", "ask", "detail"),
    [
        ("BUY", "0.59", "0.60", "best ask 0.60 is past the worst acceptable 0.51 (leader 0.50 + 200 bps)"),
        ("SELL", "0.40", "0.41", "best bid 0.40 is past the worst acceptable 0.49 (leader 0.50 - 200 bps)"),
    ],
)
def test_a_price_that_moved_past_the_slippage_names_both_prices(side, bid, ask, detail):
    v = view(quotes={TOKEN: fresh_quote(bid, ask)}, tokens=[(TOKEN, 100 * E6)])
    state = bought(DecideState(), view(tokens=[(TOKEN, 100 * E6)]))
    assert skip(one(candidate(side=side), state, v)) == ("PRICE_MOVED", detail)


def test_a_buy_below_the_leaders_price_keeps_the_slippage_off_the_lower_price_and_rounds_down_to_the_tick():
    """Best ask 0.40 under a leader price of 0.50: worst = 0.40 x 1.02 = 0.408 -> 0.40 (never rounded up)."""
    d = one(candidate(price="0.50"), v=view(quotes={TOKEN: fresh_quote("0.39", "0.40")}))
    assert d["action"] == "COPY" and d["worst_price"] == "0.40"


def test_a_sell_rounds_its_worst_price_up_to_the_tick_and_may_sell_at_the_best_bid():
    """Best bid 0.60, 100 bps: worst = 0.594 -> 0.60, which is the bid itself: not moved."""
    v = view({"slippage_bps": 100}, quotes={TOKEN: fresh_quote("0.60", "0.61")}, tokens=[(TOKEN, 100 * E6)])
    state = bought(DecideState(), view(tokens=[(TOKEN, 100 * E6)]))
    d = one(candidate(side="SELL", price="0.50"), state, v)
    assert (d["action"], d["worst_price"], d["reserved_e6"]) == ("COPY", "0.60", 0)


def test_a_sell_at_a_price_of_1_is_valid_and_its_worst_price_stays_one_tick_under_1():
    v = view({"slippage_bps": 0}, quotes={TOKEN: fresh_quote("0.99", None)}, tokens=[(TOKEN, 100 * E6)])
    state = bought(DecideState(), view(tokens=[(TOKEN, 100 * E6)]))
    d = one(candidate(side="SELL", price="1"), state, v)
    assert (d["action"], d["worst_price"]) == ("COPY", "0.99")


def test_a_buy_on_an_unknown_fee_schedule_says_where_the_rate_comes_from():
    v = view(markets={TOKEN: with_fees(None)})
    d = one(candidate(), v=v)
    assert skip(d) == (
        "FEE_UNKNOWN",
        f"the fee schedule of market {COND} is unknown (no fee rate from Gamma or /clob-markets)",
    )


# ------------------------------------------------------------------------------------------ what a decision records


def test_a_buy_records_every_input_of_its_size():
    v = view({"market_exposure_cap": "30"}, {"market_exposure_cap": "45"}, quotes={TOKEN: fresh_quote("0.49", "0.50")})
    state = DecideState()
    state.book(FOLLOWER)._add_exposure(COND, OTHER_LEADER, 20 * E6)  # another leader's copies hold 20 here
    d = one(candidate(price="0.50"), state, v)
    assert (d["action"], d["size_e6"], d["reserved_e6"], d["condition_id"]) == ("COPY", 19 * E6, 9_690_000, COND)
    assert inputs(d) == {
        "leader_price": "0.50",
        "reference_price": "0.50",
        "reference": "book",
        "worst_price": "0.51",
        "tick": "0.01",
        "slippage_bps": 200,
        "best_bid": "0.49",
        "best_ask": "0.50",
        "balance_e6": 1000 * E6,
        "available_e6": 1000 * E6,
        "target_e6": 10 * E6,
        "caps_remaining_e6": {
            "INSUFFICIENT_BALANCE": 1000 * E6,
            "MARKET_EXPOSURE_CAP": 30 * E6,  # this leader's copies: none yet
            "FOLLOWER_MARKET_EXPOSURE_CAP": 25 * E6,  # every leader's: 45 - 20
        },
        "fee_per_share": "0",
        "share_step_e6": E6,  # at 0.51 only whole shares cost whole cents
    }


def test_a_sell_records_every_input_of_its_size():
    v = view(tokens=[(TOKEN, 100 * E6)])
    state = bought(DecideState(), v)  # 19 shares copying the leader's 20
    d = one(candidate(side="SELL", shares=5 * E6), state, v)
    assert (d["action"], d["size_e6"], d["reserved_e6"]) == ("COPY", 4_750_000, 0)
    assert inputs(d) == {
        "leader_price": "0.50",
        "reference_price": "0.50",
        "reference": "leader",
        "worst_price": "0.49",
        "tick": "0.01",
        "slippage_bps": 200,
        "held_e6": 19 * E6,
        "leader_held_e6": 20 * E6,
        "fraction": "0.25",
        "venue_shares_e6": 100 * E6,
    }


def test_a_tiny_fee_per_share_is_recorded_as_a_plain_decimal():
    d = one(candidate(price="0.50"), v=view({"slippage_bps": 0}, markets={TOKEN: market(fee_rate="0.0000004")}))
    assert (
        d["action"] == "COPY" and inputs(d)["fee_per_share"] == "0.00000010000"
    )  # 0.0000004 x 0.5 x 0.5, not 1.0000E-7


def test_a_fill_booked_at_the_instant_of_the_balance_read_is_in_that_balance():
    v = view()
    v.balances[FOLLOWER] = Balance(1000 * E6, NOW - 5, ())
    state = DecideState()
    first = one(candidate(), state, v)
    apply_result(result(first), state, now_us=NOW - 5)  # booked at the read's own instant: the read counts it
    assert inputs(one(candidate(), state, v))["available_e6"] == 1000 * E6


def test_a_balance_that_could_not_be_read_is_named():
    d = one(candidate(), v=view(balance=None))
    assert skip(d) == ("BALANCE_UNAVAILABLE", "the follower's collateral balance could not be read")


def test_a_share_of_an_empty_balance_targets_nothing():
    d = one(candidate(), v=view({"sizing": {"mode": "balance_pct", "balance_pct": "100"}}, balance=0))
    assert inputs(d)["target_e6"] == 0 and d["reason_code"] == "BELOW_MIN_ORDER"


def test_the_minimum_per_trade_is_inclusive_and_named():
    assert one(candidate(), v=view({"sizing": {"mode": "fixed", "amount": "10", "min_per_trade": "10"}}))["action"] == (
        "COPY"
    )
    d = one(candidate(price="0.50"), v=view({"sizing": {"mode": "ratio", "ratio": "0.01", "min_per_trade": "1"}}))
    assert skip(d) == ("BELOW_MIN_TRADE", "copy of 0.1 is below the follow's min_per_trade 1")


def test_a_cap_that_leaves_exactly_the_target_does_not_shrink_the_copy():
    d = one(candidate(), v=view({"daily_cap": "10", "slippage_bps": 0}))
    assert d["action"] == "COPY" and "shrunk_by" not in inputs(d)


def test_a_copy_that_costs_exactly_its_budget_is_not_cut():
    """20 shares at 0.50 cost 10.00, exactly the fixed amount: all 20 are bought."""
    d = one(candidate(price="0.50"), v=view({"slippage_bps": 0}))
    assert (d["size_e6"], d["reserved_e6"]) == (20 * E6, 10 * E6)


def test_a_copy_of_exactly_the_venue_minimum_is_not_under_it():
    d = one(candidate(price="0.50"), v=view({"slippage_bps": 0, "sizing": {"mode": "fixed", "amount": "1"}}))
    assert (d["action"], d["size_e6"], d["reserved_e6"]) == ("COPY", 2 * E6, E6)
    assert "rounded_up_to_minimum" not in inputs(d)


def test_the_open_positions_limit_is_named():
    v = view(follower={"max_open_positions": 1}, tokens=[(TOKEN, 100 * E6)])
    state = bought(DecideState(), v)
    d = one(candidate(token="1002"), state, v)
    assert skip(d) == ("MAX_OPEN_POSITIONS", "1 open positions, the follower allows 1")


# ------------------------------------------------------------------------------------------ the $1 minimum

HALF_DOLLAR = {"mode": "ratio", "ratio": "0.05"}  # 5% of the leader's 10.00: 0.50, one share at 0.50


def test_rounding_up_to_the_minimum_may_use_a_cap_to_its_last_cent():
    for limit in ({"daily_cap": "1"}, {"sizing": {**HALF_DOLLAR, "min_size_policy": "round_up", "max_per_trade": "1"}}):
        follow = {"slippage_bps": 0, "sizing": {**HALF_DOLLAR, "min_size_policy": "round_up"}, **limit}
        d = one(candidate(price="0.50"), v=view(follow))
        assert (d["action"], d["size_e6"], d["reserved_e6"]) == ("COPY", 2 * E6, E6), limit
        assert inputs(d)["rounded_up_to_minimum"] is True


def test_under_the_minimum_without_a_binding_cap_names_the_shares_and_price():
    d = one(candidate(price="0.50"), v=view({"slippage_bps": 0, "sizing": HALF_DOLLAR}))
    assert skip(d) == ("BELOW_MIN_ORDER", "1 shares at 0.50 is under the venue's $1 minimum")


def test_under_the_minimum_because_of_a_cap_names_the_cap_and_what_it_left():
    d = one(candidate(price="0.50"), v=view({"slippage_bps": 0, "daily_cap": "0.5"}))
    assert skip(d) == ("DAILY_CAP", "only 0.5 left under daily_cap; the venue minimum is $1 (2 shares at 0.50)")


def test_an_empty_balance_reports_nothing_left_not_a_negative_amount():
    d = one(candidate(price="0.50"), v=view({"slippage_bps": 0}, balance=0))
    assert skip(d) == (
        "INSUFFICIENT_BALANCE",
        "only 0 left under insufficient_balance; the venue minimum is $1 (2 shares at 0.50)",
    )


# ------------------------------------------------------------------------------------------ candidates


def test_a_side_neither_buy_nor_sell_is_quoted_in_the_error():
    with pytest.raises(CandidateInvalid, match=r"^candidate side 'HOLD' is neither BUY nor SELL$"):
        decide(candidate(side="HOLD"), DecideState(), now_us=NOW, view=view())


def test_texts_of_exactly_the_maximum_length_are_accepted_and_one_more_is_refused():
    longest = candidate(token="1" * MAX_CANDIDATE_TEXT)
    longest["envelope"]["event_id"] = "e" * MAX_CANDIDATE_TEXT
    assert one(longest)["reason_code"] == "MARKET_UNKNOWN"
    too_long = candidate()
    too_long["envelope"]["event_id"] = "e" * (MAX_CANDIDATE_TEXT + 1)
    with pytest.raises(CandidateInvalid, match=rf"^candidate id is {MAX_CANDIDATE_TEXT + 1} characters long$"):
        decide(too_long, DecideState(), now_us=NOW, view=view())


def test_the_smallest_positive_values_are_valid():
    assert one(candidate(price="1"))["reason_code"] != "CANDIDATE_INVALID"  # a price of exactly 1
    tiny = candidate()
    tiny["leader_shares_e6"], tiny["leader_collateral_e6"] = 1, 0  # one millionth of a share, for nothing
    assert one(tiny)["reason_code"] != "CANDIDATE_INVALID"


def test_negative_shares_and_collateral_are_reported_in_shares_and_dollars():
    c = candidate()
    c["leader_shares_e6"] = -5 * E6
    assert skip(one(c)) == ("CANDIDATE_INVALID", "leader shares -5 are not positive")
    c = candidate()
    c["leader_collateral_e6"] = -2 * E6
    assert skip(one(c)) == ("CANDIDATE_INVALID", "leader collateral -2 is negative")


# ------------------------------------------------------------------------------------------ arithmetic


def test_prices_round_to_the_tick_in_the_direction_asked():
    assert to_tick(Decimal("0.508"), Decimal("0.01"), ROUND_FLOOR) == Decimal("0.50")
    assert to_tick(Decimal("0.502"), Decimal("0.01"), ROUND_CEILING) == Decimal("0.51")


def test_a_buy_cost_rounds_up_and_a_notional_rounds_down():
    assert buy_cost_e6(1, Decimal("0.5"), Decimal(0)) == 1  # half a millionth of a dollar still costs one
    assert notional_e6(3, Decimal("0.5")) == 1  # and is worth one


def test_a_buy_fits_its_budget_even_when_the_division_rounds_up_to_a_whole_step():
    """9,000 / 0.4500...01 (28 digits) is a hair under 20,000 shares, and Decimal's 28-digit division rounds it up
    to exactly 20,000, which would cost 9,000.000001: one step less is bought."""
    worst, fee, budget = Decimal("0.45"), Decimal("1E-28"), 9_000 * E6
    step = buy_share_step_e6(worst)
    assert buy_cost_e6(20_000 * E6, worst, fee) == budget + 1
    assert _fit_to_budget(budget, worst, fee, step) == 20_000 * E6 - step


def test_a_budget_already_overdrawn_buys_nothing_rather_than_a_negative_amount():
    assert _fit_to_budget(-5, Decimal("0.45"), Decimal(0), buy_share_step_e6(Decimal("0.45"))) == 0


def test_the_fee_schedule_of_a_market():
    assert fee_schedule(market()) == (Decimal(0), Decimal(1))  # fees switched off
    off_with_a_rate = with_fees(FeeParams(enabled=False, rate=Decimal("0.1"), exponent=Decimal(2)))
    assert fee_schedule(off_with_a_rate) == (Decimal(0), Decimal(1))  # off wins over a stale rate
    assert fee_per_share(off_with_a_rate, Decimal("0.5")) == 0
    squared = with_fees(FeeParams(enabled=True, rate=Decimal("0.1"), exponent=Decimal(2)))
    assert fee_schedule(squared) == (Decimal("0.1"), Decimal(2))
    no_exponent = with_fees(FeeParams(enabled=True, rate=Decimal("0.1")))
    assert fee_schedule(no_exponent) == (Decimal("0.1"), Decimal(1))
    with pytest.raises(ValueError, match=rf"^the fee schedule of market {COND} is unknown$"):
        fee_per_share(with_fees(None), Decimal("0.5"))


# ------------------------------------------------------------------------------------------ the folds


def test_a_leader_that_sold_everything_holds_nothing():
    state, v = DecideState(), view(tokens=[(TOKEN, 100 * E6)])
    bought(state, v)
    one(candidate(side="SELL", shares=20 * E6), state, v)
    assert state.books[FOLLOWER].leader_holdings[("f1", TOKEN)] == 0


def test_a_sell_holds_back_no_collateral():
    state, v = DecideState(), view(tokens=[(TOKEN, 100 * E6)])
    bought(state, v)
    d = one(candidate(side="SELL", shares=20 * E6), state, v)
    book = state.books[FOLLOWER]
    assert book.reservations[d["intent_id"]].cost_e6 == 0 and book.reserved_cost == 0


def test_a_result_without_a_sequence_is_still_booked_after_a_sequenced_one():
    """Results written before results had a sequence carry none (0): they are never taken for a stale redelivery."""
    state = DecideState()
    d = one(candidate(), state)
    apply_result(result(d, ratio=Decimal("0.5"), final=False, seq=2), state)
    unsequenced = result(d)
    unsequenced["seq"] = None
    apply_result(unsequenced, state)
    assert state.books[FOLLOWER].positions[(TOKEN, LEADER)].shares_e6 == d["size_e6"]


def test_a_correction_of_one_millionth_of_a_dollar_is_remembered_until_a_balance_shows_it():
    state = DecideState()
    d = one(candidate(), state)
    first = result(d, seq=1)
    apply_result(first, state, now_us=NOW)
    corrected = {**result(d, seq=2), "filled_collateral_e6": first["filled_collateral_e6"] + 1}
    apply_result(corrected, state, now_us=NOW + 1)
    assert state.books[FOLLOWER].fills_after[-1] == (NOW + 1, 1)


def test_a_decision_folded_twice_reserves_once():
    state = DecideState()
    d = one(candidate(), state)
    apply_decision(d, state)
    assert state.books[FOLLOWER].reserved_cost == d["reserved_e6"]
