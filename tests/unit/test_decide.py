"""decide: sizing, price guard, guardrails, sells, the state folds, and properties over random histories."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horus.codec import default_codec
from horus.domain import ids
from horus.domain.config import ConfigState, parse_follow_config, parse_follower
from horus.domain.control import ControlState, apply_control, control_command
from horus.domain.decide import (
    TERMINAL,
    DecideState,
    Position,
    StaticView,
    apply_decision,
    apply_result,
    buy_share_step_e6,
    decide,
    failure_rate,
    token_id_wellformed,
)
from horus.domain.events import envelope
from horus.domain.market import Balance, FeeParams, MarketInfo, Quote

NOW = 1_800_000_000_000_000
E6 = 1_000_000
LEADER = "0x" + "a" * 40
OTHER_LEADER = "0x" + "b" * 40
FOLLOWER = "0x" + "1" * 40
TOKEN = "1001"
TOKEN2 = "1002"
COND = "0x" + "c" * 64
COND2 = "0x" + "d" * 64


def market(token=TOKEN, cond=COND, tick="0.01", fee_rate=None, **extra):
    fees = (
        FeeParams(enabled=True, rate=Decimal(fee_rate), exponent=Decimal(1)) if fee_rate else FeeParams(enabled=False)
    )
    return MarketInfo(
        token_id=token, condition_id=cond, tick_size=Decimal(tick), min_order_size=Decimal(5), fees=fees, **extra
    )


def view(follow=None, follower=None, *, markets=None, quotes=None, balance=1000 * E6, tokens=()):
    config = ConfigState()
    f = parse_follow_config(
        {
            "follow_id": "f1",
            "follower": FOLLOWER,
            "leader": LEADER,
            "sizing": {"mode": "fixed", "amount": "10"},
            **(follow or {}),
        }
    )
    config.follows[f.follow_id] = f
    config.followers[FOLLOWER] = parse_follower({"follower": FOLLOWER, **(follower or {})})
    return StaticView(
        config,
        ControlState(),
        markets=markets or {TOKEN: market(), TOKEN2: market(TOKEN2, COND2)},
        quotes=quotes or {},
        balances={FOLLOWER: Balance(balance, NOW - 1, tuple(tokens))},
    )


_seq = iter(range(10**9))


def candidate(
    side="BUY", price="0.50", shares=20 * E6, token=TOKEN, leader=LEADER, follow="f1", age_us=1_000_000, tx=None
):
    fill_id = ids.leader_fill_id(tx or f"0x{next(_seq):064x}", leader, token, side)
    return {
        "envelope": envelope(
            ids.candidate_id(fill_id, follow), "plan", NOW - age_us, causation_id=fill_id, produced_at_us=NOW - age_us
        ),
        "leader_fill_id": fill_id,
        "follow_id": follow,
        "follower": FOLLOWER,
        "leader": leader,
        "token_id": token,
        "side": side,
        "leader_shares_e6": shares,
        "leader_collateral_e6": int(Decimal(shares) * Decimal(price)),
        "leader_price": price,
        "condition_id": None,
    }


def one(c, state=None, v=None, now=NOW):
    state = state if state is not None else DecideState()
    out, _ = decide(c, state, now_us=now, view=v or view())
    assert len(out) == 1
    default_codec().encode("CopyDecision", out[0])
    return out[0]


def result(decision, status="FILLED", ratio=Decimal(1), price=None, fee_e6=0, final=True, seq=1):
    filled = int(decision["size_e6"] * ratio) // 10_000 * 10_000
    p = Decimal(price or decision["worst_price"])
    return {
        "envelope": envelope(ids.result_id(decision["intent_id"], 1), "execute", NOW, produced_at_us=NOW),
        "intent_id": decision["intent_id"],
        "follow_id": decision["follow_id"],
        "follower": decision["follower"],
        "leader_fill_id": decision["leader_fill_id"],
        "status": status,
        "order_hash": None,
        "filled_shares_e6": filled,
        "filled_collateral_e6": int(filled * p),
        "avg_price": str(p),
        "fee_e6": fee_e6 if filled else 0,
        "error": None,
        "attempts": 1,
        "final": final,
        "seq": seq,
    }


# ------------------------------------------------------------------------------------------ sizing


def test_fixed_amount_buys_at_worst_price_in_whole_cents():
    d = one(candidate(price="0.50"))
    assert d["action"] == "COPY" and d["worst_price"] == "0.51"  # 0.50 + 2% -> tick
    assert d["size_e6"] == 19_000_000 and d["reserved_e6"] == 9_690_000  # whole shares: 19 x 0.51 = 9.69 <= 10
    assert d["intent_id"] == ids.intent_id("f1", d["leader_fill_id"])
    assert d["leader"] == LEADER and d["condition_id"] == COND


@pytest.mark.parametrize(
    "sizing, expected_target",
    [
        ({"mode": "ratio", "ratio": "0.5"}, 5 * E6),  # leader spent 10 -> 5
        ({"mode": "balance_pct", "balance_pct": "2"}, 20 * E6),  # 2% of 1000
        ({"mode": "fixed", "amount": "4", "multiplier": "3"}, 12 * E6),
        ({"mode": "fixed", "amount": "40", "max_per_trade": "7"}, 7 * E6),
    ],
)
def test_sizing_modes(sizing, expected_target):
    d = one(candidate(price="0.50"), v=view({"sizing": sizing}))
    assert d["action"] == "COPY"
    assert expected_target - 510_000 < d["reserved_e6"] <= expected_target


def test_min_per_trade_skips():
    d = one(candidate(), v=view({"sizing": {"mode": "ratio", "ratio": "0.01", "min_per_trade": "1"}}))
    assert (d["action"], d["reason_code"], d["size_e6"], d["intent_id"]) == ("SKIP", "BELOW_MIN_TRADE", 0, None)


def test_below_venue_minimum_skips_or_rounds_up_only_within_caps():
    small = {"mode": "ratio", "ratio": "0.05"}  # 0.5 of collateral: under $1
    assert one(candidate(), v=view({"sizing": small}))["reason_code"] == "BELOW_MIN_ORDER"
    up = one(candidate(), v=view({"sizing": {**small, "min_size_policy": "round_up"}}))
    assert up["action"] == "COPY" and up["reserved_e6"] >= E6 and json.loads(up["inputs"])["rounded_up_to_minimum"]
    capped = one(candidate(), v=view({"sizing": {**small, "min_size_policy": "round_up", "max_per_trade": "0.9"}}))
    assert capped["action"] == "SKIP" and capped["reason_code"] == "BELOW_MIN_ORDER"


def test_fees_count_towards_the_buy_cost():
    v = view(markets={TOKEN: market(fee_rate="0.1")})
    d = one(candidate(price="0.50"), v=v)
    fee_per_share = Decimal("0.1") * Decimal("0.51") * Decimal("0.49")
    assert d["reserved_e6"] <= 10 * E6
    assert d["reserved_e6"] == int(
        (Decimal(d["size_e6"]) * (Decimal("0.51") + fee_per_share)).to_integral_value("ROUND_CEILING")
    )
    assert d["size_e6"] < 19_000_000  # smaller than without the fee


UNKNOWN_FEES = [
    None,  # no fee facts at all
    FeeParams(),  # a body without feesEnabled and without a schedule
    FeeParams(enabled=True),  # fees on, rate unknown (Gamma without feeSchedule, /clob-markets failed)
    FeeParams(enabled=True, exponent=Decimal(1), maker_base_fee_bps=1000, taker_base_fee_bps=1000),  # legacy bps only
]


@pytest.mark.parametrize("fees", UNKNOWN_FEES)
def test_an_unknown_fee_schedule_never_sizes_a_buy_with_a_fee_of_0(fees):
    d = one(candidate(), v=view(markets={TOKEN: dataclasses.replace(market(), fees=fees)}))
    assert (d["action"], d["reason_code"]) == ("SKIP", "FEE_UNKNOWN") and "fee" in d["reason_detail"]


def test_a_captured_gamma_market_with_fees_on_and_no_schedule_is_fee_unknown():
    from pathlib import Path

    from horus.venue.polymarket.markets import parse_gamma_market

    body = json.loads(
        Path("/work/shared/fixtures/polymarket/nautilus_trader/captured/crates_test_data/gamma_market.json").read_text()
    )
    info = dataclasses.replace(parse_gamma_market(body)[0], token_id=TOKEN, condition_id=COND)
    assert info.fees.enabled is True and info.fees.rate is None and not info.fees.known
    assert one(candidate(), v=view(markets={TOKEN: info}))["reason_code"] == "FEE_UNKNOWN"


@pytest.mark.parametrize(
    "fees",
    [
        FeeParams(enabled=False),
        FeeParams(enabled=True, rate=Decimal(0)),
        FeeParams(rate=Decimal(0), exponent=Decimal(1)),
    ],
)
def test_a_market_known_to_charge_no_fee_is_copied_without_one(fees):
    assert fees.known
    d = one(candidate(price="0.50"), v=view(markets={TOKEN: dataclasses.replace(market(), fees=fees)}))
    assert d["action"] == "COPY" and d["reserved_e6"] == 9_690_000


def test_an_unknown_fee_schedule_does_not_block_sells():
    v = view(tokens=[(TOKEN, 1000 * E6)])
    state = bought(DecideState(), v)
    unknown = view(tokens=[(TOKEN, 1000 * E6)], markets={TOKEN: dataclasses.replace(market(), fees=None)})
    assert one(candidate(), DecideState(), unknown)["reason_code"] == "FEE_UNKNOWN"
    d = one(candidate(side="SELL", shares=5 * E6), state, unknown)
    assert d["action"] == "COPY" and d["side"] == "SELL"  # a fee only lowers the proceeds; caps count BUYs


def test_share_step_makes_notional_whole_cents():
    for price in ("0.5", "0.53", "0.125", "0.0625", "0.999", "0.01"):
        step = buy_share_step_e6(Decimal(price))
        notional = Decimal(step) / E6 * Decimal(price)
        assert notional == notional.quantize(Decimal("0.01")) and step % 10_000 == 0


# ------------------------------------------------------------------------------------------ price guard


def test_book_price_moved_past_the_slippage_skips():
    moved = {TOKEN: Quote(Decimal("0.45"), Decimal("0.55"), NOW - 1000)}
    d = one(candidate(price="0.50"), v=view(quotes=moved))
    assert d["reason_code"] == "PRICE_MOVED" and "0.55" in d["reason_detail"]
    ok = {TOKEN: Quote(Decimal("0.49"), Decimal("0.505"), NOW - 1000)}
    d = one(candidate(price="0.50"), v=view(quotes=ok))
    assert d["action"] == "COPY" and d["worst_price"] == "0.51"
    assert json.loads(d["inputs"])["reference"] == "book"


def test_no_book_falls_back_to_leader_price_only_while_young():
    assert one(candidate(age_us=2_000_000))["action"] == "COPY"
    d = one(candidate(age_us=6_000_000))
    assert d["reason_code"] == "NO_PRICE"


def test_quote_ttl_is_capped_at_five_seconds():
    stale = {TOKEN: Quote(Decimal("0.49"), Decimal("0.50"), NOW - 6_000_000)}
    v = view(quotes=stale)
    v.quote_ttl_us = 60_000_000  # a setting above the cap is ignored
    assert one(candidate(age_us=5_500_000), v=v)["reason_code"] == "NO_PRICE"


def test_worst_price_is_clamped_into_the_tick_range():
    d = one(candidate(price="0.985"), v=view({"slippage_bps": 500}))
    assert d["worst_price"] == "0.99"
    d = one(candidate(side="SELL", price="0.012"), v=view({"slippage_bps": 5000}))
    assert d["reason_code"] in ("NOTHING_TO_SELL",)  # guard runs before holdings; price itself was clamped


def test_fok_needs_depth():
    q = {TOKEN: Quote(Decimal("0.49"), Decimal("0.50"), NOW - 1000, asks=((Decimal("0.50"), 5 * E6),))}
    assert one(candidate(), v=view({"order_type": "FOK"}, quotes=q))["reason_code"] == "INSUFFICIENT_DEPTH"
    assert one(candidate(), v=view({"order_type": "FAK"}, quotes=q))["action"] == "COPY"


# ------------------------------------------------------------------------------------------ guardrails


def test_daily_cap_shrinks_then_skips_and_a_result_corrects_the_spend():
    v = view({"daily_cap": "25"})
    state = DecideState()
    first, second, third = (one(candidate(), state, v) for _ in range(3))
    assert first["action"] == second["action"] == "COPY"
    assert json.loads(second["inputs"]).get("shrunk_by") is None
    assert third["action"] == "COPY" and json.loads(third["inputs"])["shrunk_by"] == "DAILY_CAP"
    assert first["reserved_e6"] + second["reserved_e6"] + third["reserved_e6"] <= 25 * E6
    assert one(candidate(), state, v)["reason_code"] == "DAILY_CAP"
    apply_result(result(first, "NOT_FILLED", Decimal(0)), state)  # released: room again
    assert one(candidate(), state, v)["action"] == "COPY"


def test_follower_daily_cap_spans_follows():
    v = view(follower={"daily_cap": "15"})
    state = DecideState()
    assert one(candidate(), state, v)["action"] == "COPY"
    second = one(candidate(), state, v)
    assert second["action"] == "COPY" and json.loads(second["inputs"])["shrunk_by"] == "FOLLOWER_DAILY_CAP"
    assert one(candidate(), state, v)["reason_code"] == "FOLLOWER_DAILY_CAP"


def test_market_exposure_and_open_positions():
    v = view({"market_exposure_cap": "12"}, {"max_open_positions": 1})
    state = DecideState()
    a = one(candidate(), state, v)
    b = one(candidate(), state, v)
    assert a["action"] == "COPY" and b["action"] == "COPY" and a["reserved_e6"] + b["reserved_e6"] <= 12 * E6
    assert one(candidate(), state, v)["reason_code"] == "MARKET_EXPOSURE_CAP"
    assert one(candidate(token=TOKEN2), state, v)["reason_code"] == "MAX_OPEN_POSITIONS"


def test_balance_minus_reservations():
    v = view(balance=15 * E6)
    state = DecideState()
    assert one(candidate(), state, v)["action"] == "COPY"
    d = one(candidate(), state, v)
    assert d["action"] == "COPY" and json.loads(d["inputs"])["shrunk_by"] == "INSUFFICIENT_BALANCE"
    assert one(candidate(), state, v)["reason_code"] == "INSUFFICIENT_BALANCE"
    v.balances.clear()
    assert one(candidate(), DecideState(), v)["reason_code"] == "BALANCE_UNAVAILABLE"


def test_fills_newer_than_the_balance_read_are_subtracted():
    v = view(balance=20 * E6)
    state = DecideState()
    d = one(candidate(), state, v)
    apply_result(result(d), state, now_us=NOW + 10)  # filled after the balance was read
    later = one(candidate(), state, v, now=NOW + 20)
    assert json.loads(later["inputs"])["available_e6"] == 20 * E6 - d["reserved_e6"]


@pytest.mark.parametrize(
    "follow, code",
    [
        ({"price_min": "0.6"}, "PRICE_OUT_OF_BAND"),
        ({"markets_deny": [COND]}, "MARKET_DENIED"),
        ({"markets_allow": ["tag:sports"]}, "MARKET_NOT_ALLOWED"),
        ({"max_fill_age_s": 0.5}, "FILL_TOO_OLD"),
        ({"enabled": False}, "FOLLOW_DISABLED"),
        ({"copy_sells": False}, None),
    ],
)
def test_filters(follow, code):
    d = one(candidate(), v=view(follow))
    assert d["reason_code"] == code


def test_allow_by_category_and_tag():
    m = market(category="Sports", tags=("nba",))
    assert one(candidate(), v=view({"markets_allow": ["tag:nba"]}, markets={TOKEN: m}))["action"] == "COPY"
    assert (
        one(candidate(), v=view({"markets_deny": ["category:sports"]}, markets={TOKEN: m}))["reason_code"]
        == "MARKET_DENIED"
    )


def test_unknown_configs_and_markets_are_skips_with_reasons():
    v = view()
    v.config.follows.clear()
    v.config.invalid["f1"] = "invalid follow: sizing.amount: required"
    assert one(candidate(), v=v)["reason_code"] == "FOLLOW_INVALID"
    assert one(candidate(token="999"))["reason_code"] == "MARKET_UNKNOWN"
    closed = view(markets={TOKEN: market(closed=True)})
    assert one(candidate(), v=closed)["reason_code"] == "MARKET_CLOSED"


@pytest.mark.parametrize(
    "scope, target, code",
    [
        ("GLOBAL", None, "PAUSED_GLOBAL"),
        ("FOLLOWER", FOLLOWER, "PAUSED_FOLLOWER"),
        ("MARKET", COND, "PAUSED_MARKET"),
        ("MARKET", TOKEN, "PAUSED_MARKET"),
    ],
)
def test_pauses_and_resume(scope, target, code):
    v = view()
    apply_control(control_command(scope, "PAUSE", target, reason="maintenance"), v.control)
    d = one(candidate(), v=v)
    assert d["reason_code"] == code and "maintenance" in d["reason_detail"]
    apply_control(control_command(scope, "RESUME", target), v.control)
    assert one(candidate(), v=v)["action"] == "COPY"


def test_kill_switch():
    v = view()
    apply_control(control_command("GLOBAL", "KILL", reason="incident"), v.control)
    assert one(candidate(), v=v)["reason_code"] == "KILL_SWITCH"


# ------------------------------------------------------------------------------------------ sells


def bought(state, v, shares_price=("0.50",), leader=LEADER):
    for price in shares_price:
        d = one(candidate(price=price, leader=leader), state, v)
        apply_result(result(d), state)
    return state


def test_sell_copies_the_leaders_fraction_of_what_was_bought_copying_that_leader():
    v = view(tokens=[(TOKEN, 1000 * E6)])
    state = bought(DecideState(), v)  # leader bought 20, we bought 19.6
    held = state.books[FOLLOWER].positions[(TOKEN, LEADER)].shares_e6
    d = one(candidate(side="SELL", shares=5 * E6), state, v)  # leader sells a quarter
    assert d["action"] == "COPY" and d["side"] == "SELL" and d["size_e6"] == held // 4 // 10_000 * 10_000
    assert d["worst_price"] == "0.49"


def test_sell_more_than_held_sells_what_is_held_and_never_more_than_the_venue_has():
    v = view(tokens=[(TOKEN, 1000 * E6)])
    state = bought(DecideState(), v)
    held = state.books[FOLLOWER].positions[(TOKEN, LEADER)].shares_e6
    d = one(candidate(side="SELL", shares=500 * E6), state, v)
    assert d["size_e6"] == held
    # a second sell while the first is open has nothing left to sell
    assert one(candidate(side="SELL", shares=1 * E6), state, v)["reason_code"] == "NOTHING_TO_SELL"
    v2 = view(tokens=[(TOKEN, 3 * E6)])
    state2 = bought(DecideState(), v2)
    capped = one(candidate(side="SELL", shares=20 * E6), state2, v2)
    assert capped["size_e6"] == 3 * E6 and json.loads(capped["inputs"])["capped_by_venue_balance"]


def test_sell_attribution_is_per_leader_and_dust_is_reported():
    v = view(tokens=[(TOKEN, 1000 * E6)])
    f2 = parse_follow_config(
        {"follow_id": "f2", "follower": FOLLOWER, "leader": OTHER_LEADER, "sizing": {"amount": "10"}}
    )
    v.config.follows["f2"] = f2
    state = bought(DecideState(), v)
    other = one(candidate(side="SELL", leader=OTHER_LEADER, follow="f2"), state, v)
    assert other["reason_code"] == "NOTHING_TO_SELL"  # bought copying LEADER, not OTHER_LEADER
    dust = one(candidate(side="SELL", shares=E6 // 100), state, v)  # 0.05% of the leader's position
    assert dust["reason_code"] == "SELL_DUST" and "stay on the books" in dust["reason_detail"]
    assert state.books[FOLLOWER].positions[(TOKEN, LEADER)].shares_e6 > 0


def test_sell_needs_the_venue_balance():
    v = view()
    state = bought(DecideState(), v)
    assert one(candidate(side="SELL"), state, v)["reason_code"] == "BALANCE_UNAVAILABLE"


# ------------------------------------------------------------------------------------------ folds


def test_redelivered_candidate_gets_no_second_decision():
    state = DecideState()
    c = candidate()
    one(c, state)
    assert decide(c, state, now_us=NOW + 1, view=view())[0] == []


def test_unknown_results_keep_the_reservation_and_terminal_ones_book_once():
    state = DecideState()
    d = one(candidate(), state)
    book = state.books[FOLLOWER]
    apply_result(result(d, "UNKNOWN", Decimal(0)), state)
    assert d["intent_id"] in book.reservations
    r = result(d, "PARTIAL", Decimal("0.5"))
    apply_result(r, state)
    apply_result(r, state)  # duplicate delivery
    assert d["intent_id"] not in book.reservations
    assert book.positions[(TOKEN, LEADER)].shares_e6 == r["filled_shares_e6"]


def test_circuit_breaker_counts_failures_in_a_window():
    state = DecideState()
    for i in range(4):
        d = one(candidate(), state)
        apply_result(result(d, "REJECTED" if i % 2 else "FILLED"), state, now_us=NOW + i)
    assert failure_rate(state, NOW + 10, 60_000_000) == (2, 4)
    assert failure_rate(state, NOW + 120_000_000, 60_000_000) == (0, 0)


# ------------------------------------------------------------------------------------------ properties

CAPS = st.sampled_from([None, "5", "12", "30", "80"])
step = st.one_of(
    st.tuples(
        st.just("fill"),
        st.sampled_from(["BUY", "BUY", "SELL"]),
        st.sampled_from([TOKEN, TOKEN2]),
        st.sampled_from(["0.03", "0.27", "0.5", "0.731", "0.97"]),
        st.integers(1, 400),
    ),
    st.tuples(
        st.just("result"),
        st.integers(0, 50),
        st.sampled_from(["FILLED", "PARTIAL", "NOT_FILLED", "UNKNOWN", "REJECTED"]),
        st.sampled_from(["0", "0.3", "1"]),
    ),
    st.tuples(st.just("config"), CAPS, CAPS, CAPS, st.sampled_from(["fixed", "ratio", "balance_pct"])),
    # the chain settles a result that was the venue's match: as matched, or fewer shares (a trade FAILED)
    st.tuples(st.just("correction"), st.integers(0, 50), st.sampled_from(["0", "0.3", "1"])),
)


def rebuild(state: DecideState, timeline) -> DecideState:
    """What decide's rebuild does: the decisions first, then the results (two topics read one after the other)."""
    for kind, event, *_ in timeline:
        if kind == "decision":
            apply_decision(event, state)
    for kind, event, *_ in timeline:
        if kind == "result":
            apply_result(event, state)
    return state


