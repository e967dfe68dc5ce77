"""OrderFilled log decoding and aggregation into LeaderFill records (logs built with eth-abi)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_abi import encode
from eth_utils import event_abi_to_log_topic, keccak, to_checksum_address, to_hex
from hexbytes import HexBytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.datastructures import AttributeDict

from horus.codec import default_codec
from horus.domain.fills import AggregationError, DecodedFill, MissingTimestampError, aggregate, format_price
from horus.domain.ids import leader_fill_id
from horus.venue.polymarket.exchanges import (
    CTF_EXCHANGE_V1,
    CTF_EXCHANGE_V2,
    EXCHANGE_V3,
    NEG_RISK_CTF_EXCHANGE_V1,
    NEG_RISK_CTF_EXCHANGE_V2,
    NEG_RISK_EXCHANGE_V2_B_UNVERIFIED,
    ORDER_FILLED_V1_TOPIC,
    ORDER_FILLED_V2_TOPIC,
    ExchangeBook,
    Layout,
)
from horus.venue.polymarket.fills import LogDecodeError, NotOrderFilledError, decode_log, is_order_filled

FIXTURES = Path("/work/shared/fixtures/polymarket")

# Documented in platform/polymarket.md section 7.
DOC_V2_TOPIC = "0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee"
DOC_V1_TOPIC = "0xd0a08e8c493f9c94f29311604c9de1b4e8c8d4c06bd0c789af57f2d65bfec0f6"
DOC_ORDERS_MATCHED_V2 = "0x174b3811690657c217184f89418266767c87e4805d09680c39fc9c031c0cab7c"
DOC_FEE_CHARGED_V2 = "0x55bb3cade9d43b798a4fe5ffdd05024b2d7870df53920673bfc7e68047cd0ab1"
TRANSFER_SINGLE = "0xc3d58168c5ae7397731d063d5bbf3d657854427343f4c083240f7aacaa2d0f62"

LEADER = "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b"
OTHER = "0x84cfffc3f16dcc353094de30d4a45226eccd2f63"
THIRD = "0x8998260fc9ed9fb76169c291493b77d3cfe62707"
TOKEN = 98255364887669934733864645030488537034263699416357729920734267612805930214172
COMPLEMENT = 48806077328000909419484823670508609131899330142378469532880640080613055214499
TX = "0xa661459fc2483ddb4e5c7d13c76347fa2b1fb2faae10eed484c810ae46c471dd"
TX2 = "0xe0631ac3c5899c6eafff31fde1a62c6dcb6cff3644cceae345136f725d54a5bb"
ANVIL_EXCHANGE = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
V2_TYPES = ["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"]
V1_TYPES = ["uint256"] * 5


def _word(address: str) -> str:
    return to_hex(encode(["address"], [address]))


def order_hash(n: int) -> str:
    return to_hex(keccak(text=f"order-{n}"))


def v2_log(
    *,
    maker=LEADER,
    taker=OTHER,
    side=0,
    token=TOKEN,
    maker_amount=13_402_400,
    taker_amount=155_030_000,
    fee=0,
    exchange=CTF_EXCHANGE_V2,
    tx=TX,
    block=79_000_001,
    index=7,
    order=1,
    builder=b"\x00" * 32,
    metadata=b"\x00" * 32,
    timestamp=None,
    removed=False,
) -> dict:
    log = {
        "address": to_checksum_address(exchange),
        "topics": [ORDER_FILLED_V2_TOPIC, order_hash(order), _word(maker), _word(taker)],
        "data": to_hex(encode(V2_TYPES, [side, token, maker_amount, taker_amount, fee, builder, metadata])),
        "blockNumber": hex(block),
        "blockHash": to_hex(keccak(text=f"block-{block}")),
        "transactionHash": tx,
        "transactionIndex": "0x0",
        "logIndex": hex(index),
        "removed": removed,
    }
    if timestamp is not None:
        log["blockTimestamp"] = hex(timestamp)
    return log


def v1_log(
    *,
    maker=LEADER,
    taker=OTHER,
    maker_asset=0,
    taker_asset=TOKEN,
    maker_amount=50_000_000,
    taker_amount=100_000_000,
    fee=0,
    exchange=CTF_EXCHANGE_V1,
    tx=TX,
    block=60_000_000,
    index=3,
    order=1,
    timestamp=None,
) -> dict:
    log = {
        "address": to_checksum_address(exchange),
        "topics": [ORDER_FILLED_V1_TOPIC, order_hash(order), _word(maker), _word(taker)],
        "data": to_hex(encode(V1_TYPES, [maker_asset, taker_asset, maker_amount, taker_amount, fee])),
        "blockNumber": hex(block),
        "transactionHash": tx,
        "logIndex": hex(index),
        "removed": False,
    }
    if timestamp is not None:
        log["blockTimestamp"] = hex(timestamp)
    return log


def other_log(topic0: str, *, exchange=CTF_EXCHANGE_V2, tx=TX, block=79_000_001, index=9, topics=(), data=b"") -> dict:
    return {
        "address": to_checksum_address(exchange),
        "topics": [topic0, *topics],
        "data": to_hex(data),
        "blockNumber": hex(block),
        "transactionHash": tx,
        "logIndex": hex(index),
        "removed": False,
    }


# --------------------------------------------------------------------------- topic0 and address book


def test_topic0_constants_are_keccak_of_the_documented_signatures():
    assert ORDER_FILLED_V2_TOPIC == DOC_V2_TOPIC
    assert ORDER_FILLED_V1_TOPIC == DOC_V1_TOPIC
    assert (
        to_hex(
            keccak(text="OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)")
        )
        == DOC_V2_TOPIC
    )
    assert (
        to_hex(keccak(text="OrderFilled(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)"))
        == DOC_V1_TOPIC
    )
    assert to_hex(keccak(text="OrdersMatched(bytes32,address,uint8,uint256,uint256,uint256)")) == DOC_ORDERS_MATCHED_V2
    assert to_hex(keccak(text="FeeCharged(address,uint256)")) == DOC_FEE_CHARGED_V2


def test_v1_topic0_matches_the_captured_v1_exchange_abi():
    abi = json.loads((FIXTURES / "ctf_exchange_v1" / "CTFExchange.abi.json").read_text())
    (event,) = [e for e in abi if e.get("type") == "event" and e["name"] == "OrderFilled"]
    assert to_hex(event_abi_to_log_topic(event)) == ORDER_FILLED_V1_TOPIC


def test_v2_topic0_matches_an_abi_of_the_documented_event():
    names = ["side", "tokenId", "makerAmountFilled", "takerAmountFilled", "fee", "builder", "metadata"]
    event = {
        "type": "event",
        "name": "OrderFilled",
        "anonymous": False,
        "inputs": [
            {"name": "orderHash", "type": "bytes32", "indexed": True},
            {"name": "maker", "type": "address", "indexed": True},
            {"name": "taker", "type": "address", "indexed": True},
            *({"name": n, "type": t, "indexed": False} for n, t in zip(names, V2_TYPES)),
        ],
    }
    assert to_hex(event_abi_to_log_topic(event)) == ORDER_FILLED_V2_TOPIC


def test_mainnet_book_holds_the_documented_exchanges():
    book = ExchangeBook.mainnet()
    expected = {
        "0xE111180000d2663C0091e4f400237545B87B996B": Layout.V2,
        "0xe2222d279d744050d28e00520010520000310F59": Layout.V2,
        "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa": Layout.V2,
        "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E": Layout.V1,
        "0xC5d563A36AE78145C45a50134d48A1215220f80a": Layout.V1,
    }
    assert set(book.addresses) == {a.lower() for a in expected}
    for address, layout in expected.items():
        assert address in book and address.lower() in book
        assert book.get(address).layout is layout
    assert book.get(NEG_RISK_CTF_EXCHANGE_V2).neg_risk and book.get(NEG_RISK_CTF_EXCHANGE_V1).neg_risk
    assert NEG_RISK_EXCHANGE_V2_B_UNVERIFIED not in book
    assert "not an address" not in book and book.get("0x1234") is None


def test_book_takes_extra_addresses_for_either_layout():
    book = ExchangeBook.mainnet().with_addresses([to_checksum_address(ANVIL_EXCHANGE)], name="anvil")
    assert len(book) == 6 and book.get(ANVIL_EXCHANGE).layout is None
    assert decode_log(v2_log(exchange=ANVIL_EXCHANGE), book).exchange == ANVIL_EXCHANGE
    assert decode_log(v1_log(exchange=ANVIL_EXCHANGE), book).layout == "v1"
    only = ExchangeBook.of(ANVIL_EXCHANGE)
    assert only.addresses == (ANVIL_EXCHANGE,)
    with pytest.raises(LogDecodeError) as info:
        decode_log(v2_log(), only)
    assert info.value.reason == "unknown-exchange"
    with pytest.raises(ValueError):
        ExchangeBook.of("0x12")


def test_log_filter_subscribes_to_both_layouts_and_pads_leaders():
    flt = ExchangeBook.mainnet().log_filter([LEADER.upper().replace("0X", "0x")])
    assert set(flt["address"]) == {to_checksum_address(a) for a in ExchangeBook.mainnet().addresses}
    assert flt["topics"][0] == sorted([ORDER_FILLED_V1_TOPIC, ORDER_FILLED_V2_TOPIC])
    assert flt["topics"][1] is None
    assert flt["topics"][2] == ["0x" + "00" * 12 + LEADER[2:]]
    assert ExchangeBook.mainnet().log_filter()["topics"] == [flt["topics"][0]]


# --------------------------------------------------------------------------- V2 / V3 layout


@pytest.mark.parametrize(
    "side,taker,expect_side,expect_role",
    [
        (0, OTHER, "BUY", "MAKER"),
        (0, CTF_EXCHANGE_V2, "BUY", "TAKER"),
        (1, OTHER, "SELL", "MAKER"),
        (1, CTF_EXCHANGE_V2, "SELL", "TAKER"),
    ],
)
def test_v2_log_decodes_every_field(side, taker, expect_side, expect_role):
    # BUY: maker gives pUSD (makerAmountFilled) for shares; SELL: maker gives shares for pUSD.
    maker_amount, taker_amount = (13_402_400, 155_030_000) if side == 0 else (155_030_000, 13_402_400)
    builder, metadata = b"\x11" * 32, b"\x22" * 32
    log = v2_log(
        side=side,
        taker=taker,
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        fee=489_750,
        builder=builder,
        metadata=metadata,
        timestamp=1_788_886_026,
    )
    fill = decode_log(log)
    assert fill == DecodedFill(
        source="chain",
        tx_hash=TX,
        leader=LEADER,
        token_id=str(TOKEN),
        side=expect_side,
        shares_e6=155_030_000,
        collateral_e6=13_402_400,
        fee_e6=489_750,
        role=expect_role,
        exchange=CTF_EXCHANGE_V2,
        block_number=79_000_001,
        log_index=7,
        block_timestamp=1_788_886_026,
        order_hash=order_hash(1),
        counterparty=taker.lower(),
        layout="v2",
        fee_raw_e6=489_750,
        fee_asset="collateral",
        builder="0x" + "11" * 32,
        metadata="0x" + "22" * 32,
        block_hash=to_hex(keccak(text="block-79000001")),
    )
    assert fill.price == "0.0864503644"  # the price the Data API shows for this fill
    assert fill.event_id == leader_fill_id(TX, LEADER, str(TOKEN), expect_side)


@pytest.mark.parametrize("exchange", [NEG_RISK_CTF_EXCHANGE_V2, EXCHANGE_V3])
def test_v2_layout_from_neg_risk_and_v3_exchanges(exchange):
    fill = decode_log(v2_log(exchange=exchange, taker=exchange))
    assert fill.exchange == exchange and fill.role == "TAKER"


def test_taker_role_compares_addresses_case_insensitively():
    log = v2_log(taker=CTF_EXCHANGE_V2)
    log["address"] = CTF_EXCHANGE_V2.lower()
    assert decode_log(log).role == "TAKER"
    log["address"] = to_checksum_address(CTF_EXCHANGE_V2)
    assert decode_log(log).role == "TAKER"


def test_bytes_topics_and_int_fields_as_web3_returns_them():
    log = v2_log(timestamp=1_700_000_000)
    web3_log = AttributeDict(
        {
            "address": log["address"],
            "topics": [HexBytes(t) for t in log["topics"]],
            "data": HexBytes(log["data"]),
            "blockNumber": 79_000_001,
            "blockHash": HexBytes(log["blockHash"]),
            "transactionHash": HexBytes(TX),
            "logIndex": 7,
            "blockTimestamp": 1_700_000_000,
            "removed": False,
        }
    )
    assert decode_log(web3_log) == decode_log(log)


def test_uppercase_hex_and_removed_flag():
    log = v2_log(removed=True)
    log["transactionHash"] = "0x" + TX[2:].upper()
    log["data"] = "0x" + log["data"][2:].upper()
    fill = decode_log(log)
    assert fill.tx_hash == TX and fill.removed is True


# --------------------------------------------------------------------------- V1 layout


def test_v1_buy_maker_fee_in_shares_is_converted_at_the_fill_price():
    # V1 charges the fee in the asset the order receives: shares for a BUY.
    fill = decode_log(
        v1_log(maker_asset=0, taker_asset=TOKEN, maker_amount=50_000_000, taker_amount=100_000_000, fee=1_000_001)
    )
    assert (fill.side, fill.token_id, fill.collateral_e6, fill.shares_e6) == (
        "BUY",
        str(TOKEN),
        50_000_000,
        100_000_000,
    )
    assert fill.price == "0.5" and fill.role == "MAKER" and fill.layout == "v1"
    assert (fill.fee_raw_e6, fill.fee_asset) == (1_000_001, "shares")
    assert fill.fee_e6 == 500_000  # 1.000001 shares x 0.5 = 0.5000005 -> half-even -> 0.500000
    assert fill.builder is None and fill.metadata is None


def test_v1_sell_taker_fee_in_collateral():
    fill = decode_log(
        v1_log(
            maker_asset=TOKEN,
            taker_asset=0,
            maker_amount=20_000_000,
            taker_amount=13_000_000,
            fee=65_000,
            taker=CTF_EXCHANGE_V1,
        )
    )
    assert (fill.side, fill.shares_e6, fill.collateral_e6, fill.price) == ("SELL", 20_000_000, 13_000_000, "0.65")
    assert (fill.fee_e6, fill.fee_asset, fill.role) == (65_000, "collateral", "TAKER")


def test_v1_fill_order_against_the_operator_is_a_maker_fill():
    operator = "0x0000000000000000000000000000000000000abc"
    fill = decode_log(v1_log(taker=operator, exchange=NEG_RISK_CTF_EXCHANGE_V1))
    assert fill.role == "MAKER" and fill.counterparty == operator


# --------------------------------------------------------------------------- errors


def _mutate(log: dict, **changes) -> dict:
    out = dict(log)
    for key, value in changes.items():
        if value is KeyError:
            out.pop(key, None)
        else:
            out[key] = value
    return out


GOOD = v2_log()
BAD_LOGS = {
    "three topics": (_mutate(GOOD, topics=GOOD["topics"][:3]), "bad-topics"),
    "five topics": (_mutate(GOOD, topics=[*GOOD["topics"], GOOD["topics"][1]]), "bad-topics"),
    "empty topics": (_mutate(GOOD, topics=[]), "bad-topics"),
    "topics not a list": (_mutate(GOOD, topics="0x00"), "bad-topics"),
    "short topic": (_mutate(GOOD, topics=[GOOD["topics"][0], "0x1234", *GOOD["topics"][2:]]), "bad-topics"),
    "dirty address padding": (
        _mutate(GOOD, topics=[*GOOD["topics"][:2], "0x01" + GOOD["topics"][2][4:], GOOD["topics"][3]]),
        "bad-topics",
    ),
    "short data": (_mutate(GOOD, data=GOOD["data"][:-64]), "bad-data"),
    "long data": (_mutate(GOOD, data=GOOD["data"] + "00" * 32), "bad-data"),
    "odd hex data": (_mutate(GOOD, data=GOOD["data"] + "0"), "bad-data"),
    "data not hex": (_mutate(GOOD, data="0xzz"), "bad-data"),
    "data without 0x": (_mutate(GOOD, data=GOOD["data"][2:]), "bad-data"),
    "data missing": (_mutate(GOOD, data=KeyError), "bad-data"),
    "data a number": (_mutate(GOOD, data=12), "bad-data"),
    "side 2": (v2_log(side=2), "invalid-value"),
    "side padding": (_mutate(GOOD, data="0x" + "01" + GOOD["data"][4:]), "bad-data"),
    "token 0": (v2_log(token=0), "invalid-value"),
    "zero shares": (v2_log(taker_amount=0), "invalid-value"),
    "amount beyond int64": (v2_log(maker_amount=2**63), "invalid-value"),
    "v1 both assets collateral": (v1_log(maker_asset=0, taker_asset=0), "invalid-value"),
    "v1 no collateral leg": (v1_log(maker_asset=TOKEN, taker_asset=COMPLEMENT), "invalid-value"),
    "unknown exchange": (v2_log(exchange=ANVIL_EXCHANGE), "unknown-exchange"),
    "v1 event from a v2 exchange": (v1_log(exchange=CTF_EXCHANGE_V2), "layout-mismatch"),
    "v2 event from a v1 exchange": (v2_log(exchange=CTF_EXCHANGE_V1), "layout-mismatch"),
    "address missing": (_mutate(GOOD, address=KeyError), "bad-log"),
    "address short": (_mutate(GOOD, address="0x1234"), "bad-log"),
    "tx hash missing": (_mutate(GOOD, transactionHash=KeyError), "bad-log"),
    "tx hash short": (_mutate(GOOD, transactionHash="0x1234"), "bad-log"),
    "block number missing (pending)": (_mutate(GOOD, blockNumber=None), "bad-log"),
    "block number garbage": (_mutate(GOOD, blockNumber="0xnope"), "bad-log"),
    "block number negative": (_mutate(GOOD, blockNumber=-1), "bad-log"),
    "log index a float": (_mutate(GOOD, logIndex=1.5), "bad-log"),
    "log index a bool": (_mutate(GOOD, logIndex=True), "bad-log"),
    "log index beyond int32": (_mutate(GOOD, logIndex=hex(2**31)), "bad-log"),
    "removed not a bool": (_mutate(GOOD, removed="yes"), "bad-log"),
    "block hash short": (_mutate(GOOD, blockHash="0x12"), "bad-log"),
}


@pytest.mark.parametrize("name", list(BAD_LOGS))
def test_bad_logs_raise_log_decode_error_with_a_reason(name):
    log, reason = BAD_LOGS[name]
    with pytest.raises(LogDecodeError) as info:
        decode_log(log)
    assert info.value.reason == reason, str(info.value)
    assert "log" in str(info.value)


def test_other_events_are_not_order_filled():
    for topic0 in (DOC_ORDERS_MATCHED_V2, DOC_FEE_CHARGED_V2, TRANSFER_SINGLE):
        log = other_log(topic0, topics=[_word(LEADER)])
        assert not is_order_filled(log)
        with pytest.raises(NotOrderFilledError) as info:
            decode_log(log)
        assert info.value.reason == "not-order-filled"
    assert is_order_filled(v2_log()) and is_order_filled(v1_log())
    assert not is_order_filled({"topics": []}) and not is_order_filled("x") and not is_order_filled({})


def test_error_message_names_the_log():
    with pytest.raises(LogDecodeError, match=f"{TX} index 0x7: v2 OrderFilled data must be 224 bytes, got 192"):
        decode_log(BAD_LOGS["short data"][0])


def test_non_mapping_log():
    for junk in (None, [], "0x", 5):
        with pytest.raises(LogDecodeError):
            decode_log(junk)


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**260),
    st.text(max_size=70),
    st.binary(max_size=80),
    st.floats(allow_nan=True),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(
        [
            "address",
            "topics",
            "data",
            "blockNumber",
            "transactionHash",
            "logIndex",
            "blockTimestamp",
            "removed",
            "blockHash",
        ]
    ),
    value=st.one_of(_json_leaf, st.lists(_json_leaf, max_size=5)),
)
def test_decode_never_raises_anything_but_log_decode_error(key, value):
    for base in (v2_log(), v1_log()):
        try:
            decode_log(_mutate(base, **{key: value}))
        except LogDecodeError:
            pass


@settings(max_examples=200)
@given(data=st.binary(max_size=300), topic_count=st.integers(0, 6))
def test_random_data_and_topics_only_log_decode_errors(data, topic_count):
    base = v2_log()
    topics = ([ORDER_FILLED_V2_TOPIC] + [to_hex(keccak(data + bytes([i]))) for i in range(topic_count)])[:topic_count]
    try:
        decode_log(_mutate(base, data=to_hex(data), topics=topics))
    except LogDecodeError:
        pass


# --------------------------------------------------------------------------- price


@pytest.mark.parametrize(
    "collateral,shares,price",
    [
        (97_790_400, 135_820_000, "0.72"),
        (13_285_715, 14_285_715, "0.9300000035"),
        (1, 3, "0.3333333333"),
        (2, 3, "0.6666666667"),
        (5, 100_000_000_000, "0"),  # 5e-11 = half a unit at the 10th place -> even (0)
        (15, 1_000_000_000_000, "0"),  # 1.5e-11 -> 0.0000000000 (below half a unit)
        (50, 1_000_000_000_000, "0"),  # exactly half of 1e-10 -> even (0)
        (150, 1_000_000_000_000, "0.0000000002"),  # 1.5e-10 -> half-even -> 2e-10
        (1_000_000, 1_000_000, "1"),
        (0, 7, "0"),
    ],
)
def test_format_price_is_exact_and_rounds_half_even(collateral, shares, price):
    assert format_price(collateral, shares) == price


def test_format_price_refuses_zero_shares():
    with pytest.raises(ValueError):
        format_price(1, 0)


# --------------------------------------------------------------------------- aggregation


def _receipt_fills():
    """One tx: the leader's taker BUY crossing two makers, plus a second order of the leader filled as maker
    on the same token (another match in the same tx), and an unrelated maker."""
    return [
        decode_log(
            v2_log(
                maker=OTHER, taker=LEADER, side=1, maker_amount=100_000_000, taker_amount=60_000_000, index=1, order=10
            )
        ),
        decode_log(
            v2_log(
                maker=THIRD, taker=LEADER, side=1, maker_amount=50_000_000, taker_amount=31_000_000, index=2, order=11
            )
        ),
        decode_log(
            v2_log(
                maker=LEADER,
                taker=CTF_EXCHANGE_V2,
                side=0,
                maker_amount=91_000_000,
                taker_amount=150_000_000,
                fee=1_500_000,
                index=3,
                order=1,
            )
        ),
        decode_log(
            v2_log(maker=LEADER, taker=OTHER, side=0, maker_amount=6_000_000, taker_amount=10_000_000, index=5, order=2)
        ),
        decode_log(
            v2_log(maker=LEADER, taker=OTHER, side=0, maker_amount=3_000_000, taker_amount=5_000_000, index=6, order=2)
        ),
    ]


def test_aggregate_sums_one_tx_leader_token_side():
    records = aggregate(_receipt_fills(), [LEADER], block_time={79_000_001: 1_788_886_026}, produced_at_us=5)
    assert len(records) == 1
    (record,) = records
    assert record == {
        "envelope": {
            "event_id": leader_fill_id(TX, LEADER, str(TOKEN), "BUY"),
            "occurred_at_us": 1_788_886_026_000_000,
            "produced_at_us": 5,
            "source": "chain",
            "causation_id": None,
        },
        "leader": LEADER,
        "exchange": CTF_EXCHANGE_V2,
        "tx_hash": TX,
        "block_number": 79_000_001,
        "log_index": 3,
        "token_id": str(TOKEN),
        "condition_id": None,
        "side": "BUY",
        "shares_e6": 165_000_000,
        "collateral_e6": 100_000_000,
        "price": "0.6060606061",
        "fee_e6": 1_500_000,
        "role": "TAKER",
        "order_hashes": sorted([order_hash(1), order_hash(2)]),
    }
    name, decoded = default_codec().decode(default_codec().encode("LeaderFill", record))
    assert name == "LeaderFill" and decoded == record


def test_aggregate_without_leaders_gives_every_wallet_its_own_fill():
    records = aggregate(_receipt_fills(), block_time=lambda n: 1_788_886_026, produced_at_us=5)
    by_leader = {r["leader"]: r for r in records}
    assert set(by_leader) == {LEADER, OTHER, THIRD}
    assert by_leader[OTHER]["side"] == "SELL" and by_leader[OTHER]["role"] == "MAKER"
    assert by_leader[OTHER]["price"] == "0.6" and by_leader[THIRD]["price"] == "0.62"
    assert [r["log_index"] for r in records] == [1, 2, 3]  # sorted by time, block, log index


def test_separate_sides_tokens_and_transactions_are_separate_fills():
    fills = [
        decode_log(v2_log(side=0, index=1, order=1)),
        decode_log(v2_log(side=1, maker_amount=155_030_000, taker_amount=13_402_400, index=2, order=2)),
        decode_log(v2_log(side=0, token=COMPLEMENT, index=3, order=3)),
        decode_log(v2_log(side=0, tx=TX2, index=1, order=4)),
    ]
    records = aggregate(fills, block_time=lambda n: 1)
    keys = {(r["tx_hash"], r["token_id"], r["side"]) for r in records}
    assert keys == {
        (TX, str(TOKEN), "BUY"),
        (TX, str(TOKEN), "SELL"),
        (TX, str(COMPLEMENT), "BUY"),
        (TX2, str(TOKEN), "BUY"),
    }
    assert len({r["envelope"]["event_id"] for r in records}) == 4


def test_duplicate_logs_count_once_and_removed_logs_not_at_all():
    fill = decode_log(v2_log())
    removed = decode_log(v2_log(index=8, order=5, removed=True))
    (record,) = aggregate([fill, fill, removed], block_time=lambda n: 1)
    assert record["shares_e6"] == fill.shares_e6 and record["order_hashes"] == [order_hash(1)]
    assert aggregate([removed], block_time=lambda n: 1) == []


def test_timestamps_from_the_log_the_mapping_or_the_callback():
    with_stamp = decode_log(v2_log(timestamp=1_700_000_123))
    (record,) = aggregate([with_stamp])
    assert record["envelope"]["occurred_at_us"] == 1_700_000_123_000_000
    asked = []
    bare = decode_log(v2_log())
    (record,) = aggregate([bare], block_time=lambda n: asked.append(n) or 1_700_000_456)
    assert asked == [79_000_001] and record["envelope"]["occurred_at_us"] == 1_700_000_456_000_000
    with pytest.raises(MissingTimestampError, match=TX):
        aggregate([bare])
    with pytest.raises(MissingTimestampError):
        aggregate([bare], block_time={1: 2})


def test_block_time_is_asked_once_per_block():
    asked = []
    fills = [decode_log(v2_log(tx=TX, index=1)), decode_log(v2_log(tx=TX2, index=2))]
    aggregate(fills, block_time=lambda n: asked.append(n) or 7)
    assert asked == [79_000_001]


def test_sums_beyond_the_schema_range_are_refused():
    big = 2**62
    fills = [decode_log(v2_log(maker_amount=big, taker_amount=big, index=i, order=i)) for i in (1, 2)]
    with pytest.raises(AggregationError, match="exceeds"):
        aggregate(fills, block_time=lambda n: 1)


def test_event_id_is_the_canonical_leader_fill_id():
    (record,) = aggregate([decode_log(v1_log(maker_asset=TOKEN, taker_asset=0))], block_time=lambda n: 1)
    assert record["envelope"]["event_id"] == leader_fill_id(TX, LEADER, str(TOKEN), "SELL")
    assert record["role"] == "MAKER" and record["exchange"] == CTF_EXCHANGE_V1


def test_mint_match_each_buyer_gets_its_own_token():
    # Taker BUY of TOKEN matched with a maker BUY of the complement (MINT): the maker's log shows its own
    # side and token.
    fills = [
        decode_log(
            v2_log(
                maker=OTHER,
                taker=LEADER,
                side=0,
                token=COMPLEMENT,
                maker_amount=4_000_000,
                taker_amount=10_000_000,
                index=1,
                order=20,
            )
        ),
        decode_log(
            v2_log(
                maker=LEADER,
                taker=CTF_EXCHANGE_V2,
                side=0,
                token=TOKEN,
                maker_amount=6_000_000,
                taker_amount=10_000_000,
                index=2,
                order=21,
            )
        ),
    ]
    records = {r["leader"]: r for r in aggregate(fills, block_time=lambda n: 1)}
    assert records[OTHER]["token_id"] == str(COMPLEMENT) and records[OTHER]["price"] == "0.4"
    assert records[LEADER]["token_id"] == str(TOKEN) and records[LEADER]["price"] == "0.6"


_fill_logs = st.lists(
    st.builds(
        lambda maker, side, token, tx, maker_amount, taker_amount, fee, index, taker, order, removed: v2_log(
            maker=maker,
            side=side,
            token=token,
            tx=tx,
            maker_amount=maker_amount,
            taker_amount=taker_amount,
            fee=fee,
            index=index,
            taker=taker,
            order=order,
            removed=removed,
        ),
        maker=st.sampled_from([LEADER, OTHER]),
        side=st.sampled_from([0, 1]),
        token=st.sampled_from([TOKEN, COMPLEMENT]),
        tx=st.sampled_from([TX, TX2]),
        maker_amount=st.integers(1, 10**12),
        taker_amount=st.integers(1, 10**12),
        fee=st.integers(0, 10**6),
        index=st.integers(0, 12),
        taker=st.sampled_from([OTHER, CTF_EXCHANGE_V2]),
        order=st.integers(0, 3),
        removed=st.booleans(),
    ),
    max_size=12,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(logs=_fill_logs, data=st.data())
def test_aggregation_is_independent_of_input_order(logs, data):
    fills = [decode_log(log) for log in logs]
    shuffled = data.draw(st.permutations(fills))
    leaders = data.draw(st.sampled_from([None, [LEADER], [LEADER, OTHER]]))
    kwargs = dict(block_time=lambda n: 1_788_886_026, produced_at_us=1)
    first, second = aggregate(fills, leaders, **kwargs), aggregate(shuffled, leaders, **kwargs)
    assert first == second
    codec = default_codec()
    assert [codec.encode("LeaderFill", r) for r in first] == [codec.encode("LeaderFill", r) for r in second]
    ids = [r["envelope"]["event_id"] for r in first]
    assert len(ids) == len(set(ids))
    for record in first:
        assert record["envelope"]["event_id"] == leader_fill_id(
            record["tx_hash"], record["leader"], record["token_id"], record["side"]
        )
        assert record["price"] == format_price(record["collateral_e6"], record["shares_e6"])
