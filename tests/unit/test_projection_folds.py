"""The projection folds are pure: same messages in, same rows out; bad input becomes a dead letter."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horus.codec import default_codec
from horus.db.models import Base
from horus.domain.config import config_change, parse_follower
from horus.domain.control import control_command
from horus.domain.events import envelope
from projections.folds import (
    ALL_PROJECTIONS,
    COPY_DECISIONS_PROJECTION,
    DEAD_LETTERS_PROJECTION,
    EPOCH,
    EXECUTION_RESULTS_PROJECTION,
    LEADER_FILLS_PROJECTION,
    SETTLEMENT_EVENTS_PROJECTION,
    SourceMessage,
    fold_batch,
    timestamp,
)

PREFIX = "t."
T0_US = 1_760_000_000_123_456


# ------------------------------------------------------------------------------ record builders
def leader_fill(i: int, **overrides) -> dict:
    record = {
        "envelope": envelope(f"lf-{i:08d}", "chain", T0_US + i, produced_at_us=T0_US + i + 7),
        "leader": f"0x{(i % 17):040x}",
        "exchange": "0x" + "e" * 40,
        "tx_hash": f"0x{i:064x}",
        "block_number": 70_000_000 + i,
        "log_index": i % 300,
        "token_id": str(10**70 + i),
        "condition_id": f"0x{(i % 5):064x}",
        "side": "BUY" if i % 2 else "SELL",
        "shares_e6": 1_000_000 + i,
        "collateral_e6": 530_000 + i,
        "price": "0.53",
        "fee_e6": i % 3,
        "role": "TAKER" if i % 3 else "MAKER",
        "order_hashes": [f"0x{i:064x}", f"0x{i + 1:064x}"][: 1 + i % 2],
    }
    record.update(overrides)
    return record


def leader_fill_retraction(i: int, **overrides) -> dict:
    """The retraction of leader_fill(i): a reorg removed its log."""
    record = {
        "envelope": envelope(
            f"lr-{i:08d}", "chain", T0_US + 1000 + i, causation_id=f"lf-{i:08d}", produced_at_us=T0_US + 1000 + i
        ),
        "leader_fill_id": f"lf-{i:08d}",
        "leader": f"0x{(i % 17):040x}",
        "tx_hash": f"0x{i:064x}",
        "block_number": 70_000_000 + i,
        "reason": f"reorg: log removed (block 0x{i:064x})",
    }
    record.update(overrides)
    return record


def copy_candidate(i: int, **overrides) -> dict:
    record = {
        "envelope": envelope(
            f"cc-{i:08d}", "plan", T0_US + i, causation_id=f"lf-{i:08d}", produced_at_us=T0_US + i + 3
        ),
        "leader_fill_id": f"lf-{i:08d}",
        "follow_id": f"follow-{i % 7}",
        "follower": f"0x{(i % 11):040x}",
        "leader": f"0x{(i % 17):040x}",
        "token_id": str(10**70 + i),
        "side": "BUY" if i % 2 else "SELL",
        "leader_shares_e6": 1_000_000 + i,
        "leader_collateral_e6": 530_000 + i,
        "leader_price": "0.53",
        "condition_id": f"0x{(i % 5):064x}" if i % 4 else None,
    }
    record.update(overrides)
    return record


def copy_decision(i: int, **overrides) -> dict:
    copy_ = i % 2 == 0
    record = {
        "envelope": envelope(f"cd-{i:08d}", "decide", T0_US + i, causation_id=f"cc-{i:08d}", produced_at_us=T0_US + i),
        "candidate_id": f"cc-{i:08d}",
        "follow_id": f"follow-{i % 7}",
        "follower": f"0x{(i % 11):040x}",
        "leader_fill_id": f"lf-{i:08d}",
        "action": "COPY" if copy_ else "SKIP",
        "intent_id": f"intent-{i:08d}" if copy_ else None,
        "token_id": str(10**70 + i),
        "side": "BUY",
        "size_e6": 2_000_000 if copy_ else 0,
        "worst_price": "0.55" if copy_ else None,
        "order_type": "FOK" if copy_ else None,
        "expires_at_us": T0_US + 60_000_000 if copy_ else None,
        "reason_code": None if copy_ else "DAILY_LIMIT",
        "reason_detail": None if copy_ else "daily spend limit reached",
    }
    record.update(overrides)
    return record


def execution_result(i: int, **overrides) -> dict:
    record = {
        "envelope": envelope(f"er-{i:08d}", "execute", T0_US + i, causation_id=f"cd-{i:08d}", produced_at_us=T0_US + i),
        "intent_id": f"intent-{i:08d}",
        "follow_id": f"follow-{i % 7}",
        "follower": f"0x{(i % 11):040x}",
        "leader_fill_id": f"lf-{i:08d}",
        "status": "FILLED",
        "order_hash": f"0x{i:064x}",
        "filled_shares_e6": 2_000_000,
        "filled_collateral_e6": 1_060_000,
        "avg_price": "0.530000",
        "fee_e6": 0,
        "error": None,
        "attempts": 1,
    }
    record.update(overrides)
    return record


def settlement_event(i: int, **overrides) -> dict:
    record = {
        "envelope": envelope(f"se-{i:08d}", "settle", T0_US + i, produced_at_us=T0_US + i),
        "follower": f"0x{(i % 11):040x}",
        "intent_id": f"intent-{i:08d}",
        "kind": "REIMBURSED",
        "amount_e6": 1_060_000,
        "token_id": None,
        "tx_hash": f"0x{i:064x}",
        "debt_id": None,
    }
    record.update(overrides)
    return record


def dead_letter(i: int, **overrides) -> dict:
    record = {
        "envelope": envelope(f"dl-{i:08d}", "plan", T0_US + i, produced_at_us=T0_US + i),
        "source_topic": f"{PREFIX}leader.fills",
        "source_partition": i % 3,
        "source_offset": i,
        "key": b"0xabc",
        "original": b"\x00garbage\xff" + bytes([i % 256]),
        "error": "plan failed",
        "stage": "plan",
    }
    record.update(overrides)
    return record


BUILDERS = {
    "LeaderFill": leader_fill,
    "LeaderFillRetracted": leader_fill_retraction,
    "CopyCandidate": copy_candidate,
    "CopyDecision": copy_decision,
    "ExecutionResult": execution_result,
    "SettlementEvent": settlement_event,
    "DeadLetter": dead_letter,
}
# config and control tables hold the latest state per key (shape test only; the mixes stay event tables)
SHAPE_BUILDERS = {
    **BUILDERS,
    "ConfigChange": lambda i: config_change(
        "FOLLOWER", f"0x{i:040x}", parse_follower({"follower": f"0x{i:040x}"}), "t", T0_US
    ),
    "ControlCommand": lambda i: control_command("MARKET", "PAUSE", f"0x{i:064x}", occurred_at_us=T0_US),
}
BY_TYPE = {record_type: p for p in ALL_PROJECTIONS for record_type in p.record_types}
# the (first) table of each record type
TABLE_OF = {
    **{p.record_type: p.table for p in ALL_PROJECTIONS},
    **{other.record_type: other.table for p in ALL_PROJECTIONS for other in p.other_types},
}
BY_TOPIC = {PREFIX + p.topic: p for p in ALL_PROJECTIONS}


def message(
    record_type: str,
    record: dict | None,
    offset: int = 0,
    partition: int = 0,
    *,
    value: bytes | None = b"...",
    topic: str | None = None,
    error: str | None = None,
    key: bytes | None = b"k",
    timestamp_us: int | None = T0_US,
) -> SourceMessage:
    return SourceMessage(
        topic=topic or PREFIX + BY_TYPE[record_type].topic,
        partition=partition,
        offset=offset,
        value=value,
        key=key,
        timestamp_us=timestamp_us,
        record_type=None if error else record_type,
        record=record,
        error=error,
    )


def decoded(topic_type: str, raw: bytes, offset: int = 0, partition: int = 0) -> SourceMessage:
    """A message as the runner builds it: through the real codec."""
    try:
        record_type, record = default_codec().decode(raw)
        error = None
    except Exception as exc:  # noqa: BLE001
        record_type, record, error = None, None, f"{type(exc).__name__}: {exc}"
    return SourceMessage(
        topic=PREFIX + BY_TYPE[topic_type].topic,
        partition=partition,
        offset=offset,
        value=raw,
        key=b"k",
        timestamp_us=T0_US,
        record_type=record_type,
        record=record,
        error=error,
    )


def mixed_batch(n: int) -> list[SourceMessage]:
    types = list(BUILDERS)
    out = []
    for i in range(n):
        kind = types[i % len(types)]
        out.append(message(kind, BUILDERS[kind](i), offset=i // len(types), partition=i % 3))
    return out


# ------------------------------------------------------------------------------ shape
@pytest.mark.parametrize("record_type", list(TABLE_OF))
def test_rows_have_exactly_the_table_columns(record_type):
    result = BY_TYPE[record_type].fold([message(record_type, SHAPE_BUILDERS[record_type](1))])
    assert result.parked == 0
    (row,) = result.rows[TABLE_OF[record_type]]
    assert set(row) == {c.name for c in Base.metadata.tables[TABLE_OF[record_type]].columns}


def test_every_record_round_trips_through_the_codec_and_folds():
    codec = default_codec()
    for record_type, builder in BUILDERS.items():
        raw = codec.encode(record_type, builder(3))
        result = BY_TYPE[record_type].fold([decoded(record_type, raw, offset=9, partition=2)])
        assert result.parked == 0, result.rows
        (row,) = result.rows[TABLE_OF[record_type]]
        if record_type != "DeadLetter":
            assert (row["kafka_partition"], row["kafka_offset"]) == (2, 9)


def test_leader_fill_mapping():
    record = leader_fill(5, price="0.5300", condition_id=None)
    (row,) = LEADER_FILLS_PROJECTION.fold([message("LeaderFill", record, offset=42, partition=1)]).rows["leader_fills"]
    assert row["event_id"] == "lf-00000005"
    assert row["occurred_at"] == datetime(2025, 10, 9, 8, 53, 20, 123461, tzinfo=UTC)
    assert row["produced_at"] == timestamp(T0_US + 12)
    assert row["price"] == Decimal("0.5300") and str(row["price"]) == "0.5300"  # scale kept exactly
    assert row["condition_id"] is None
    assert row["order_hashes"] == record["order_hashes"]
    assert (row["kafka_partition"], row["kafka_offset"]) == (1, 42)


def test_a_fill_and_its_retraction_on_one_topic_fold_into_their_own_tables():
    codec = default_codec()
    batch = [
        decoded("LeaderFill", codec.encode("LeaderFill", leader_fill(4)), offset=10, partition=1),
        decoded("LeaderFill", codec.encode("LeaderFillRetracted", leader_fill_retraction(4)), offset=11, partition=1),
    ]
    result = LEADER_FILLS_PROJECTION.fold(batch)
    assert result.parked == 0 and result.counts() == {"leader_fills": 1, "leader_fill_retractions": 1}
    (fill,) = result.rows["leader_fills"]
    (retraction,) = result.rows["leader_fill_retractions"]
    assert retraction["leader_fill_id"] == fill["event_id"] == "lf-00000004"
    assert retraction["event_id"] == "lr-00000004" and retraction["causation_id"] == "lf-00000004"
    assert (retraction["leader"], retraction["tx_hash"]) == (fill["leader"], fill["tx_hash"])
    assert retraction["block_number"] == 70_000_004 and retraction["reason"].startswith("reorg: log removed")
    assert retraction["occurred_at"] == timestamp(T0_US + 1004)  # the event's time, not the clock
    assert (retraction["kafka_partition"], retraction["kafka_offset"]) == (1, 11)
    assert result.sources["leader_fill_retractions"] == [batch[1]]


@pytest.mark.parametrize(
    "record, reason",
    [
        (leader_fill_retraction(1, block_number=-1), "block_number=-1 is out of range [0, 9223372036854775807]"),
        (leader_fill_retraction(1, leader_fill_id=""), "leader_fill_id is empty"),
        ({k: v for k, v in leader_fill_retraction(1).items() if k != "reason"}, "reason is missing"),
    ],
)
def test_a_bad_retraction_is_parked_naming_its_type(record, reason):
    result = LEADER_FILLS_PROJECTION.fold([message("LeaderFillRetracted", record, offset=6, value=b"raw")])
    (row,) = result.rows["dead_letters"]
    assert result.parked == 1 and set(result.rows) == {"dead_letters"}
    assert row["error"] == f"bad LeaderFillRetracted: {reason}" and row["original"] == b"raw"
    assert row["event_id"] == "lr-00000001"


def test_copy_candidate_mapping():
    from projections.folds import COPY_CANDIDATES_PROJECTION

    assert COPY_CANDIDATES_PROJECTION.topic == "copy.candidates" and COPY_CANDIDATES_PROJECTION in ALL_PROJECTIONS
    (row,) = COPY_CANDIDATES_PROJECTION.fold([message("CopyCandidate", copy_candidate(5), offset=9, partition=2)]).rows[
        "copy_candidates"
    ]
    assert (row["event_id"], row["causation_id"], row["kafka_partition"], row["kafka_offset"]) == (
        "cc-00000005",
        "lf-00000005",
        2,
        9,
    )
    assert (row["follow_id"], row["follower"], row["leader"], row["side"]) == (
        "follow-5",
        f"0x{5:040x}",
        f"0x{5:040x}",
        "BUY",
    )
    assert (row["leader_shares_e6"], row["leader_collateral_e6"], row["leader_price"]) == (
        1_000_005,
        530_005,
        Decimal("0.53"),
    )
    assert row["occurred_at"] == timestamp(T0_US + 5) and row["produced_at"] == timestamp(T0_US + 8)
    # a hostile candidate decide would SKIP is parked here when the table cannot hold it, never stored half
    for bad in ({"leader_price": "abc"}, {"side": "UNRECOGNIZED"}, {"follower": "x\x00"}):
        hostile = message("CopyCandidate", copy_candidate(1, **bad))
        table, parked_row, parked = COPY_CANDIDATES_PROJECTION.fold_one(hostile)
        assert parked and table == "dead_letters", bad


def test_copy_decision_mapping_copy_and_skip():
    rows = COPY_DECISIONS_PROJECTION.fold(
        [message("CopyDecision", copy_decision(0)), message("CopyDecision", copy_decision(1), offset=1)]
    ).rows["copy_decisions"]
    copy_row, skip_row = rows
    assert copy_row["action"] == "COPY" and copy_row["worst_price"] == Decimal("0.55")
    assert copy_row["expires_at"] == timestamp(T0_US + 60_000_000)
    assert copy_row["causation_id"] == "cc-00000000"
    assert skip_row["action"] == "SKIP" and skip_row["worst_price"] is None and skip_row["expires_at"] is None
    assert skip_row["reason_code"] == "DAILY_LIMIT"


def test_execution_result_and_settlement_mapping():
    (er,) = EXECUTION_RESULTS_PROJECTION.fold([message("ExecutionResult", execution_result(3))]).rows[
        "execution_results"
    ]
    assert er["status"] == "FILLED" and er["avg_price"] == Decimal("0.530000") and er["attempts"] == 1
    (se,) = SETTLEMENT_EVENTS_PROJECTION.fold([message("SettlementEvent", settlement_event(3))]).rows[
        "settlement_events"
    ]
    assert se["kind"] == "REIMBURSED" and se["amount_e6"] == 1_060_000 and se["debt_id"] is None


def test_dead_letter_event_describes_the_parked_message():
    record = dead_letter(4)
    (row,) = DEAD_LETTERS_PROJECTION.fold([message("DeadLetter", record, offset=77)]).rows["dead_letters"]
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == (f"{PREFIX}leader.fills", 1, 4)
    assert row["original"] == record["original"] and row["key"] == b"0xabc"
    assert row["stage"] == "plan" and row["event_id"] == "dl-00000004"
    assert row["occurred_at"] == timestamp(T0_US + 4)


# ------------------------------------------------------------------------------ determinism
def test_same_input_same_rows_and_input_untouched():
    batch = mixed_batch(200)
    snapshot = copy.deepcopy(batch)
    first = fold_batch(BY_TOPIC, batch)
    second = fold_batch(BY_TOPIC, batch)
    assert first.rows == second.rows
    assert batch == snapshot  # the fold mutates nothing it was given
    assert sum(first.counts().values()) == 200 and first.parked == 0


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 60), cuts=st.lists(st.integers(0, 60), max_size=5))
def test_folding_in_any_batch_split_gives_the_same_rows(n, cuts):
    """The runner's batch boundaries depend on timing; the rows must not."""
    batch = mixed_batch(n)
    whole = fold_batch(BY_TOPIC, batch).rows
    pieces: dict[str, list] = {}
    bounds = sorted({0, n, *[c for c in cuts if c <= n]})
    for lo, hi in zip(bounds, bounds[1:]):
        for table, rows in fold_batch(BY_TOPIC, batch[lo:hi]).rows.items():
            pieces.setdefault(table, []).extend(rows)
    assert pieces == whole