def history_view(tick):
    markets = {TOKEN: market(tick=tick, fee_rate="0.02"), TOKEN2: market(TOKEN2, COND2, tick=tick)}
    return view(markets=markets, tokens=[(TOKEN, 10**6 * E6), (TOKEN2, 10**6 * E6)], balance=300 * E6)


def _venue_held(settled: dict[str, dict], timeline: list, token: str) -> int:
    """Shares of `token` the follower holds at the venue: what its settled BUYs filled less what its SELLs sold."""
    decisions = {e[1]["intent_id"]: e[1] for e in timeline if e[0] == "decision" and e[1]["action"] == "COPY"}
    held = 0
    for intent, r in settled.items():
        d = decisions[intent]
        if d["token_id"] == token:
            held += r["filled_shares_e6"] if d["side"] == "BUY" else -r["filled_shares_e6"]
    return held


def run_history(steps, tick, v=None, *, before_step=None, stamp_results=False):
    """Drive decide through `steps`; returns the state and the timeline of decisions ("decision", d, follow,
    follower, candidate) and results ("result", r, d). `before_step(i, now, state, timeline)` runs before each
    step and once after the last; `stamp_results` stamps a result with the time it is folded (as a rebuild sees it)."""
    v = v or history_view(tick)
    state, timeline = DecideState(), []
    settled: dict[str, dict] = {}  # intent -> its latest terminal result
    for i, s in enumerate(steps + [("end",)]):
        now = NOW + i * 1000
        if before_step is not None:
            before_step(i, now, state, timeline)
        if s[0] == "fill":
            _, side, token, price, shares = s
            c = candidate(side=side, price=price, shares=shares * E6 // 4, token=token, age_us=1000, tx=f"0x{i:064x}")
            out, state = decide(c, state, now_us=now, view=v)
            timeline.extend(("decision", d, v.config.follows["f1"], v.config.followers[FOLLOWER], c) for d in out)
        elif s[0] == "result":
            copies = [e[1] for e in timeline if e[0] == "decision" and e[1]["action"] == "COPY"]
            if copies:
                d = copies[s[1] % len(copies)]
                r = dict(settled.get(d["intent_id"]) or {})  # a settled one comes again as it was: a redelivery
                if not r:
                    ratio = Decimal(s[3]) if s[2] in ("FILLED", "PARTIAL") else Decimal(0)
                    if d["side"] == "SELL":  # the venue sells only shares the follower holds (a BUY may have failed)
                        held = max(_venue_held(settled, timeline, d["token_id"]), 0)
                        ratio = min(ratio, Decimal(held) / d["size_e6"])
                    # fills from the venue's match are not final until settled on chain (a correction may follow)
                    r = result(d, s[2], ratio, final=ratio == 0)
                    if r["status"] in TERMINAL:
                        settled[d["intent_id"]] = r
                if stamp_results:
                    r["envelope"] = {**r["envelope"], "produced_at_us": now}
                apply_result(r, state, now_us=now)
                timeline.append(("result", r, d))
        elif s[0] == "correction":  # the chain settles a match: fewer shares when a trade FAILED; final from now
            done = [
                d
                for d in (e[1] for e in timeline if e[0] == "decision")
                if d["intent_id"] in settled and not settled[d["intent_id"]]["final"]
            ]
            if done:
                d = done[s[1] % len(done)]
                before = settled[d["intent_id"]]["filled_shares_e6"] / Decimal(d["size_e6"])
                ratio = min(Decimal(s[2]), before)
                status = (
                    settled[d["intent_id"]]["status"] if ratio == before else "NOT_FILLED" if ratio == 0 else "PARTIAL"
                )
                r = result(d, status, ratio, seq=2)
                r["envelope"] = {**r["envelope"], "event_id": ids.result_id(d["intent_id"], 2)}
                apply_result(r, state, now_us=now)
                settled[d["intent_id"]] = r
                timeline.append(("result", r, d))
        elif s[0] == "config":
            _, follow_cap, follower_cap, exposure_cap, mode = s
            sizing = {"mode": mode, "amount": "9", "ratio": "0.5", "balance_pct": "5"}
            v.config.follows["f1"] = parse_follow_config(
                {
                    "follow_id": "f1",
                    "follower": FOLLOWER,
                    "leader": LEADER,
                    "sizing": sizing,
                    "daily_cap": follow_cap,
                    "market_exposure_cap": exposure_cap,
                }
            )
            v.config.followers[FOLLOWER] = parse_follower({"follower": FOLLOWER, "daily_cap": follower_cap})
    return state, timeline


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=5, max_size=80), st.sampled_from(["0.01", "0.001", "0.1"]))
def test_caps_sells_and_validity_hold_over_random_histories(steps, tick):
    check_history(*run_history(steps, tick), tick)


