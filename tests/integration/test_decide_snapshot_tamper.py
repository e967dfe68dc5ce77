"""D15: a decide snapshot row that was tampered with in Postgres is refused; the caps hold.

Real Kafka and Postgres, the stage in this process: a follower's history (three copies under a $30 daily cap)
is on copy.decisions, a stage folds it and writes its snapshot, then the row is changed the ways someone with
database access could (a byte flipped, spend made negative without the key, offsets moved), and also sealed
right but with a negative value (a writer bug, or a leaked key). Each time the next stage refuses the row
(warning + horus_decide_snapshots_total{outcome="refused"}), folds the whole history, and the next candidate
is still a DAILY_CAP skip."""

from __future__ import annotations

import json
import logging
import uuid
import zlib

import psycopg
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from horus.codec import default_codec
from horus.db.engine import psycopg_conninfo
from horus.domain.decide import DecideState, apply_decision
from horus.domain.decide_snapshot import MAC_BYTES, SnapshotPlace, seal
from horus.kafka.admin import create_topics
from horus.kafka.client import flush_or_raise, make_producer, produce_reliably
from horus.topics import COPY_DECISIONS
from streams.decide import DecideStage
from streams.partition_state import snapshot_mac_key
from streams.runtime import Runtime
from tests.unit.test_decide import FOLLOWER, candidate, one, view

pytestmark = pytest.mark.integration

CAPPED = {"daily_cap": "30"}


def refused() -> float:
    return REGISTRY.get_sample_value("horus_decide_snapshots_total", {"outcome": "refused"}) or 0.0


def sql(settings, statement: str, *args) -> list:
    with psycopg.connect(psycopg_conninfo(settings.database_url), autocommit=True) as conn:
        cursor = conn.execute(statement, args)
        return cursor.fetchall() if cursor.description else []


def stage_assigned(settings) -> DecideStage:
    stage = DecideStage(Runtime(settings))
    stage.assign([0])
    return stage


def close(stage: DecideStage) -> None:
    stage.changes.clear()  # leave the stored row as it is
    stage.revoke([0])
    if stage.snapshots is not None:
        stage.snapshots.close()
    stage.runtime.close()


@pytest.fixture
def history(settings):
    """Settings of a one-partition decide with snapshots on (by hand), and the follower's capped history on
    copy.decisions: $9.69 x 3 spent today of a $30 cap."""
    run = uuid.uuid4().hex[:6]
    s = settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}tamper{run}.",
            "app_id": f"{settings.app_id}-tamper{run}",
            "snapshot_key": SecretStr(f"snapshot-secret-{run}"),
            "decide_snapshot_every": 10**9,
            "decide_snapshot_interval_s": 0.0,
        }
    )
    create_topics(s, partitions=1)
    state, decisions = DecideState(), []
    for _ in range(3):
        decision = one(candidate(), state, view(CAPPED))
        assert decision["action"] == "COPY"
        decisions.append(decision)
        apply_decision(decision, state)
    assert one(candidate(), state, view(CAPPED))["reason_code"] == "DAILY_CAP"
    codec, producer = default_codec(), make_producer(s)
    for decision in decisions:
        produce_reliably(producer, s.topic(COPY_DECISIONS.name), codec.encode("CopyDecision", decision), key=FOLLOWER)
    flush_or_raise(producer)
    return s


def write_snapshot(s) -> dict:
    stage = stage_assigned(s)
    truth = dict(stage.state.books[FOLLOWER].spend)
    stage._snapshot([0])
    assert stage.snapshots.flush(30)
    close(stage)
    return truth


def row(s) -> tuple[int, int, bytes]:
    ((decisions, results, state),) = sql(
        s,
        "SELECT decisions_offset, results_offset, state FROM decide_snapshots WHERE group_id = %s AND partition = 0",
        s.app_id,
    )
    return decisions, results, bytes(state)


def with_negative_spend(state: bytes) -> bytes:
    books = json.loads(zlib.decompress(state))
    books[FOLLOWER]["spend"] = [[day, scope, -(10**12)] for day, scope, _ in books[FOLLOWER]["spend"]]
    return zlib.compress(json.dumps(books).encode())


def test_an_honest_snapshot_is_restored(history):
    truth = write_snapshot(history)
    before = refused()
    stage = stage_assigned(history)
    try:
        assert refused() == before
        assert stage.state.books[FOLLOWER].spend == truth
        assert one(candidate(), stage.state, view(CAPPED))["reason_code"] == "DAILY_CAP"
    finally:
        close(stage)


def flip_a_byte(s):
    sql(
        s,
        "UPDATE decide_snapshots SET state = set_byte(state, 50, get_byte(state, 50) # 1) WHERE group_id = %s",
        s.app_id,
    )


def negative_spend_without_the_key(s):
    _, _, blob = row(s)
    sql(
        s,
        "UPDATE decide_snapshots SET state = %s WHERE group_id = %s",
        blob[:MAC_BYTES] + with_negative_spend(blob[MAC_BYTES:]),
        s.app_id,
    )


def offsets_moved(s):
    sql(s, "UPDATE decide_snapshots SET decisions_offset = 0, results_offset = 0 WHERE group_id = %s", s.app_id)


def negative_spend_sealed_with_the_key(s):
    decisions, results, blob = row(s)
    place = SnapshotPlace(s.app_id, s.topic(COPY_DECISIONS.name), 0, decisions, results)
    sql(
        s,
        "UPDATE decide_snapshots SET state = %s WHERE group_id = %s",
        seal(with_negative_spend(blob[MAC_BYTES:]), snapshot_mac_key(s), place),
        s.app_id,
    )


@pytest.mark.parametrize(
    "tamper", [flip_a_byte, negative_spend_without_the_key, offsets_moved, negative_spend_sealed_with_the_key]
)
def test_a_tampered_snapshot_is_refused_and_the_caps_hold(history, tamper, caplog):
    truth = write_snapshot(history)
    tamper(history)
    before = refused()
    with caplog.at_level(logging.WARNING, logger="horus.streams.decide"):
        stage = stage_assigned(history)
    try:
        assert refused() == before + 1
        assert any("snapshot of partition 0 is refused" in r.getMessage() for r in caplog.records), caplog.text
        book = stage.state.books[FOLLOWER]
        assert book.spend == truth  # the whole history, folded
        assert one(candidate(), stage.state, view(CAPPED))["reason_code"] == "DAILY_CAP"
    finally:
        close(stage)
