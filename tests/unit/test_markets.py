"""Market metadata parsers on the real captured Gamma / CLOB / WebSocket bodies."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from horus.venue.polymarket.markets import (
    MarketDataError,
    parse_clob_market,
    parse_clob_market_compact,
    parse_clob_markets_page,
    parse_fee_rate,
    parse_gamma_market,
    parse_gamma_markets,
    parse_market_by_token,
    parse_neg_risk,
    parse_tick_size,
    parse_tick_size_change,
)

CAPTURED = Path("/work/shared/fixtures/polymarket/nautilus_trader/captured")
CRATES = CAPTURED / "crates_test_data"
PY_HTTP = CAPTURED / "py_http_responses"
GAMMA_MARKET_FILES = sorted(p.name for p in CRATES.glob("gamma_market*.json"))


def load(path: Path):
    return json.loads(path.read_text())


def test_the_fixtures_are_there():
    assert len(GAMMA_MARKET_FILES) == 7


@pytest.mark.parametrize("name", GAMMA_MARKET_FILES)
def test_every_captured_gamma_market_parses(name):
    body = load(CRATES / name)
    infos = parse_gamma_market(body)
    tokens = json.loads(body["clobTokenIds"])
    outcomes = json.loads(body["outcomes"])
    assert [i.token_id for i in infos] == tokens
    assert [i.outcome for i in infos] == outcomes
    assert [i.outcome_index for i in infos] == list(range(len(tokens)))
    for info in infos:
        assert info.condition_id == body["conditionId"]
        assert info.version == "v1" and info.exchange_version == 2 and info.source == "gamma"
        assert info.neg_risk == body.get("negRisk")
        if "orderPriceMinTickSize" in body:
            assert info.tick_size == Decimal(repr(body["orderPriceMinTickSize"]))
            assert isinstance(info.tick_size, Decimal)
        if "orderMinSize" in body:
            assert info.min_order_size == Decimal(repr(body["orderMinSize"]))
        assert info.fees.enabled == body.get("feesEnabled")
        assert info.closed == body["closed"]


def test_gamma_market_values():
    (up, down) = parse_gamma_market(load(CRATES / "gamma_market.json"))
    assert up.token_id == "104239898038807136052399800151408521467737075933964991162589336683346093173875"
    assert (up.outcome, down.outcome) == ("Up", "Down")
    assert up.tick_size == Decimal("0.01") and str(up.tick_size) == "0.01"
    assert up.min_order_size == Decimal(5) and up.neg_risk is False and up.accepting_orders is True
    assert up.fees.enabled is True
    assert (up.fees.maker_base_fee_bps, up.fees.taker_base_fee_bps) == (1000, 1000)
    assert up.fees.rate is None  # this body has no feeSchedule


def test_gamma_fee_schedule_is_exact_decimal():
    (a, _) = parse_gamma_market(load(CRATES / "gamma_market_sports_market_money_line.json"))
    assert a.fees.rate == Decimal("0.03") and a.fees.exponent == Decimal(1)
    assert a.fees.taker_only is True and a.fees.rebate_rate == Decimal("0.25")
    assert a.tick_size == Decimal("0.001")


def test_gamma_event_lists_and_slim_market_bodies():
    event_infos = parse_gamma_markets(load(CRATES / "gamma_event.json"))
    assert len(event_infos) == 4 and all(i.neg_risk is True for i in event_infos)
    # market_slug.json: clobTokenIds is a real array, no outcomes, no tick size
    slim = parse_gamma_markets(load(PY_HTTP / "market_slug.json"))
    assert [i.token_id for i in slim] == load(PY_HTTP / "market_slug.json")["clobTokenIds"]
    assert all(i.outcome is None and i.tick_size is None for i in slim)


def test_gamma_v2_market_trades_position_ids():
    body = load(CRATES / "gamma_market.json") | {"version": "v2", "positionIds": ["11", "12"]}
    infos = parse_gamma_market(body)
    assert [i.token_id for i in infos] == ["11", "12"]
    assert all(i.version == "v2" and i.exchange_version == 3 for i in infos)
    with pytest.raises(MarketDataError) as err:
        parse_gamma_market(load(CRATES / "gamma_market.json") | {"version": "v2"})
    assert err.value.field == "positionIds" and "positionIds" in str(err.value)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"conditionId": None}, "conditionId"),
        ({"conditionId": "0x12"}, "conditionId"),
        ({"clobTokenIds": "not json"}, "clobTokenIds"),
        ({"clobTokenIds": '["abc"]'}, "clobTokenIds"),
        ({"outcomes": '["Yes"]'}, "outcomes"),
        ({"orderPriceMinTickSize": 1.5}, "orderPriceMinTickSize"),
        ({"orderPriceMinTickSize": "x"}, "orderPriceMinTickSize"),
        ({"orderMinSize": -1}, "orderMinSize"),
        ({"negRisk": "maybe"}, "negRisk"),
        ({"version": "v9"}, "version"),
        ({"feeSchedule": {"rate": "NaN"}}, "feeSchedule.rate"),
    ],
)
def test_malformed_gamma_market_names_the_field(change, field):
    body = load(CRATES / "gamma_market.json") | change
    with pytest.raises(MarketDataError) as err:
        parse_gamma_market(body)
    assert err.value.field == field and field in str(err.value)


@pytest.mark.parametrize(
    "name", ["clob_market_closed_binary_accepting_false.json", "clob_market_closed_binary_accepting_true.json"]
)
def test_captured_clob_markets_parse(name):
    body = load(CRATES / name)
    infos = parse_clob_market(body)
    assert [(i.token_id, i.outcome) for i in infos] == [(t["token_id"], t["outcome"]) for t in body["tokens"]]
    for info in infos:
        assert info.condition_id == body["condition_id"] and info.source == "clob"
        assert info.tick_size == Decimal(repr(body["minimum_tick_size"]))
        assert info.min_order_size == Decimal(repr(body["minimum_order_size"]))
        assert info.neg_risk == body["neg_risk"] and info.version == "v1"
        assert info.fees.taker_base_fee_bps == body["taker_base_fee"]


def test_captured_clob_market_neg_risk():
    infos = parse_clob_market(load(PY_HTTP / "market.json"))
    assert len(infos) == 2 and all(i.neg_risk is True and i.tick_size == Decimal("0.001") for i in infos)


def test_captured_clob_markets_page():
    body = load(PY_HTTP / "markets.json")
    infos, cursor = parse_clob_markets_page(body)
    assert cursor == "MTAw"
    with_tokens = [m for m in body["data"] if m["tokens"][0]["token_id"]]
    assert len(infos) == 2 * len(with_tokens) > 0  # placeholder tokens {"token_id": ""} are left out
    assert {str(i.min_order_size) for i in infos} >= {"5", "15"}
    assert parse_clob_markets_page({"data": [], "next_cursor": "LTE="}) == ([], None)


def test_clob_version_field():
    body = load(PY_HTTP / "market.json") | {"version": "v2"}
    assert {i.exchange_version for i in parse_clob_market(body)} == {3}


def test_compact_clob_market():
    cid = "0x" + "ab" * 32
    body = {
        "c": cid,
        "t": [{"t": "11", "o": "Yes"}, {"t": "12", "o": "No"}],
        "mts": 0.01,
        "nr": True,
        "fd": {"r": 0.072, "e": 1, "to": True},
        "mbf": 0,
        "tbf": 1000,
        "mos": 5,
        "ao": True,
    }
    yes, no = parse_clob_market_compact(body)
    assert (yes.token_id, yes.outcome, no.outcome) == ("11", "Yes", "No")
    assert yes.condition_id == cid and yes.neg_risk is True and yes.tick_size == Decimal("0.01")
    assert yes.fees.rate == Decimal("0.072") and yes.fees.exponent == 1 and yes.fees.taker_only is True
    assert yes.fees.enabled is True and yes.fees.taker_base_fee_bps == 1000
    with pytest.raises(MarketDataError, match="fd.r"):
        parse_clob_market_compact(body | {"fd": {"r": "x"}})
    with pytest.raises(MarketDataError, match="t\\[0\\]: field t is missing"):
        parse_clob_market_compact(body | {"t": [{"o": "Yes"}]})


def test_fee_rate_bodies():
    assert parse_fee_rate(load(CRATES / "clob_fee_rate_response_nonzero.json")) == 150
    assert parse_fee_rate(load(CRATES / "clob_fee_rate_response_zero.json")) == 0
    with pytest.raises(MarketDataError, match="base_fee"):
        parse_fee_rate({})
    with pytest.raises(MarketDataError, match="base_fee"):
        parse_fee_rate({"base_fee": "1.5"})


def test_tick_size_neg_risk_and_markets_by_token_bodies():
    assert parse_tick_size({"minimum_tick_size": 0.001}) == Decimal("0.001")
    assert parse_tick_size({"minimum_tick_size": "0.01"}) == Decimal("0.01")
    assert parse_neg_risk({"neg_risk": True}) is True
    assert parse_market_by_token({"condition_id": "0x" + "AB" * 32}) == "0x" + "ab" * 32
    for call, body, field in [
        (parse_tick_size, {}, "minimum_tick_size"),
        (parse_tick_size, {"minimum_tick_size": 0}, "minimum_tick_size"),
        (parse_neg_risk, {}, "neg_risk"),
        (parse_neg_risk, {"neg_risk": 1}, "neg_risk"),
        (parse_market_by_token, {"condition_id": ""}, "condition_id"),
    ]:
        with pytest.raises(MarketDataError) as err:
            call(body)
        assert err.value.field == field


@pytest.mark.parametrize(
    "path",
    [
        CRATES / "ws_market_tick_size_msg.json",
        CRATES / "ws_tick_size_change.json",
        CAPTURED / "py_ws_messages" / "tick_size_change.json",
    ],
    ids=lambda p: p.name,
)
def test_captured_tick_size_changes_parse(path):
    msg = load(path)
    change = parse_tick_size_change(msg)
    assert change.token_id == msg["asset_id"] and change.condition_id == msg["market"]
    assert change.new_tick_size == Decimal(msg["new_tick_size"])
    assert change.old_tick_size == Decimal(msg["old_tick_size"])
    assert change.timestamp_ms == int(msg["timestamp"])


def test_bad_tick_size_change():
    msg = load(CRATES / "ws_market_tick_size_msg.json")
    for change, field in [
        ({"event_type": "book"}, "event_type"),
        ({"new_tick_size": None}, "new_tick_size"),
        ({"new_tick_size": "2"}, "new_tick_size"),
        ({"asset_id": "x"}, "asset_id"),
    ]:
        with pytest.raises(MarketDataError) as err:
            parse_tick_size_change(msg | change)
        assert err.value.field == field