ints64 = st.integers(-(2**63), 2**63 - 1)
text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30)
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**6), max_value=10**6)


@settings(max_examples=200, deadline=None)
@given(
    event_id=text.filter(bool),
    occurred=st.integers(-(10**15), 10**17),
    shares=ints64,
    collateral=ints64,
    fee=ints64,
    price=decimals,
    side=st.sampled_from(["BUY", "SELL"]),
    role=st.sampled_from(["MAKER", "TAKER"]),
    hashes=st.lists(text, max_size=4),
    block=st.integers(0, 2**63 - 1),
    log_index=st.integers(0, 2**31 - 1),
)
def test_leader_fill_field_mapping_through_the_codec(
    event_id, occurred, shares, collateral, fee, price, side, role, hashes, block, log_index
):
    record = leader_fill(
        1,
        envelope=envelope(event_id, "chain", occurred, produced_at_us=occurred),
        shares_e6=shares,
        collateral_e6=collateral,
        fee_e6=fee,
        price=str(price),
        side=side,
        role=role,
        order_hashes=hashes,
        block_number=block,
        log_index=log_index,
    )
    raw = default_codec().encode("LeaderFill", record)
    result = LEADER_FILLS_PROJECTION.fold([decoded("LeaderFill", raw)])
    (row,) = result.rows["leader_fills"]
    assert row["event_id"] == event_id
    assert row["occurred_at"].tzinfo is not None
    assert row["occurred_at"] - EPOCH == timedelta(microseconds=occurred)  # exact to the microsecond
    assert (row["shares_e6"], row["collateral_e6"], row["fee_e6"]) == (shares, collateral, fee)
    assert row["price"] == price and str(row["price"]) == str(price)
    assert (row["side"], row["role"], row["order_hashes"]) == (side, role, hashes)
    assert (row["block_number"], row["log_index"]) == (block, log_index)


