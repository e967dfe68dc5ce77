"""Data API rows (real fixtures) -> fills with the same event id as the chain log of the same fill."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horus.codec import default_codec
from horus.domain.clock import CLOCK_SLACK_S
from horus.domain.fills import DecodedFill, aggregate
from horus.domain.ids import leader_fill_id
from horus.venue.polymarket.data_api import (
    SOURCE,
    RowDecodeError,
    SkippedRow,
    page_rows,
    parse_row,
    parse_rows,
    to_e6_half_even,
)
from horus.venue.polymarket.exchanges import NEG_RISK_CTF_EXCHANGE_V2
from horus.venue.polymarket.fills import decode_log
from tests.unit.test_venue_fills import v2_log

FIXTURES = Path("/work/shared/fixtures/polymarket/data_api_v2")
ACTIVITY = json.loads((FIXTURES / "activity.json").read_text())
TRADES = json.loads((FIXTURES / "trades.json").read_text())
TRADE_ROWS = [r for r in ACTIVITY if r.get("type", "TRADE") == "TRADE"] + TRADES

CAMEL = {
    "proxy_wallet": "proxyWallet",
    "transaction_hash": "transactionHash",
    "token_id": "asset",
    "condition_id": "conditionId",
    "usdc_size": "usdcSize",
    "outcome_index": "outcomeIndex",
    "event_slug": "eventSlug",
    "profile_image": "profileImage",
    "profile_image_optimized": "profileImageOptimized",
}


def camel(row: dict) -> dict:
    return {CAMEL.get(k, k): v for k, v in row.items()}


def test_fixture_has_trade_rows():
    assert len(TRADE_ROWS) == 4


@pytest.mark.parametrize("row", TRADE_ROWS, ids=lambda r: r["transaction_hash"][:10])
def test_every_fixture_trade_row_parses_with_the_canonical_event_id(row):
    fill = parse_row(row)
    assert isinstance(fill, DecodedFill) and fill.source == SOURCE
    assert fill.event_id == leader_fill_id(row["transaction_hash"], row["proxy_wallet"], row["token_id"], row["side"])
    assert (fill.tx_hash, fill.leader, fill.token_id, fill.side) == (
        row["transaction_hash"],
        row["proxy_wallet"],
        row["token_id"],
        row["side"],
    )
    assert fill.block_timestamp == row["timestamp"]
    assert fill.condition_id == row["condition_id"]
    assert fill.role is None and fill.block_number is None and fill.log_index is None
    # the recomputed price is the row's price (which the API renders with 10 decimals)
    assert Decimal(fill.price) == Decimal(repr(row["price"]))
    (record,) = aggregate([fill], source=SOURCE, produced_at_us=1)
    assert record["envelope"]["event_id"] == fill.event_id
    assert record["envelope"]["occurred_at_us"] == row["timestamp"] * 1_000_000
    assert default_codec().decode(default_codec().encode("LeaderFill", record))[1] == record


def test_fixture_amounts_are_exact():
    a1, a2 = (parse_row(r) for r in ACTIVITY)
    assert (a1.shares_e6, a1.collateral_e6, a1.fee_e6, a1.price) == (14_285_715, 13_285_715, 0, "0.9300000035")
    # usdc_size 13.89215 = notional 13.4024 + fee 0.48975 (= 155.03 x 0.04 x p(1-p), rounded to 5 dp)
    assert (a2.shares_e6, a2.collateral_e6, a2.fee_e6, a2.price) == (155_030_000, 13_402_400, 489_750, "0.0864503644")
    t1, t2 = (parse_row(r) for r in TRADES)
    assert (t1.side, t1.shares_e6, t1.collateral_e6, t1.fee_e6, t1.price) == ("BUY", 78_550_000, 48_701_000, 0, "0.62")
    assert (t2.side, t2.shares_e6, t2.collateral_e6, t2.price) == ("SELL", 70_000, 58_800, "0.84")


@pytest.mark.parametrize("row", TRADE_ROWS, ids=lambda r: r["transaction_hash"][:10])
def test_a_row_and_the_chain_log_of_the_same_fill_are_the_same_leader_fill(row):
    fill = parse_row(row)
    side = 0 if fill.side == "BUY" else 1
    maker_amount, taker_amount = (
        (fill.collateral_e6, fill.shares_e6) if side == 0 else (fill.shares_e6, fill.collateral_e6)
    )
    log = v2_log(
        maker=row["proxy_wallet"],
        side=side,
        token=int(row["token_id"]),
        tx=row["transaction_hash"],
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        fee=fill.fee_e6,
        exchange=NEG_RISK_CTF_EXCHANGE_V2,
        taker=NEG_RISK_CTF_EXCHANGE_V2,
        timestamp=row["timestamp"],
    )
    chain = decode_log(log)
    assert chain.event_id == fill.event_id
    (from_chain,) = aggregate([chain], produced_at_us=1)
    (from_row,) = aggregate([fill], source=SOURCE, produced_at_us=1)
    same = ("leader", "tx_hash", "token_id", "side", "shares_e6", "collateral_e6", "price", "fee_e6")
    assert {k: from_chain[k] for k in same} == {k: from_row[k] for k in same}
    assert from_chain["envelope"]["event_id"] == from_row["envelope"]["event_id"]
    assert from_chain["envelope"]["occurred_at_us"] == from_row["envelope"]["occurred_at_us"]


def test_classic_camel_case_rows_give_the_same_fill():
    for row in TRADE_ROWS:
        assert parse_row(camel(row)) == parse_row(row)


def test_classic_activity_row_shape():
    row = {
        "proxyWallet": "0x6af75d4e4aaf700450efbac3708cce1665810ff1",
        "timestamp": 1725868859,
        "conditionId": "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917",
        "type": "TRADE",
        "size": "1096.87",
        "usdcSize": "568.17866",
        "transactionHash": "0x876310b8e67cacf110abdd4106438968c55f2cce795c13c3c7a0896fc4af730d",
        "price": "0.518",
        "asset": "21742633143463906290569050155826241533067272736897614950488156847949938836455",
        "side": "BUY",
        "outcomeIndex": 0,
        "title": "t",
        "slug": "s",
        "outcome": "Yes",
    }
    fill = parse_row(row, role="taker")
    assert (fill.shares_e6, fill.collateral_e6, fill.fee_e6, fill.price, fill.role) == (
        1_096_870_000,
        568_178_660,
        0,
        "0.518",
        "TAKER",
    )


@pytest.mark.parametrize("kind", ["SPLIT", "MERGE", "REDEEM", "CONVERSION", "REWARD", "MAKER_REBATE", "redeem"])
def test_non_trade_activity_is_skipped_with_a_reason(kind):
    row = dict(ACTIVITY[0], type=kind, side="", price=0, token_id="")
    skipped = parse_row(row)
    assert isinstance(skipped, SkippedRow)
    assert skipped.type == kind.upper() and "not an order fill" in skipped.reason


def test_parse_rows_sorts_fills_skips_and_errors_without_raising():
    rows = [*ACTIVITY, dict(ACTIVITY[0], type="REDEEM"), dict(ACTIVITY[0], side="HOLD"), "junk", *TRADES]
    parsed = parse_rows(rows, role="TAKER")
    assert len(parsed.fills) == 4 and all(f.role == "TAKER" for f in parsed.fills)
    assert [s.type for s in parsed.skipped] == ["REDEEM"]
    assert [type(e) for _, e in parsed.errors] == [RowDecodeError, RowDecodeError]


def test_numbers_as_strings_decimals_and_json_floats_agree():
    row = ACTIVITY[1]
    as_strings = dict(row, size="155.03", usdc_size="13.89215", price="0.0864503644")
    as_decimals = json.loads(json.dumps(row), parse_float=Decimal)
    assert parse_row(as_strings) == parse_row(row) == parse_row(as_decimals)


def test_float_artifacts_and_extra_decimals_round_half_even_to_6_places():
    assert to_e6_half_even(0.1 + 0.2) == 300_000  # repr 0.30000000000000004
    assert to_e6_half_even("1.0000005") == 1_000_000  # tie -> even
    assert to_e6_half_even("1.0000015") == 1_000_002  # tie -> even
    assert to_e6_half_even("1.00000051") == 1_000_001
    assert to_e6_half_even(Decimal("2.5e-7")) == 0
    row = dict(TRADES[0], size=78.55000000000001, price=0.62)
    assert parse_row(row).shares_e6 == 78_550_000


def test_collateral_is_shares_times_price_rounded_half_even():
    fill = parse_row(dict(TRADES[0], size="0.5", price="0.000001"))  # 0.0000005 -> tie -> 0
    assert fill.collateral_e6 == 0
    fill = parse_row(dict(TRADES[0], size="1.5", price="0.000001"))  # 0.0000015 -> tie -> 0.000002
    assert fill.collateral_e6 == 2


def test_sell_fee_is_the_gap_below_the_notional():
    fill = parse_row(dict(ACTIVITY[0], side="SELL", size="10", price="0.5", usdc_size="4.9"))
    assert (fill.collateral_e6, fill.fee_e6) == (5_000_000, 100_000)
    fill = parse_row(dict(ACTIVITY[0], side="SELL", size="10", price="0.5", usdc_size="5.1"))
    assert fill.fee_e6 == 0


def test_millisecond_timestamps_and_token_id_canonical_form():
    fill = parse_row(dict(TRADES[0], timestamp=1788887014123, token_id="00" + TRADES[0]["token_id"]))
    assert fill.block_timestamp == 1788887014
    assert fill.token_id == TRADES[0]["token_id"]
    assert parse_row(dict(TRADES[0], timestamp="1788887014")).block_timestamp == 1788887014


@pytest.mark.parametrize(
    "change,message",
    [
        ({"proxy_wallet": None}, "proxy_wallet / proxyWallet is missing"),
        ({"proxy_wallet": "0x1234"}, "not an address"),
        ({"transaction_hash": "0x1234"}, "not 32-byte"),
        ({"transaction_hash": None}, "missing"),
        ({"token_id": "0x12"}, "token id"),
        ({"token_id": "0"}, "token id"),
        ({"token_id": True}, "token id"),
        ({"token_id": "1" * 5000}, "token id"),
        ({"token_id": str(2**256)}, "token id"),
        ({"side": "HOLD"}, "side"),
        ({"side": None}, "side is missing"),
        ({"size": 0}, "size"),
        ({"size": "-1"}, "size"),
        ({"size": "abc"}, "not a decimal"),
        ({"size": "NaN"}, "not finite"),
        ({"size": True}, "must be a number"),
        ({"size": "1e999999"}, "out of range"),
        ({"size": [1]}, "must be a number"),
        ({"price": 0}, "outside"),
        ({"price": 1.5}, "outside"),
        ({"price": None}, "price is missing"),
        ({"timestamp": None}, "timestamp is missing"),
        ({"timestamp": 12.5}, "timestamp"),
        ({"timestamp": -3}, "timestamp"),
        ({"usdc_size": "x"}, "usdc size"),
        ({"usdc_size": -1}, "negative"),
        ({"size": "1e20"}, "beyond any real fill"),
        ({"condition_id": ["0x12"]}, "condition id"),
        ({"condition_id": "market-1"}, "condition id"),
    ],
)
def test_malformed_trade_rows_raise_row_decode_error(change, message):
    with pytest.raises(RowDecodeError, match=message):
        parse_row(dict(ACTIVITY[0], **change))


def test_bad_role_and_non_mapping_rows():
    with pytest.raises(ValueError):
        parse_row(ACTIVITY[0], role="both")
    with pytest.raises(RowDecodeError):
        parse_row(["not", "a", "row"])


def test_page_rows_reads_v2_envelopes_and_classic_lists():
    page = page_rows({"data": ACTIVITY, "pagination": {"has_more": True, "next_cursor": "abc"}})
    assert page.rows == ACTIVITY and page.has_more and page.next_cursor == "abc"
    last = page_rows({"data": [], "pagination": {"has_more": False, "next_cursor": None}})
    assert last.rows == [] and not last.has_more and last.next_cursor is None
    assert page_rows(TRADES).rows == TRADES
    for junk in ({"error": "x"}, "x", {"data": [], "pagination": 3}):
        with pytest.raises(RowDecodeError):
            page_rows(junk)


def test_rows_of_one_tx_aggregate_like_chain_fills():
    # A taker BUY crossing two price levels can be served as two rows of one tx: one LeaderFill.
    base = dict(TRADES[0])
    rows = [dict(base, size="10", price="0.6"), dict(base, size="5", price="0.62")]
    (record,) = aggregate(parse_rows(rows).fills, source=SOURCE, produced_at_us=1)
    assert (record["shares_e6"], record["collateral_e6"], record["price"]) == (15_000_000, 9_100_000, "0.6066666667")
    assert record["exchange"] == "" and record["block_number"] == 0 and record["log_index"] == 0
    assert record["order_hashes"] == [] and record["role"] == "TAKER"
    assert record["condition_id"] == base["condition_id"]


_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.text(max_size=80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=400)
@given(
    base=st.sampled_from(TRADE_ROWS + [camel(r) for r in TRADE_ROWS]),
    key=st.sampled_from(
        [
            "proxy_wallet",
            "proxyWallet",
            "transaction_hash",
            "token_id",
            "asset",
            "condition_id",
            "side",
            "size",
            "usdc_size",
            "price",
            "timestamp",
            "type",
        ]
    ),
    value=_leaf,
)
def test_any_field_value_gives_a_fill_a_skip_or_a_row_decode_error(base, key, value):
    try:
        parsed = parse_row(dict(base, **{key: value}))
    except RowDecodeError:
        return
    assert isinstance(parsed, (DecodedFill, SkippedRow))
    if isinstance(parsed, DecodedFill):
        assert parsed.shares_e6 > 0 and parsed.collateral_e6 >= 0 and parsed.fee_e6 >= 0
        assert parsed.block_timestamp <= time.time() + CLOCK_SLACK_S
        (record,) = aggregate([parsed], source=SOURCE, produced_at_us=1)
        default_codec().encode("LeaderFill", record)  # whatever a row holds, a fill that parses can be produced


NOW_S = 1_796_000_000


@pytest.mark.parametrize(
    "stamp, seconds",
    [
        (NOW_S, NOW_S),
        (str(NOW_S), NOW_S),
        (NOW_S * 1000 + 123, NOW_S),  # milliseconds
        (NOW_S * 1_000_000 + 123_456, NOW_S),  # microseconds: before, read as ms, a date in the year 58,000
        (NOW_S + CLOCK_SLACK_S, NOW_S + CLOCK_SLACK_S),  # clocks differ: up to the slack ahead is fine
    ],
)
def test_timestamps_in_seconds_milliseconds_or_microseconds(stamp, seconds):
    assert parse_row(dict(TRADES[0], timestamp=stamp), now_s=NOW_S).block_timestamp == seconds


@pytest.mark.parametrize(
    "stamp",
    [
        "1e30",  # passed the decimal range check and overflowed the Avro long at encode
        NOW_S + CLOCK_SLACK_S + 1,
        (NOW_S + 3600) * 1000,
        (NOW_S + 86_400) * 1_000_000,
        NOW_S * 1_000_000_000,  # nanoseconds: no unit this source knows
        2**63,
    ],
)
def test_timestamps_beyond_the_clock_slack_are_refused(stamp):
    with pytest.raises(RowDecodeError, match="timestamp") as refused:
        parse_row(dict(TRADES[0], timestamp=stamp), now_s=NOW_S)
    assert refused.value.reason in ("future-timestamp", "bad-field")


def test_a_future_row_is_refused_against_the_wall_clock_by_default():
    with pytest.raises(RowDecodeError, match="ahead of our clock"):
        parse_row(dict(TRADES[0], timestamp=int(time.time()) + 3600))