def test_a_long_seeded_history_exercises_copies_caps_and_sells():
    import random

    rng = random.Random(7)
    steps = [_random_step(rng) for _ in range(600)]
    state, timeline = run_history(steps, "0.01")
    check_history(state, timeline, "0.01")
    decisions = [e[1] for e in timeline if e[0] == "decision"]
    reasons = {d["reason_code"] for d in decisions}
    assert {"DAILY_CAP", "NOTHING_TO_SELL"} <= reasons or {"FOLLOWER_DAILY_CAP", "NOTHING_TO_SELL"} <= reasons
    assert any(d["action"] == "COPY" and d["side"] == "SELL" for d in decisions)
    assert sum(d["action"] == "COPY" for d in decisions) > 50


def _random_step(rng):
    roll = rng.random()
    if roll < 0.6:
        return (
            "fill",
            rng.choice(["BUY", "BUY", "SELL"]),
            rng.choice([TOKEN, TOKEN2]),
            rng.choice(["0.03", "0.27", "0.5", "0.731", "0.97"]),
            rng.randint(1, 400),
        )
    if roll < 0.95:
        return (
            "result",
            rng.randint(0, 50),
            rng.choice(["FILLED", "PARTIAL", "NOT_FILLED", "UNKNOWN", "REJECTED"]),
            rng.choice(["0", "0.3", "1"]),
        )
    caps = [None, "5", "12", "30", "80"]
    return (
        "config",
        rng.choice(caps),
        rng.choice(caps),
        rng.choice(caps),
        rng.choice(["fixed", "ratio", "balance_pct"]),
    )