@settings(max_examples=100, deadline=None)
@given(
    event_id=text.filter(bool),
    fill_id=text.filter(bool),
    occurred=st.integers(-(10**15), 10**17),
    block=st.integers(0, 2**63 - 1),
    reason=text,
)
def test_leader_fill_retraction_field_mapping_through_the_codec(event_id, fill_id, occurred, block, reason):
    record = leader_fill_retraction(
        1,
        envelope=envelope(event_id, "chain", occurred, causation_id=fill_id, produced_at_us=occurred),
        leader_fill_id=fill_id,
        block_number=block,
        reason=reason,
    )
    raw = default_codec().encode("LeaderFillRetracted", record)
    first, second = (LEADER_FILLS_PROJECTION.fold([decoded("LeaderFillRetracted", raw, offset=3)]) for _ in range(2))
    assert first.rows == second.rows and first.parked == 0
    (row,) = first.rows["leader_fill_retractions"]
    assert (row["event_id"], row["leader_fill_id"], row["causation_id"]) == (event_id, fill_id, fill_id)
    assert row["occurred_at"] - EPOCH == timedelta(microseconds=occurred)
    assert (row["block_number"], row["reason"], row["kafka_offset"]) == (block, reason, 3)


# ------------------------------------------------------------------------------ bad input
@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200), kind=st.sampled_from(list(BUILDERS)))
def test_any_bytes_give_exactly_one_row_and_never_raise(raw, kind):
    result = BY_TYPE[kind].fold([decoded(kind, raw, offset=5)])
    assert sum(result.counts().values()) == 1
    if result.parked:
        (row,) = result.rows["dead_letters"]
        assert row["original"] == raw and row["stage"] == "projections" and row["source_offset"] == 5


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, 400), flip=st.integers(0, 400))
def test_truncated_or_corrupted_events_are_parked_with_their_exact_bytes(cut, flip):
    raw = bytearray(default_codec().encode("LeaderFill", leader_fill(9)))
    raw = raw[: cut % (len(raw) + 1)]
    if raw and flip < len(raw):
        raw[flip] ^= 0xFF
    result = LEADER_FILLS_PROJECTION.fold([decoded("LeaderFill", bytes(raw))])
    assert sum(result.counts().values()) == 1
    for row in result.rows.get("dead_letters", []):
        assert row["original"] == bytes(raw)


