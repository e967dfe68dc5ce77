"""Pure parts of the chain source: URLs, filters, ranges, cursors, per-tx aggregation, the watchdog."""

from __future__ import annotations

import json

import pytest
from eth_abi import encode

from horus.domain.fills import AggregationError, MissingTimestampError, aggregate, aggregate_apart
from horus.domain.ids import leader_fill_id
from horus.ingest import logic
from horus.venue.polymarket.exchanges import ORDER_FILLED_V1_TOPIC, ORDER_FILLED_V2_TOPIC, ExchangeBook

EXCHANGE = "0x" + "e1" * 20
L1, L2, OTHER = "0x" + "a1" * 20, "0x" + "a2" * 20, "0x" + "5e" * 20
BOOK = ExchangeBook.of(EXCHANGE)


def word(address: str) -> str:
    return "0x" + "00" * 12 + address[2:]


def v2_log(
    maker: str,
    tx: str,
    block: int,
    index: int,
    side=0,
    token=7,
    maker_amt=1_000_000,
    taker_amt=2_000_000,
    taker: str = OTHER,
    removed=False,
) -> dict:
    data = encode(
        ["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"],
        [side, token, maker_amt, taker_amt, 0, b"\0" * 32, b"\0" * 32],
    )
    return {
        "address": EXCHANGE,
        "topics": [ORDER_FILLED_V2_TOPIC, "0x" + f"{index:064x}", word(maker), word(taker)],
        "data": "0x" + data.hex(),
        "blockNumber": hex(block),
        "logIndex": hex(index),
        "transactionHash": tx,
        "blockHash": "0x" + f"{block:064x}",
        "removed": removed,
    }


TX1, TX2 = "0x" + "11" * 32, "0x" + "22" * 32


def test_ws_url_follows_the_rpc_port():
    assert logic.ws_url("http://127.0.0.1:8545") == "ws://127.0.0.1:8545"
    assert logic.ws_url("https://node.example/rpc/key") == "wss://node.example/rpc/key"
    assert logic.ws_url("ws://h:1") == "ws://h:1"
    with pytest.raises(ValueError):
        logic.ws_url("ipc:///tmp/x")


def test_logs_filter_has_both_topics_and_the_leaders_as_maker():
    flt = logic.logs_filter(BOOK, [L2, L1, L1], 10, 12)
    assert flt["topics"][0] == sorted([ORDER_FILLED_V1_TOPIC, ORDER_FILLED_V2_TOPIC])
    assert flt["topics"][1] is None and flt["topics"][2] == [word(L1), word(L2)]
    assert [a.lower() for a in flt["address"]] == [EXCHANGE]
    assert flt["fromBlock"] == "0xa" and flt["toBlock"] == "0xc"
    with pytest.raises(ValueError):  # [] in a topic position would match every maker
        logic.logs_filter(BOOK, [])


def test_block_ranges_and_start_block():
    assert logic.block_ranges(5, 9, 2) == [(5, 6), (7, 8), (9, 9)]
    assert logic.block_ranges(5, 4, 2) == []
    assert logic.block_ranges(1, 1, 100) == [(1, 1)]
    assert logic.start_block(41, 3, head=100, confirmations=0) == 42  # the cursor wins over --from-block
    assert logic.start_block(None, 3, head=100, confirmations=0) == 3
    assert logic.start_block(None, None, head=100, confirmations=2) == 99
    assert logic.safe_head(100, 5) == 95


def test_a_multi_log_tx_becomes_one_event_per_leader_token_side():
    logs = [
        v2_log(L1, TX1, 7, 0),
        v2_log(L1, TX1, 7, 1, maker_amt=3_000_000, taker_amt=6_000_000, taker=EXCHANGE),
        v2_log(L2, TX1, 7, 2, side=1),
        v2_log(OTHER, TX1, 7, 3),
        v2_log(L1, TX2, 8, 0, token=9),
    ]
    batch = logic.decode_batch(logs, BOOK)
    assert batch.blocks_needing_time() == {7, 8} and batch.last_position == (8, 0)
    records = aggregate(batch.fills, [L1, L2], block_time={7: 1_000, 8: 1_002}, produced_at_us=5)
    by_id = {r["envelope"]["event_id"]: r for r in records}
    assert set(by_id) == {
        leader_fill_id(TX1, L1, "7", "BUY"),
        leader_fill_id(TX1, L2, "7", "SELL"),
        leader_fill_id(TX2, L1, "9", "BUY"),
    }
    summed = by_id[leader_fill_id(TX1, L1, "7", "BUY")]
    assert (summed["shares_e6"], summed["collateral_e6"], summed["price"], summed["role"]) == (
        8_000_000,
        4_000_000,
        "0.5",
        "TAKER",
    )
    assert summed["envelope"]["occurred_at_us"] == 1_000 * 1_000_000
    # the same logs in another order (or seen twice) give the same events
    again = aggregate(
        logic.decode_batch(list(reversed(logs)) + logs[:2], BOOK).fills,
        [L1, L2],
        block_time={7: 1_000, 8: 1_002},
        produced_at_us=5,
    )
    assert again == records