def check_history(state, timeline, tick):
    tick_d = Decimal(tick)
    # an independent ledger, walked in the order things happened
    spent = 0  # today's BUY collateral: open reservations + what filled
    open_buy: dict[str, int] = {}
    open_sell: dict[str, int] = {}
    held: dict[str, int] = {}
    cost_basis: dict[str, int] = {}
    done: dict[str, tuple[int, int]] = {}  # intent -> (shares, collateral) its terminal results booked
    for kind, event, *rest in timeline:
        if kind == "result":
            d = rest[0]
            intent = d["intent_id"]
            if event["status"] == "UNKNOWN":
                continue
            token, filled = d["token_id"], event["filled_shares_e6"]
            before_shares, before_amount = done.get(intent, (0, 0))
            if d["side"] == "BUY":
                actual = event["filled_collateral_e6"] + event["fee_e6"] if filled else 0
                if intent not in done:
                    assert actual <= open_buy[intent][0]
                    spent -= open_buy.pop(intent)[0]
                spent += actual - before_amount  # a correction books the difference
                held[token] = held.get(token, 0) + filled - before_shares
                cost_basis[token] = cost_basis.get(token, 0) + actual - before_amount
                done[intent] = (filled, actual)
            else:
                if intent not in done:
                    open_sell.pop(intent)
                    done[intent] = (0, 0)
                if filled < before_shares:  # a sold trade FAILED: the shares and their basis come back
                    back = before_shares - filled
                    restored = before_amount * back // before_shares
                    held[token] += back
                    cost_basis[token] += restored
                    done[intent] = (filled, before_amount - restored)
                elif filled > before_shares:
                    more = filled - before_shares
                    released = cost_basis[token] * more // held[token] if held.get(token) else 0
                    cost_basis[token] = cost_basis.get(token, 0) - released
                    held[token] = held.get(token, 0) - more
                    done[intent] = (filled, before_amount + released)
                assert held[token] >= 0
            continue
        d, follow, follower = event, rest[0], rest[1]
        if d["action"] != "COPY":
            assert d["size_e6"] == 0 and d["reason_code"]
            continue
        price = Decimal(d["worst_price"])
        assert price % tick_d == 0 and tick_d <= price <= 1 - tick_d
        assert d["size_e6"] > 0 and d["size_e6"] % 10_000 == 0
        token = d["token_id"]
        if d["side"] == "BUY":
            notional = Decimal(d["size_e6"]) * price / E6
            assert notional == notional.quantize(Decimal("0.01")) and notional >= 1
            cost = d["reserved_e6"]
            for cap in (follow.daily_cap, follower.daily_cap):
                if cap is not None:
                    assert spent + cost <= cap * E6
            exposure = cost_basis.get(token, 0) + sum(c for c, t in open_buy.values() if t == token)
            if follow.market_exposure_cap is not None:
                assert exposure + cost <= follow.market_exposure_cap * E6
            spent += cost
            open_buy[d["intent_id"]] = (cost, token)
        else:
            assert d["size_e6"] <= held.get(token, 0) - sum(n for n, t in open_sell.values() if t == token)
            open_sell[d["intent_id"]] = (d["size_e6"], token)
    for book in state.books.values():
        assert all(p.shares_e6 >= 0 and p.cost_e6 >= 0 for p in book.positions.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(step, max_size=40), st.sampled_from(["0.01", "0.001"]))