@pytest.mark.parametrize(
    "record, reason",
    [
        (leader_fill(1, price="abc"), "not a decimal"),
        (leader_fill(1, price="NaN"), "not finite"),
        (leader_fill(1, side="HOLD"), "side"),
        (leader_fill(1, leader="0x\x00"), "NUL"),
        (leader_fill(1, shares_e6=2**63), "out of range"),
        (leader_fill(1, shares_e6=True), "not an integer"),
        (leader_fill(1, log_index=-1), "out of range"),
        (leader_fill(1, envelope={**leader_fill(1)["envelope"], "occurred_at_us": 10**19}), "out of range"),
        (leader_fill(1, envelope={**leader_fill(1)["envelope"], "event_id": ""}), "event_id is empty"),
        ({k: v for k, v in leader_fill(1).items() if k != "tx_hash"}, "tx_hash is missing"),
        ({k: v for k, v in leader_fill(1).items() if k != "envelope"}, "envelope is missing"),
    ],
)
def test_values_postgres_would_refuse_become_dead_letters(record, reason):
    result = LEADER_FILLS_PROJECTION.fold([message("LeaderFill", record, offset=3, value=b"raw-bytes")])
    assert result.parked == 1 and "leader_fills" not in result.rows
    (row,) = result.rows["dead_letters"]
    assert reason in row["error"] and row["original"] == b"raw-bytes"
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == ("t.leader.fills", 0, 3)
    assert row["occurred_at"] == timestamp(T0_US)  # the message's Kafka timestamp, not the clock