def test_bad_and_removed_logs_are_set_aside_with_their_position():
    short = v2_log(L1, TX1, 7, 0)
    short["data"] = short["data"][:100]
    three = v2_log(L1, TX1, 7, 1)
    three["topics"] = three["topics"][:3]
    gone = v2_log(L1, TX2, 7, 2, removed=True)
    batch = logic.decode_batch([short, three, gone], BOOK)
    assert [e.reason for _, e in batch.bad] == ["bad-data", "bad-topics"]
    assert [f.event_id for f in batch.removed] == [leader_fill_id(TX2, L1, "7", "BUY")] and batch.fills == []
    assert json.loads(logic.raw_log_json({"data": b"\x01\x02", "topics": [b"\xff"], "n": 3})) == {
        "data": "0x0102",
        "topics": ["0xff"],
        "n": 3,
    }


def test_cursor_after_a_range():
    batch = logic.decode_batch([v2_log(L1, TX1, 7, 4)], BOOK)
    assert logic.cursor_after(7, batch) == (7, 4)
    assert logic.cursor_after(9, batch) == (9, logic.NO_LOG)  # later blocks of the range had nothing
    assert logic.cursor_after(9, logic.Batch()) == (9, logic.NO_LOG)


def test_watchdog():
    base = dict(now=100.0, stall_seconds=10.0, last_head_at=95.0)
    assert logic.stall_reason(last_message_at=95.0, seen_head=5, probed_head=9, **base) is None  # not silent yet
    assert logic.stall_reason(last_message_at=80.0, seen_head=5, probed_head=5, **base) is None  # quiet chain
    assert "head moved" in logic.stall_reason(last_message_at=80.0, seen_head=5, probed_head=6, **base)
    assert "probe failed" in logic.stall_reason(last_message_at=80.0, seen_head=5, probed_head=None, **base)
    assert "no new head" in logic.stall_reason(
        last_message_at=99.0, seen_head=5, probed_head=5, max_head_age=4.0, **base
    )


def test_a_fill_whose_sums_overflow_is_set_apart_and_the_other_fills_are_summed():
    """Each log's amounts fit the schema, their sum in one transaction does not: aggregate raised for the whole
    range, and the chain source retried that range forever. Now only that fill is set apart (to be parked)."""
    big = 2**63 - 1
    logs = [
        v2_log(L1, TX1, 7, 0, maker_amt=big, taker_amt=big),
        v2_log(L1, TX1, 7, 1, maker_amt=big, taker_amt=big),
        v2_log(L1, TX2, 8, 0),
    ]
    batch = logic.decode_batch(logs, BOOK)
    with pytest.raises(AggregationError):
        aggregate(batch.fills, [L1], block_time={7: 1_000, 8: 1_002})
    records, apart = aggregate_apart(
        batch.fills, [L1], source="chain", block_time={7: 1_000, 8: 1_002}, produced_at_us=5
    )
    assert [r["envelope"]["event_id"] for r in records] == [leader_fill_id(TX2, L1, "7", "BUY")]
    ((fills, error),) = apart
    assert [f.log_index for f in fills] == [0, 1] and "exceeds 2^63-1" in str(error)
    assert aggregate_apart(batch.fills[2:], [L1], source="chain", block_time={8: 1_002}, produced_at_us=5) == (
        records,
        [],
    )
    with pytest.raises(MissingTimestampError):  # a node that gave no block time: retried, never parked
        aggregate_apart(batch.fills[2:], [L1], source="chain", block_time={})