def test_same_inputs_same_decisions_and_replay_rebuilds_the_state(steps, tick):
    state1, timeline1 = run_history(steps, tick)
    state2, timeline2 = run_history(steps, tick)
    assert [e[1] for e in timeline1] == [e[1] for e in timeline2]
    # the state a restarted stage rebuilds from copy.decisions + execution.results equals the live one
    rebuilt = rebuild(DecideState(), timeline1)
    live, again = state1.books.get(FOLLOWER), rebuilt.books.get(FOLLOWER)
    if live is None:
        assert again is None
        return
    assert (again.decided, again.reservations, again.booked, again.positions, again.leader_holdings) == (
        live.decided,
        live.reservations,
        live.booked,
        live.positions,
        live.leader_holdings,
    )


# ------------------------------------------------------------------------------------------ D12: fills from the future


def test_a_fill_dated_beyond_the_clock_slack_is_skipped_not_copied_at_the_leader_price():
    from horus.domain.clock import CLOCK_SLACK_S

    year_ahead = one(candidate(age_us=-365 * 86_400 * E6))
    assert (year_ahead["action"], year_ahead["reason_code"]) == ("SKIP", "FILL_IN_FUTURE")
    assert "ahead of our clock" in year_ahead["reason_detail"]
    beyond = one(candidate(age_us=-(CLOCK_SLACK_S + 1) * E6))
    assert beyond["reason_code"] == "FILL_IN_FUTURE"
    # within the slack a fill is as fresh as any (clocks differ by seconds): copied, the leader price as reference
    within = one(candidate(age_us=-(CLOCK_SLACK_S - 1) * E6))
    assert within["action"] == "COPY" and json.loads(within["inputs"])["reference"] == "leader"