def test_wrong_record_type_undecodable_and_null_messages_are_parked():
    batch = [
        SourceMessage("t.leader.fills", 0, 0, b"x", None, T0_US, "CopyDecision", copy_decision(1)),
        SourceMessage("t.leader.fills", 0, 1, b"\xc3\x01junk", None, None, None, None, "FramingError: bad"),
        SourceMessage("t.leader.fills", 0, 2, None, b"k", T0_US),
    ]
    result = LEADER_FILLS_PROJECTION.fold(batch)
    rows = result.rows["dead_letters"]
    assert result.parked == 3 and len(rows) == 3
    assert (
        rows[0]["error"]
        == ("unexpected record type 'CopyDecision' on leader.fills (want LeaderFill or LeaderFillRetracted)")
        and rows[0]["event_id"] == "cd-00000001"
    )
    assert rows[1]["error"].startswith("undecodable") and rows[1]["original"] == b"\xc3\x01junk"
    assert rows[2]["original"] == b"" and rows[2]["occurred_at"] == timestamp(T0_US)


def test_a_single_type_projection_still_parks_a_retraction_naming_its_one_type():
    result = COPY_DECISIONS_PROJECTION.fold(
        [message("LeaderFillRetracted", leader_fill_retraction(2), topic="t.copy.decisions")]
    )
    (row,) = result.rows["dead_letters"]
    assert row["error"] == "unexpected record type 'LeaderFillRetracted' on copy.decisions (want CopyDecision)"
    assert COPY_DECISIONS_PROJECTION.tables == ("copy_decisions",)
    assert LEADER_FILLS_PROJECTION.tables == ("leader_fills", "leader_fill_retractions")


def test_a_dead_letter_event_with_bad_fields_is_parked_itself():
    result = DEAD_LETTERS_PROJECTION.fold([message("DeadLetter", dead_letter(1, source_partition=-1), offset=8)])
    (row,) = result.rows["dead_letters"]
    assert result.parked == 1 and row["source_topic"] == "t.dead.letters" and row["source_offset"] == 8
