"""`horus ingest chain` against real anvil, Kafka and Postgres: exactly once by event id, through bad logs,
live follow changes, dropped and silent sockets, and SIGKILLs."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
import uuid
from collections import Counter

import pytest
from web3 import Web3

from horus.domain import ids
from horus.domain.events import envelope
from horus.domain.fills import aggregate
from horus.kafka.client import flush_or_raise, make_producer
from horus.ops.testchain import V2_ORDER_FILLED_TOPIC0, RawLog, emit_batch, emit_raw, emit_v1, emit_v2, v2_log
from horus.topics import DEAD_LETTERS, LEADER_FILLS
from horus.venue.polymarket.exchanges import ExchangeBook
from tests.integration.ingest_helpers import (
    LEADERS,
    STRANGER,
    Ingest,
    _v1,
    _v2,
    codec,
    expected_from,
    fill_ids,
    follow,
    free_port,
    head,
    metric_values,
    read_topic,
)
from tests.integration.pipeline_helpers import wait_until

pytestmark = pytest.mark.integration


def test_chain_source_end_to_end(iso, emitters, tmp_path):
    """Backfill from --from-block, multi-log tx summed, strangers ignored, bad logs dead-lettered, then live:
    a new follow, a dropped socket and a silent socket; every fill exactly once."""
    rpc, book = iso.eth_rpc_url, ExchangeBook.of(emitters.v1, emitters.v2)
    l1, l2, l3 = LEADERS[0], LEADERS[1], LEADERS[2]
    follow(iso, "fa", l1)
    follow(iso, "fb", l2)
    first = head(iso) + 1
    receipts = [
        emit_v2(rpc, emitters.v2, _v2(l1, 1)),
        emit_v1(rpc, emitters.v1, _v1(l2, 2)),
        # one tx: two fills of l1 on token 7 BUY (one event, summed), l2 SELL on token 8, a stranger
        emit_batch(
            rpc, emitters.v2, [_v2(l1, 3), _v2(l1, 4, taker=emitters.v2), _v2(l2, 5, token=8, side=1), _v2(STRANGER, 6)]
        ),
        emit_v2(rpc, emitters.v2, _v2(STRANGER, 7)),
    ]
    short = v2_log(_v2(l1, 8), emitters.v2)
    bad = emit_raw(
        rpc,
        emitters.v2,
        [
            RawLog(short.topics[:3], short.data),  # 3 topics
            RawLog(short.topics, bytes(short.data)[:100]),
        ],
    )  # short data
    expected = expected_from(receipts, book, {l1, l2})
    assert len(expected) == 4
    port = free_port()
    proc = Ingest(iso, emitters, tmp_path / "ingest.log", first, "--metrics-port", str(port), HORUS_STALL_SECONDS=2)
    try:
        wait_until(lambda: set(fill_ids(iso)) >= expected, 30, "backfilled fills")
        fills = {r["envelope"]["event_id"]: r for n, r in read_topic(iso, LEADER_FILLS) if n == "LeaderFill"}
        summed = fills[ids.leader_fill_id(receipts[2]["transactionHash"].to_0x_hex(), l1, "7", "BUY")]
        assert summed["shares_e6"] == 2_000_000 * 4 + 2_000_000 * 5 and summed["role"] == "TAKER"
        assert len(summed["order_hashes"]) == 2

        dead = wait_until(
            lambda: [r for n, r in read_topic(iso, DEAD_LETTERS) if r["stage"] == "ingest-chain"], 15, "dead letters"
        )
        assert len(dead) == 2
        tx = bad["transactionHash"].to_0x_hex()
        for letter in dead:
            raw = json.loads(letter["original"])
            assert raw["transactionHash"] == tx and raw["topics"][0] == V2_ORDER_FILLED_TOPIC0
        errors = sorted(letter["error"] for letter in dead)
        assert "OrderFilled has 4 topics" in errors[0] and "data must be" in errors[1], errors

        # live: a fill of a followed leader, and a leader followed while running
        receipts.append(emit_v2(rpc, emitters.v2, _v2(l1, 9)))
        follow(iso, "fc", l3)
        time.sleep(1.0)
        sent_at_us = time.time_ns() // 1000
        receipts.append(emit_v2(rpc, emitters.v2, _v2(l3, 10)))  # anvil mines it at once
        expected = expected_from(receipts, book, {l1, l2, l3})
        wait_until(lambda: set(fill_ids(iso)) >= expected, 10, "live fills incl. the new leader", 0.1)
        new = next(r for n, r in read_topic(iso, LEADER_FILLS) if n == "LeaderFill" and r["leader"] == l3)
        print(
            f"\nnew leader's fill aggregated {(new['envelope']['produced_at_us'] - sent_at_us) / 1000:.1f} ms "
            f"after its transaction was sent"
        )

        # unfollowed: its later fills are not produced
        follow(iso, "fc", l3, delete=True)
        wait_until(lambda: "3 -> 2 leaders" in proc.log(), 10, "the leader set to shrink")
        unfollowed = expected_from([emit_v2(rpc, emitters.v2, _v2(l3, 12))], book, {l3})

        # drop the socket: fills mined meanwhile are backfilled
        proc.signal(signal.SIGUSR1)
        receipts += [emit_v2(rpc, emitters.v2, _v2(l2, 11 + i)) for i in range(3)]
        # silence it (socket open, no subscription): the watchdog must notice the head moving
        wait_until(lambda: "connection 2" in proc.log(), 15, "reconnect after the drop")
        time.sleep(0.5)
        proc.signal(signal.SIGUSR2)
        time.sleep(0.5)
        receipts += [emit_v1(rpc, emitters.v1, _v1(l1, 20 + i)) for i in range(2)]
        expected = expected_from(receipts, book, {l1, l2, l3})
        wait_until(lambda: set(fill_ids(iso)) >= expected, 20, "fills after drop and stall")
        assert "stall:" in proc.log()

        # a reorg replaces the block of a produced fill with an empty one: a retraction, and the source goes on
        doomed = emit_v2(rpc, emitters.v2, _v2(l2, 30))
        doomed_id = expected_from([doomed], book, {l2}).pop()
        wait_until(lambda: doomed_id in fill_ids(iso), 10, "the fill about to be reorged out", 0.1)
        Web3(Web3.HTTPProvider(rpc)).provider.make_request("anvil_reorg", [1, []])
        retracted = wait_until(
            lambda: [r for n, r in read_topic(iso, LEADER_FILLS) if n == "LeaderFillRetracted"], 10, "the retraction"
        )
        assert [r["leader_fill_id"] for r in retracted] == [doomed_id] and "REORG" in proc.log()
        receipts += [doomed, emit_v2(rpc, emitters.v2, _v2(l1, 31))]
        expected = expected_from(receipts, book, {l1, l2, l3})
        wait_until(lambda: set(fill_ids(iso)) >= expected, 10, "a fill after the reorg")

        time.sleep(1.0)
        counts = fill_ids(iso)
        assert set(counts) == expected and max(counts.values()) == 1, counts
        assert not unfollowed & set(counts)

        metrics = metric_values(port)
        assert metrics['horus_ingest_fills_total{source="chain"}'] == len(expected)
        assert metrics['horus_ingest_reconnects_total{source="chain"}'] >= 2
        assert metrics['horus_ingest_stalls_total{source="chain"}'] >= 1
        assert metrics['horus_ingest_retractions_total{source="chain"}'] == 1
        assert metrics['horus_ingest_bad_logs_total{reason="bad-topics",source="chain"}'] == 1
        assert metrics['horus_ingest_detection_lag_seconds_count{source="chain"}'] >= len(expected)
        assert metrics['horus_ingest_cursor_block{source="chain"}'] >= doomed["blockNumber"]
        assert proc.stop() == 0
    finally:
        proc.stop()


def test_sigkill_while_fills_stream_loses_and_duplicates_nothing(iso, emitters, tmp_path):
    rpc, book = iso.eth_rpc_url, ExchangeBook.of(emitters.v1, emitters.v2)
    leader = LEADERS[3]
    follow(iso, "fk", leader)
    first = head(iso) + 1
    receipts, stop = [], threading.Event()

    def stream() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            if n % 5 == 0:
                receipts.append(emit_batch(rpc, emitters.v2, [_v2(leader, n), _v2(leader, n + 1, token=11, side=1)]))
            elif n % 2:
                receipts.append(emit_v2(rpc, emitters.v2, _v2(leader, n, token=n % 3 + 1)))
            else:
                receipts.append(emit_v1(rpc, emitters.v1, _v1(leader, n)))
            time.sleep(0.05)

    emitter = threading.Thread(target=stream, daemon=True)
    emitter.start()
    proc = Ingest(iso, emitters, tmp_path / "ingest.log", first, HORUS_BACKFILL_CHUNK_BLOCKS=4)
    rng = random.Random()
    try:
        for _ in range(3):
            time.sleep(rng.uniform(1.5, 3.0))
            proc.kill()
            proc.start()
        time.sleep(2.0)
        stop.set()
        emitter.join(10)
        expected = expected_from(receipts, book, {leader})
        assert len(expected) > 30
        wait_until(lambda: set(fill_ids(iso)) >= expected, 30, "every streamed fill")
        time.sleep(1.0)
        counts = fill_ids(iso)
        assert set(counts) == expected
        assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
    finally:
        stop.set()
        proc.stop()


# ---------------------------------------------------------------------------------------------- the sink
def _record(leader: str, n: int) -> dict:
    tx = "0x" + ids.make_id("tx", leader, n, uuid.uuid4().hex)
    return {
        "envelope": envelope(ids.leader_fill_id(tx, leader, "5", "BUY"), "chain", 1_700_000_000_000_000),
        "leader": leader,
        "exchange": "0x" + "e1" * 20,
        "tx_hash": tx,
        "block_number": n,
        "log_index": 0,
        "token_id": "5",
        "condition_id": None,
        "side": "BUY",
        "shares_e6": 2_000_000,
        "collateral_e6": 1_000_000,
        "price": "0.5",
        "fee_e6": 0,
        "role": "MAKER",
        "order_hashes": [],
    }


def test_sink_produces_each_event_id_once_across_sources(iso):
    from prometheus_client import REGISTRY

    from horus.ingest.sink import FillSink

    records = [_record(LEADERS[0], n) for n in range(5)]
    chain, api = FillSink(iso, "chain"), FillSink(iso, "data-api")
    before = REGISTRY.get_sample_value("horus_ingest_duplicates_suppressed_total", {"source": "data-api"}) or 0
    assert len(chain.emit(records[:3])) == 3
    assert api.emit(records) == [r["envelope"]["event_id"] for r in records[3:]]
    assert chain.emit(records) == []
    assert REGISTRY.get_sample_value("horus_ingest_duplicates_suppressed_total", {"source": "data-api"}) - before == 3
    counts = fill_ids(iso)
    assert set(counts) == {r["envelope"]["event_id"] for r in records} and max(counts.values()) == 1


def test_sink_parks_future_dated_and_unencodable_fills_and_produces_the_rest(iso):
    """D12/D14: whatever the source (a chain block time from a skewed node, a replay file, a Data API row), a
    fill dated beyond the clock slack, or one whose values do not fit the schema, is parked in dead.letters
    with its JSON form and counted; the other fills of the same batch are produced."""
    from prometheus_client import REGISTRY

    from horus.domain.clock import CLOCK_SLACK_S
    from horus.ingest.sink import FillSink

    now_us = time.time_ns() // 1000
    good = [_record(LEADERS[3], n) for n in range(3)]
    future = _record(LEADERS[3], 10)
    future["envelope"]["occurred_at_us"] = now_us + (CLOCK_SLACK_S + 30) * 1_000_000
    overflow = _record(LEADERS[3], 11)
    overflow["shares_e6"] = 2**70
    within_slack = _record(LEADERS[3], 12)
    within_slack["envelope"]["occurred_at_us"] = now_us + 10 * 1_000_000

    def refused(reason):
        return REGISTRY.get_sample_value("horus_ingest_refused_total", {"source": "chain", "reason": reason}) or 0

    before = (refused("future"), refused("unencodable"))
    sink = FillSink(iso, "chain")
    produced = sink.emit([good[0], future, good[1], overflow, good[2], within_slack])
    assert produced == [r["envelope"]["event_id"] for r in (*good, within_slack)]
    assert (refused("future") - before[0], refused("unencodable") - before[1]) == (1, 1)
    assert set(fill_ids(iso)) == set(produced)
    parked = {
        json.loads(r["original"])["envelope"]["event_id"]: r
        for n, r in read_topic(iso, DEAD_LETTERS)
        if n == "DeadLetter"
    }
    assert set(parked) == {future["envelope"]["event_id"], overflow["envelope"]["event_id"]}
    assert "ahead of our clock" in parked[future["envelope"]["event_id"]]["error"]
    assert "shares_e6" in parked[overflow["envelope"]["event_id"]]["error"]
    assert all(r["stage"] == "ingest-chain" for r in parked.values())
    # the same bad fill seen again is parked under the same dead-letter id (consumers deduplicate), never produced
    assert sink.emit([future]) == []


def test_sink_recover_repairs_both_crash_windows(iso):
    """Pending claims: one never produced (crash after the claim), one produced but not marked (crash after
    the flush). recover() produces only the first."""
    import psycopg

    from horus.db.engine import psycopg_conninfo
    from horus.ingest.sink import FillSink

    never, unmarked = _record(LEADERS[1], 1), _record(LEADERS[1], 2)
    producer = make_producer(iso)
    producer.produce(iso.topic(LEADER_FILLS.name), codec.encode("LeaderFill", unmarked), key=unmarked["leader"])
    flush_or_raise(producer)
    with psycopg.connect(psycopg_conninfo(iso.database_url), autocommit=True) as conn:
        for record in (never, unmarked):
            conn.execute(
                "INSERT INTO leader_fill_claims (event_id, source, event_type, key, payload)"
                " VALUES (%s, 'chain', 'LeaderFill', %s, %s)",
                (record["envelope"]["event_id"], record["leader"], codec.encode("LeaderFill", record)),
            )
    sink = FillSink(iso, "chain")
    assert sink.recover() == {"found": 1, "reproduced": 1}
    assert sink.recover() == {"found": 0, "reproduced": 0}
    counts = fill_ids(iso)
    assert counts == Counter({never["envelope"]["event_id"]: 1, unmarked["envelope"]["event_id"]: 1})
    with psycopg.connect(psycopg_conninfo(iso.database_url)) as conn:
        assert conn.execute("SELECT DISTINCT status FROM leader_fill_claims").fetchall() == [("produced",)]


def test_a_removed_log_retracts_its_fill_and_rewinds_the_cursor(iso, caplog):
    """anvil sends no removed:true logs on a reorg, so the removed log is handed to the source directly."""
    import asyncio

    from eth_abi import encode as abi_encode

    from horus.ingest import chain
    from horus.ingest.sink import FillSink

    exchange, leader, tx = "0x" + "e1" * 20, LEADERS[2], "0x" + uuid.uuid4().hex * 2
    data = abi_encode(
        ["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"],
        [0, 5, 1_000_000, 2_000_000, 0, b"\0" * 32, b"\0" * 32],
    )
    log = {
        "address": exchange,
        "topics": [
            V2_ORDER_FILLED_TOPIC0,
            "0x" + "01" * 32,
            "0x" + "00" * 12 + leader[2:],
            "0x" + "00" * 12 + "5e" * 20,
        ],
        "data": "0x" + data.hex(),
        "blockNumber": 40,
        "logIndex": 3,
        "transactionHash": tx,
        "blockHash": "0x" + "b4" * 32,
        "removed": False,
    }
    sink = FillSink(iso, "chain")
    source = chain.ChainSource(iso, ExchangeBook.of(exchange), leaders=lambda: frozenset({leader}), sink=sink)
    records = aggregate(chain.logic.decode_batch([log], source.book).fills, {leader}, block_time={40: 1_000})
    assert len(sink.emit(records)) == 1
    source._set_cursor((42, chain.logic.NO_LOG))
    with caplog.at_level("ERROR", logger="horus.ingest.sink"):
        asyncio.run(source._on_removed({**log, "removed": True}))
        asyncio.run(source._on_removed({**log, "removed": True}))  # reported twice: one retraction
    assert "REORG" in caplog.text
    assert chain.read_cursor(sink.engine, "chain") == (39, chain.logic.NO_LOG)
    retractions = [r for n, r in read_topic(iso, LEADER_FILLS) if n == "LeaderFillRetracted"]
    assert len(retractions) == 1
    assert retractions[0]["leader_fill_id"] == records[0]["envelope"]["event_id"]
    assert (retractions[0]["leader"], retractions[0]["tx_hash"], retractions[0]["block_number"]) == (leader, tx, 40)


def test_a_fill_whose_sums_overflow_is_parked_and_the_range_goes_on(iso):
    """Two logs of one transaction whose amounts each fit, but whose sum does not: the range used to fail
    (AggregationError) and be retried forever, stalling the chain source. Now that fill is parked (its logs'
    fills as JSON), the transaction next to it is produced and the cursor moves past the range."""
    import asyncio

    from eth_abi import encode as abi_encode

    from horus.ingest import chain
    from horus.ingest.sink import FillSink

    exchange, leader = "0x" + "e1" * 20, LEADERS[2]
    big = 2**63 - 1

    def log(tx, index, amount):
        data = abi_encode(
            ["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"],
            [0, 5, amount, amount, 0, b"\0" * 32, b"\0" * 32],
        )
        return {
            "address": exchange,
            "topics": [
                V2_ORDER_FILLED_TOPIC0,
                "0x" + f"{index:064x}",
                "0x" + "00" * 12 + leader[2:],
                "0x" + "00" * 12 + "5e" * 20,
            ],
            "data": "0x" + data.hex(),
            "blockNumber": 50,
            "logIndex": index,
            "transactionHash": tx,
            "blockHash": "0x" + "b5" * 32,
            "removed": False,
        }

    overflow_tx, good_tx = "0x" + uuid.uuid4().hex * 2, "0x" + uuid.uuid4().hex * 2
    sink = FillSink(iso, "chain")
    source = chain.ChainSource(iso, ExchangeBook.of(exchange), leaders=lambda: frozenset({leader}), sink=sink)
    source.leaders = frozenset({leader})
    source.block_times[50] = int(time.time())
    asyncio.run(
        source._emit_range([log(overflow_tx, 1, big), log(overflow_tx, 2, big), log(good_tx, 3, 1_000_000)], 50)
    )
    assert set(fill_ids(iso)) == {ids.leader_fill_id(good_tx, leader, "5", "BUY")}
    assert chain.read_cursor(sink.engine, "chain") == (50, 3)
    parked = [r for n, r in read_topic(iso, DEAD_LETTERS) if n == "DeadLetter"]
    assert len(parked) == 1 and "exceeds 2^63-1" in parked[0]["error"] and parked[0]["stage"] == "ingest-chain"
    assert {f["log_index"] for f in json.loads(parked[0]["original"])} == {1, 2}