def test_fill_in_future_comes_before_fill_too_old_and_before_market_checks():
    far = one(candidate(age_us=-(2**62), token="999"), v=view({"max_fill_age_s": 0.5}))
    assert far["reason_code"] == "FILL_IN_FUTURE"


# ------------------------------------------------------------------------------------------ hostile candidates
# Well-typed values anyone with broker access can put on copy.candidates (or a source on leader.fills)


@pytest.mark.parametrize(
    "change, detail",
    [
        ({"leader_price": "abc"}, "leader price 'abc' is not a number"),
        ({"leader_price": "NaN"}, "is not a number"),
        ({"leader_price": "Infinity"}, "outside (0, 1]"),
        ({"leader_price": "0"}, "outside (0, 1]"),
        ({"leader_price": "-0.5"}, "outside (0, 1]"),
        ({"leader_price": "1.5"}, "outside (0, 1]"),
        ({"leader_shares_e6": 0}, "leader shares"),
        ({"leader_shares_e6": -20 * E6}, "leader shares"),
        ({"leader_collateral_e6": -1}, "leader collateral"),
    ],
)
@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_hostile_candidate_values_are_skipped_with_a_reason(change, detail, side):
    v = view(tokens=[(TOKEN, 1000 * E6)])
    state = bought(DecideState(), v)
    before = state.book(FOLLOWER).leader_holdings.copy()
    d = one({**candidate(side=side), **change}, state, v)
    assert (d["action"], d["reason_code"]) == ("SKIP", "CANDIDATE_INVALID") and detail in d["reason_detail"]
    if change.get("leader_shares_e6", 1) <= 0:  # the leader's holdings (the SELL fraction) are not corrupted
        assert state.book(FOLLOWER).leader_holdings == before


@pytest.mark.parametrize(
    "change, error",
    [
        ({"side": "UNRECOGNIZED"}, "side"),  # what a newer writer's side reads as: no decision can be written for it
        ({"token_id": "1" * 5000}, "token_id"),  # copied into the decision and its detail: past the broker's limit
        ({"follow_id": "f" * 300_000}, "follow_id"),
        ({"leader_price": "0." + "5" * 100_000}, "leader_price"),
    ],
)
def test_candidates_no_decision_can_be_written_for_raise_before_touching_the_state(change, error):
    from horus.domain.decide import CandidateInvalid

    state = DecideState()
    with pytest.raises(CandidateInvalid, match=error):
        decide({**candidate(), **change}, state, now_us=NOW, view=view())
    assert state.books == {}  # nothing reserved, nothing remembered: the runner parks the candidate


def test_unknown_token_ids_are_skipped_as_unknown_markets():
    for token in ("999", "abc", "../../admin", "-1"):
        assert one(candidate(token=token))["reason_code"] == "MARKET_UNKNOWN"


def test_a_skip_with_negative_leader_shares_never_makes_the_leaders_holdings_negative():
    state, v = DecideState(), view()
    d = one(candidate(shares=-5 * E6), state, v)
    assert d["action"] == "SKIP"
    assert all(held >= 0 for held in state.book(FOLLOWER).leader_holdings.values())


# ------------------------------------------------------------------------------------------ corrections (D6, D11)


def test_a_correction_of_a_settled_result_books_the_difference():
    """The executor records a result again when the first was wrong: a matched trade FAILED on chain, or another
    writer settled NOT_FILLED an order that filled. Decide books the difference between the two, never both."""
    state, v = DecideState(), view()
    buy = one(candidate(price="0.50"), state, v)
    book = state.books[FOLLOWER]
    paid = result(buy, "FILLED", fee_e6=50_000)
    apply_result(paid, state, now_us=NOW)
    spent_after_fill = book.spent(NOW // (86_400 * E6), "*")
    assert book.positions[(TOKEN, LEADER)].shares_e6 == buy["size_e6"] and book.reserved_cost == 0
    failed = {**result(buy, "NOT_FILLED", Decimal(0), seq=2), "envelope": {**paid["envelope"], "event_id": "second"}}
    apply_result(failed, state, now_us=NOW)
    day = NOW // (86_400 * E6)
    assert book.positions[(TOKEN, LEADER)].shares_e6 == 0 and book.positions[(TOKEN, LEADER)].cost_e6 == 0
    assert book.exposure(COND) == 0 and book.spent(day, "*") == spent_after_fill - paid["filled_collateral_e6"] - 50_000
    apply_result(failed, state, now_us=NOW)  # redelivered: nothing more
    assert book.positions[(TOKEN, LEADER)].shares_e6 == 0 and book.spent(day, "*") == 0
    apply_result(paid, state, now_us=NOW)  # the first result redelivered late: older than what is booked
    assert book.positions[(TOKEN, LEADER)].shares_e6 == 0 and book.spent(day, "*") == 0
    apply_result({**paid, "seq": 3}, state, now_us=NOW)  # and back again (a fill another writer missed)
    assert book.positions[(TOKEN, LEADER)].shares_e6 == buy["size_e6"] and book.spent(day, "*") == spent_after_fill
    assert len(state.outcomes) == 1  # the breaker counts each execution once


def test_a_failed_sell_gives_the_shares_and_their_cost_basis_back():
    state, v = DecideState(), view(tokens=[(TOKEN, 100 * E6)])
    buy = one(candidate(price="0.50"), state, v)
    apply_result(result(buy, "FILLED"), state, now_us=NOW)
    book = state.books[FOLLOWER]
    held = book.positions[(TOKEN, LEADER)]
    shares, basis = held.shares_e6, held.cost_e6
    sell = one(candidate(side="SELL", price="0.50", shares=10 * E6), state, v)
    assert sell["action"] == "COPY"
    apply_result(result(sell, "FILLED", price="0.5"), state, now_us=NOW)
    assert held.shares_e6 == shares - sell["size_e6"] and held.cost_e6 < basis
    corrected = {
        **result(sell, "NOT_FILLED", Decimal(0), seq=2),
        "envelope": {"event_id": "again", "produced_at_us": NOW},
    }
    apply_result(corrected, state, now_us=NOW)
    assert (held.shares_e6, held.cost_e6) == (shares, basis) and book.exposure(COND) == basis


# ------------------------------------------------------------------------------------------ sells: every rule pinned
# Mutation testing (make mutation) found these rules of the sell sizing, the depth check and the folds unpinned.


def sell_inputs(d):
    return json.loads(d["inputs"])


def test_a_follow_that_does_not_copy_sells_skips_them():
    v = view({"copy_sells": False}, tokens=[(TOKEN, 1000 * E6)])
    state = bought(DecideState(), v)  # its buys are copied
    d = one(candidate(side="SELL"), state, v)
    assert (d["reason_code"], d["reason_detail"]) == ("SELLS_DISABLED", "the follow does not copy sells")


def test_a_sell_whose_buys_decide_never_saw_sells_everything_held_from_that_leader():
    # bought copying LEADER through f1; the leader's sell reaches us through f2 (same leader), which saw no buy
    v = view(tokens=[(TOKEN, 1000 * E6)])
    v.config.follows["f2"] = parse_follow_config(
        {"follow_id": "f2", "follower": FOLLOWER, "leader": LEADER, "sizing": {"amount": "10"}}
    )
    state = bought(DecideState(), v)
    held = state.books[FOLLOWER].positions[(TOKEN, LEADER)].shares_e6
    d = one(candidate(side="SELL", shares=5 * E6, follow="f2"), state, v)
    assert d["action"] == "COPY" and d["size_e6"] == held  # the whole position, never more
    inputs = sell_inputs(d)
    assert (inputs["held_e6"], inputs["leader_held_e6"], inputs["fraction"]) == (held, 0, "1")
    assert "capped_by_venue_balance" not in inputs


def test_nothing_to_sell_reports_what_was_looked_at():
    d = one(candidate(side="SELL"), DecideState(), view(tokens=[(TOKEN, 1000 * E6)]))
    assert d["reason_code"] == "NOTHING_TO_SELL"
    assert d["reason_detail"] == "the follower holds nothing of this token bought copying this leader"
    inputs = sell_inputs(d)
    assert (inputs["held_e6"], inputs["leader_held_e6"], inputs["fraction"]) == (0, 0, "1")


def test_a_speck_held_is_dust_on_the_books_not_nothing():
    state = DecideState()
    state.book(FOLLOWER).positions[(TOKEN, LEADER)] = Position(1, 1, COND)
    d = one(candidate(side="SELL"), state, view(tokens=[(TOKEN, 1000 * E6)]))
    assert d["reason_code"] == "SELL_DUST"
    assert d["reason_detail"] == "0 shares at 0.49 is under the venue's $1 minimum; 1e-06 shares stay on the books"


def test_a_sell_under_one_dollar_is_dust_and_one_dollar_exactly_is_copied():
    v = view(tokens=[(TOKEN, 1000 * E6)])
    state = bought(DecideState(), v)  # 19 shares
    d = one(candidate(side="SELL", shares=1 * E6), state, v)  # 5 % of the leader's 20: 0.95 x 0.49
    assert d["reason_code"] == "SELL_DUST"
    assert d["reason_detail"] == "0.95 shares at 0.49 is under the venue's $1 minimum; 19 shares stay on the books"
    two = DecideState()
    two.book(FOLLOWER).positions[(TOKEN, LEADER)] = Position(2 * E6, E6, COND)
    d = one(candidate(side="SELL", price="0.51"), two, v)  # worst 0.51 - 2 % -> 0.50: 2 x 0.50 = $1.00
    assert (d["action"], d["size_e6"], d["worst_price"]) == ("COPY", 2 * E6, "0.50")


def test_the_venue_balance_check_names_the_token():
    v = view()
    state = bought(DecideState(), v)
    assert (
        one(candidate(side="SELL"), state, v)["reason_detail"]
        == f"the venue's balance of token {TOKEN} could not be read"
    )


def test_open_sells_come_off_the_venue_balance():
    v = view(tokens=[(TOKEN, 15 * E6)])  # the venue holds less than the 19 decide booked
    state = bought(DecideState(), v)
    first = one(candidate(side="SELL", shares=10 * E6), state, v)  # half of the leader's 20
    assert first["size_e6"] == 9_500_000
    rest = one(candidate(side="SELL", shares=10 * E6), state, v)  # the leader's other half: the rest of ours
    assert rest["size_e6"] == 15 * E6 - 9_500_000 and sell_inputs(rest)["capped_by_venue_balance"]
    # the venue says even less than is already on sale: nothing left to sell, and the detail says 0
    v.balances[FOLLOWER] = Balance(1000 * E6, NOW - 1, ((TOKEN, 5 * E6),))
    state.books[FOLLOWER].leader_holdings[("f1", TOKEN)] = 20 * E6
    none_left = one(candidate(side="SELL", shares=20 * E6), state, v)
    assert none_left["reason_code"] == "SELL_DUST" and none_left["reason_detail"].startswith("0 shares at 0.49 ")


def test_a_sell_of_exactly_the_venue_balance_is_not_capped():
    v = view(tokens=[(TOKEN, 1000 * E6)])
    state = bought(DecideState(), v)
    held = state.books[FOLLOWER].positions[(TOKEN, LEADER)].shares_e6
    v.balances[FOLLOWER] = Balance(1000 * E6, NOW - 1, ((TOKEN, held),))
    d = one(candidate(side="SELL"), state, v)
    assert d["size_e6"] == held and "capped_by_venue_balance" not in sell_inputs(d)


def test_fok_sells_need_bids_at_or_above_the_worst_price():
    v = view({"order_type": "FOK"}, tokens=[(TOKEN, 1000 * E6)])
    state = bought(DecideState(), v)  # 19 shares; a SELL of all of them at worst 0.49
    book = state.books[FOLLOWER]

    def sell(bids, order_type="FOK"):
        v.config.follows["f1"] = v.config.follows["f1"].model_copy(update={"order_type": order_type})
        v.quotes[TOKEN] = Quote(Decimal("0.50"), Decimal("0.51"), NOW - 1000, bids=bids)
        book.leader_holdings[("f1", TOKEN)] = 20 * E6
        d = one(candidate(side="SELL"), state, v)
        if d["action"] == "COPY":
            book.release(d["intent_id"])  # each case on the same holdings
        return d

    at_worst = sell(((Decimal("0.50"), 10 * E6), (Decimal("0.49"), 9 * E6), (Decimal("0.48"), 100 * E6)))
    assert (at_worst["action"], at_worst["worst_price"], at_worst["size_e6"]) == ("COPY", "0.49", 19 * E6)
    thin = sell(((Decimal("0.50"), 1 * E6), (Decimal("0.48"), 100 * E6)))
    assert (thin["reason_code"], thin["reason_detail"]) == (
        "INSUFFICIENT_DEPTH",
        "1 shares bid at >= 0.49, FOK needs 19",
    )
    assert sell(((Decimal("0.50"), 1 * E6),), order_type="FAK")["action"] == "COPY"  # FAK takes what there is


def test_fok_buys_need_asks_at_or_below_the_worst_price():
    def buy(asks):
        q = {TOKEN: Quote(Decimal("0.49"), Decimal("0.50"), NOW - 1000, asks=asks)}
        return one(candidate(), v=view({"order_type": "FOK"}, quotes=q))  # 19 shares at worst 0.51

    exact = buy(((Decimal("0.50"), 10 * E6), (Decimal("0.51"), 9 * E6), (Decimal("0.52"), 100 * E6)))
    assert (exact["action"], exact["size_e6"]) == ("COPY", 19 * E6)
    above = buy(((Decimal("0.50"), 10 * E6), (Decimal("0.52"), 100 * E6)))
    assert (above["reason_code"], above["reason_detail"]) == (
        "INSUFFICIENT_DEPTH",
        "10 shares offered at <= 0.51, FOK needs 19",
    )


def test_the_breaker_counts_failures_not_successes_and_keeps_the_window_edge():
    state = DecideState()
    for i, status in enumerate(("FILLED", "REJECTED", "FILLED")):
        apply_result(result(one(candidate(), state), status), state, now_us=NOW + i)
    assert failure_rate(state, NOW + 2, 60_000_000) == (1, 3)
    assert failure_rate(state, NOW + 60_000_000, 60_000_000) == (1, 3)  # the first is exactly a window old
    assert failure_rate(state, NOW + 60_000_001, 60_000_000) == (1, 2)


def test_a_result_says_whether_its_fills_are_final():
    state = DecideState()
    d = one(candidate(), state)
    apply_result(result(d, final=False), state)
    assert state.books[FOLLOWER].booked[d["intent_id"]].final is False
    settled = result(d)
    del settled["final"]  # written before results carried it: final
    apply_result(settled, state)
    assert state.books[FOLLOWER].booked[d["intent_id"]].final is True


def test_a_correction_of_the_fee_alone_is_booked():
    state = DecideState()
    d = one(candidate(), state)
    book = state.books[FOLLOWER]
    apply_result(result(d, fee_e6=0), state)
    cost, spent = book.positions[(TOKEN, LEADER)].cost_e6, book.spent(NOW // (86_400 * E6), "f1")
    apply_result(result(d, fee_e6=50_000), state)  # same shares, the chain's fee
    assert book.positions[(TOKEN, LEADER)].cost_e6 == cost + 50_000 == book.exposure(COND, LEADER)
    assert book.spent(NOW // (86_400 * E6), "f1") == spent + 50_000


def sold(decision, shares_e6):
    return {
        **result(decision, "PARTIAL" if shares_e6 < decision["size_e6"] else "FILLED", Decimal(0)),
        "filled_shares_e6": shares_e6,
        "filled_collateral_e6": shares_e6 // 2,
        "avg_price": "0.5",
    }


def test_sell_results_and_their_corrections_release_and_restore_the_exact_cost_basis():
    v = view(tokens=[(TOKEN, 1000 * E6)])
    state = DecideState()
    buy = one(candidate(), state, v)
    apply_result(result(buy, fee_e6=12_346), state)  # basis 9_702_346: not a multiple of the share counts
    book = state.books[FOLLOWER]
    position = book.positions[(TOKEN, LEADER)]
    shares, basis = position.shares_e6, position.cost_e6
    assert (shares, basis) == (19 * E6, 9_702_346)
    sell = one(candidate(side="SELL", shares=10 * E6), state, v)  # half
    assert sell["size_e6"] == 9_500_000

    def holds(expected_shares, expected_cost):
        assert (position.shares_e6, position.cost_e6) == (expected_shares, expected_cost)
        assert book.exposure(COND) == book.exposure(COND, LEADER) == expected_cost
        booked = book.booked[sell["intent_id"]]  # what the sell took out so far, for the next correction
        assert (booked.shares_e6, booked.amount_e6) == (shares - expected_shares, basis - expected_cost)

    apply_result(sold(sell, 3_800_000), state)  # partly: the basis of 3.8 of 19 shares leaves
    first = basis * 3_800_000 // shares
    holds(shares - 3_800_000, basis - first)
    apply_result(sold(sell, 9_500_000), state)  # corrected up: the basis of 5.7 of the 15.2 left
    second = (basis - first) * 5_700_000 // (shares - 3_800_000)
    holds(shares - 9_500_000, basis - first - second)
    apply_result(sold(sell, 1_900_000), state)  # corrected down (trades FAILED): 7.6 shares come back
    restored = (first + second) * 7_600_000 // 9_500_000
    holds(shares - 1_900_000, basis - first - second + restored)


def test_a_sell_result_without_a_position_books_nothing():
    # a rebuild whose buys left the topics' retention: the sell's result finds no position
    v = view(tokens=[(TOKEN, 1000 * E6)])
    sell = one(candidate(side="SELL"), bought(DecideState(), v), v)
    fresh = DecideState()
    apply_decision(sell, fresh)
    apply_result(sold(sell, sell["size_e6"]), fresh)
    book = fresh.books[FOLLOWER]
    assert book.positions[(TOKEN, LEADER)] == Position(0, 0, COND) and book.exposure(COND) == 0


def test_token_ids_are_decimal_uint256_text():
    assert token_id_wellformed("7") and token_id_wellformed("9" * 78)
    assert not token_id_wellformed("") and not token_id_wellformed("9" * 79) and not token_id_wellformed("0x1")
