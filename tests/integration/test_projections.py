"""Projections against the real broker and the real database (no mocks).

Each test gets its own topics (a fresh prefix under the session's) and empties the projection
tables of the session database first, so tests never see each other's events.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest
from confluent_kafka import TopicPartition
from typer.testing import CliRunner

from horus.cli.main import app
from horus.codec import default_codec
from horus.db.engine import psycopg_conninfo
from horus.kafka.admin import create_topics
from horus.kafka.client import flush_or_raise, make_admin, make_producer, produce_reliably
from horus.settings import Settings
from projections.folds import ALL_PROJECTIONS, LEADER_FILLS_PROJECTION, Projection, leader_fill_row
from projections.lag import projection_lag, topic_end_offsets
from projections.replay import ReplayBlocked, replay_all, table_checksums, truncate_projections
from projections.runner import ProjectionRunner, run_projections
from tests.unit.test_projection_folds import (
    copy_candidate,
    copy_decision,
    dead_letter,
    execution_result,
    leader_fill,
    leader_fill_retraction,
    settlement_event,
)

pytestmark = pytest.mark.integration

EVENT_TABLES = (
    "leader_fills",
    "copy_candidates",
    "copy_decisions",
    "execution_results",
    "settlement_events",
    "dead_letters",
)

PARTITIONS = 4
FAST_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture
def s(settings: Settings) -> Settings:
    """Fresh topics (own prefix and consumer group) and empty projection tables for one test."""
    run = uuid.uuid4().hex[:6]
    test_settings = settings.model_copy(
        update={"topic_prefix": f"{settings.topic_prefix}p{run}.", "app_id": f"{settings.app_id}-p{run}"}
    )
    created = create_topics(test_settings, partitions=PARTITIONS)
    with connect(test_settings) as conn:
        truncate_projections(conn)
    yield test_settings
    # the topics are this test's alone: drop them so a long session does not pile up partitions
    admin = make_admin(test_settings)  # keep a reference: a collected client cancels its futures
    for future in admin.delete_topics(list(created), request_timeout=30).values():
        try:
            future.result()
        except Exception:  # noqa: BLE001 - cleanup only
            pass


def connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(psycopg_conninfo(settings.database_url), autocommit=True)


# ------------------------------------------------------------------------------------- helpers
def produce(
    settings: Settings, items: list[tuple[str, bytes | None, bytes | str | None]]
) -> list[tuple[str, int, int]]:
    """Produce (catalogue topic, value, key) items; returns (topic, partition, offset) per item."""
    producer = make_producer(settings)
    where: list[tuple[str, int, int] | None] = [None] * len(items)

    def delivered(index):
        def callback(err, msg):
            assert err is None, err
            where[index] = (msg.topic(), msg.partition(), msg.offset())

        return callback

    for i, (topic, value, key) in enumerate(items):
        produce_reliably(producer, settings.topic(topic), value, key=key, on_delivery=delivered(i))
    flush_or_raise(producer)
    assert all(w is not None for w in where)
    return where  # type: ignore[return-value]


def encoded(kind: str, record: dict) -> bytes:
    return default_codec().encode(kind, record)


def fills(start: int, n: int) -> list[tuple[str, bytes, str]]:
    out = []
    for i in range(start, start + n):
        record = leader_fill(i)
        out.append(("leader.fills", encoded("LeaderFill", record), record["leader"]))
    return out


def scalar(settings: Settings, query: str, params=()):
    with connect(settings) as conn:
        return conn.execute(query, params).fetchone()[0]


def stored_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT topic, partition, next_offset FROM projection_offsets WHERE topic LIKE %s",
            (settings.topic_prefix + "%",),
        ).fetchall()
    return {(t, p): n for t, p, n in rows}


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    ends = topic_end_offsets(settings, [settings.topic(p.topic) for p in ALL_PROJECTIONS])
    return {key: end for key, end in ends.items() if end > 0}


def next_result(runner: ProjectionRunner, timeout: float = 15.0):
    """step() until a batch comes back (a seek needs a fetch round trip before messages flow)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = runner.step()
        if result is not None:
            return result
    raise AssertionError("no batch arrived")


def quiet(runner: ProjectionRunner, seconds: float = 1.5) -> bool:
    """True when step() finds nothing to do for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if runner.step() is not None:
            return False
    return True


def assert_offsets_at_end(settings: Settings) -> None:
    ends = end_offsets(settings)
    stored = stored_offsets(settings)
    assert {k: stored.get(k) for k in ends} == ends


# ------------------------------------------------------------------------------------- tests
def test_every_event_is_folded_once_and_offsets_reach_the_end(s):
    items = fills(0, 1200)
    items += [
        ("copy.decisions", encoded("CopyDecision", copy_decision(i)), copy_decision(i)["follower"]) for i in range(300)
    ]
    items += [
        ("execution.results", encoded("ExecutionResult", execution_result(i)), execution_result(i)["follower"])
        for i in range(200)
    ]
    items += [
        ("settlement.events", encoded("SettlementEvent", settlement_event(i)), settlement_event(i)["follower"])
        for i in range(100)
    ]
    items += [
        ("dead.letters", encoded("DeadLetter", dead_letter(i)), dead_letter(i)["source_topic"]) for i in range(20)
    ]
    where = produce(s, items)

    batches = []
    stats = run_projections(s, threading.Event(), until_caught_up=True, on_batch=batches.append, batch_size=500)

    counts = {
        t: scalar(s, f"SELECT count(*) FROM {t}")
        for t in ("leader_fills", "copy_decisions", "execution_results", "settlement_events", "dead_letters")
    }
    assert counts == {
        "leader_fills": 1200,
        "copy_decisions": 300,
        "execution_results": 200,
        "settlement_events": 100,
        "dead_letters": 20,
    }
    assert dict(stats.rows_written) == counts and stats.messages == len(items) and stats.dead_letters == 0
    assert batches and not any(b.rejected for b in batches)
    assert_offsets_at_end(s)
    lag = projection_lag(s)
    assert len(lag) == len(ALL_PROJECTIONS) * PARTITIONS and all(row["lag"] == 0 for row in lag)
    assert sum(row["next_offset"] for row in lag if row["projection"] == "leader_fills") == 1200

    # a row carries the event's own values and its Kafka coordinates, never the clock
    topic, partition, offset = where[7]
    with connect(s) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        row = conn.execute(
            "SELECT event_id, occurred_at, price::text, order_hashes, kafka_partition, kafka_offset,"
            " shares_e6 FROM leader_fills WHERE event_id = 'lf-00000007'"
        ).fetchone()
    assert row[0] == "lf-00000007" and row[2] == "0.53" and row[3] == leader_fill(7)["order_hashes"]
    assert (row[4], row[5]) == (partition, offset) and row[6] == 1_000_007
    assert row[1].timestamp() * 1_000_000 == pytest.approx(leader_fill(7)["envelope"]["occurred_at_us"], abs=1)


def test_stopping_after_a_batch_and_restarting_loses_and_duplicates_nothing(s):
    n = 3000
    produce(s, fills(0, n))

    stop = threading.Event()
    first = run_projections(s, stop, on_batch=lambda result: stop.set(), batch_size=300, consumer_overrides=FAST_GROUP)
    partial = scalar(s, "SELECT count(*) FROM leader_fills")
    assert 0 < partial < n
    assert partial == sum(stored_offsets(s).values())  # rows and offsets were committed together

    second = run_projections(s, threading.Event(), until_caught_up=True, batch_size=300, consumer_overrides=FAST_GROUP)
    assert scalar(s, "SELECT count(*) FROM leader_fills") == n
    assert scalar(s, "SELECT count(DISTINCT event_id) FROM leader_fills") == n
    assert first.rows_written["leader_fills"] + second.rows_written["leader_fills"] == n  # nothing written twice
    assert second.batches_rejected == 0
    assert_offsets_at_end(s)


def test_a_runner_killed_mid_batch_loses_and_duplicates_nothing(s):
    n = 20_000
    produce(s, fills(0, n))
    env = dict(
        os.environ,
        HORUS_DATABASE_URL=s.database_url,
        HORUS_KAFKA_BOOTSTRAP=s.kafka_bootstrap,
        HORUS_TOPIC_PREFIX=s.topic_prefix,
        HORUS_APP_ID=s.app_id,
    )
    code = (
        "import threading\n"
        "from horus.settings import load_settings\n"
        "from projections.runner import run_projections\n"
        f"run_projections(load_settings(), threading.Event(), batch_size=100, consumer_overrides={FAST_GROUP!r})\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 60
        while scalar(s, "SELECT count(*) FROM leader_fills") < n // 4:
            assert child.poll() is None, "the runner died on its own"
            assert time.monotonic() < deadline, "the runner made no progress"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)  # no cleanup of any kind: mid-transaction most likely
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()

    partial = scalar(s, "SELECT count(*) FROM leader_fills")
    assert partial < n, "killed too late to prove anything"
    assert partial == sum(stored_offsets(s).values())  # whatever was committed, rows and offsets agree

    stats = run_projections(s, threading.Event(), until_caught_up=True, consumer_overrides=FAST_GROUP)
    assert scalar(s, "SELECT count(*) FROM leader_fills") == n
    assert scalar(s, "SELECT count(DISTINCT event_id) FROM leader_fills") == n
    assert stats.rows_written["leader_fills"] == n - partial
    assert_offsets_at_end(s)


def test_a_redelivered_batch_is_rejected_by_the_guard_and_changes_nothing(s):
    produce(s, fills(0, 1000))
    zombie = ProjectionRunner(s, group=False, batch_size=2000).start()  # positions read now: beginning
    runner = ProjectionRunner(s, group=False, batch_size=400).start()
    try:
        ends = runner.end_offsets()
        while not runner.caught_up(ends):
            runner.step()
        before, offsets_before = table_checksums(s), stored_offsets(s)
        assert before["leader_fills"].rows == 1000

        # 1. the same runner is made to read everything again (seek back to 0)
        for (topic, partition), end in ends.items():
            if end > 0:
                runner._seek(TopicPartition(topic, partition, 0))
        result = next_result(runner)
        assert result.rejected and result.messages > 0 and result.offsets == {}
        assert runner.stats.batches_rejected == 1
        assert table_checksums(s) == before and stored_offsets(s) == offsets_before
        # ... and it goes back to the stored offsets: nothing more to do
        assert quiet(runner) and runner.caught_up(ends)

        # 2. a zombie that still believes it must start from the beginning
        result = next_result(zombie)
        assert result.rejected and result.messages > 0
        assert table_checksums(s) == before and stored_offsets(s) == offsets_before
        assert quiet(zombie)  # re-positioned at the stored offsets
        assert zombie.stats.batches_rejected == 1 and zombie.stats.batches == 0
    finally:
        zombie.close()
        runner.close()


def test_garbage_lands_in_dead_letters_with_its_exact_bytes_and_the_runner_goes_on(s):
    garbage = b"\x00\x01 not avro at all \xff\xfe"
    truncated = encoded("LeaderFill", leader_fill(999))[:25]
    parked_by_a_stage = dead_letter(1, source_topic=s.topic("copy.candidates"), original=b"\xc3\x01\x99broken")
    items = (
        fills(0, 10)
        + [
            ("leader.fills", garbage, b"bad-key"),
            ("leader.fills", truncated, None),
            ("leader.fills", encoded("CopyDecision", copy_decision(5)), b"0xfollower"),  # wrong topic for it
            ("leader.fills", None, b"tombstone"),
            ("dead.letters", encoded("DeadLetter", parked_by_a_stage), "x"),
        ]
        + fills(10, 10)
    )
    where = produce(s, items)

    stats = run_projections(s, threading.Event(), until_caught_up=True)

    assert scalar(s, "SELECT count(*) FROM leader_fills") == 20  # everything valid, before and after
    assert stats.dead_letters == 4 and stats.undecodable == 2
    with connect(s) as conn:
        rows = {
            (t, p, o): (key, bytes(original), error, stage, event_id)
            for t, p, o, key, original, error, stage, event_id in conn.execute(
                "SELECT source_topic, source_partition, source_offset, key, original, error, stage, event_id"
                " FROM dead_letters"
            ).fetchall()
        }
    assert len(rows) == 5
    key, original, error, stage, event_id = rows[where[10]]
    assert (
        original == garbage and bytes(key) == b"bad-key" and stage == "projections" and error.startswith("undecodable")
    )
    assert rows[where[11]][1] == truncated and rows[where[11]][0] is None
    assert "unexpected record type 'CopyDecision'" in rows[where[12]][2] and rows[where[12]][4] == "cd-00000005"
    assert rows[where[13]][1] == b"" and "null value" in rows[where[13]][2]
    stage_row = rows[
        (s.topic("copy.candidates"), parked_by_a_stage["source_partition"], parked_by_a_stage["source_offset"])
    ]
    assert stage_row[1] == b"\xc3\x01\x99broken" and stage_row[3] == "plan" and stage_row[4] == "dl-00000001"
    assert_offsets_at_end(s)


def test_a_retraction_lands_in_its_own_table_next_to_the_fill_and_replays_the_same(s):
    retraction = leader_fill_retraction(3)
    value = encoded("LeaderFillRetracted", retraction)
    # the fill, later its retraction (same topic, same key), and the retraction delivered again
    where = produce(s, fills(0, 6) + [("leader.fills", value, retraction["leader"])] * 2)
    assert where[6][:2] == where[3][:2] and where[6][2] > where[3][2]

    stats = run_projections(s, threading.Event(), until_caught_up=True)

    assert stats.dead_letters == 0 and scalar(s, "SELECT count(*) FROM dead_letters") == 0
    assert dict(stats.rows_written) == {"leader_fills": 6, "leader_fill_retractions": 1}  # idempotent on event_id
    with connect(s) as conn:
        row = conn.execute(
            "SELECT event_id, leader_fill_id, leader, tx_hash, block_number, reason, causation_id,"
            " kafka_partition, kafka_offset FROM leader_fill_retractions"
        ).fetchall()
    assert row == [
        (
            "lr-00000003",
            "lf-00000003",
            retraction["leader"],
            retraction["tx_hash"],
            70_000_003,
            retraction["reason"],
            "lf-00000003",
            *where[6][1:],
        )
    ]
    assert scalar(s, "SELECT count(*) FROM leader_fills WHERE event_id = 'lf-00000003'") == 1  # the fill stays
    assert_offsets_at_end(s)

    # `horus why` says so for that fill, and only for it
    retracted = CliRunner().invoke(app, ["why", "lf-00000003"], env=s.as_env())
    assert retracted.exit_code == 0, retracted.output
    assert "RETRACTED by a chain reorg (block 70000003): reorg: log removed" in " ".join(retracted.stdout.split())
    other = CliRunner().invoke(app, ["why", "lf-00000002", "--json"], env=s.as_env())
    assert other.exit_code == 0 and "RETRACTED" not in other.stdout and '"retractions": []' in other.stdout

    live = table_checksums(s)
    assert live["leader_fill_retractions"].rows == 1 and live["leader_fills"].rows == 6
    replay_stats: list = []
    assert replay_all(s, stats_out=replay_stats) == live
    assert replay_stats[0].dead_letters == 0 and replay_stats[0].rows_folded["leader_fill_retractions"] == 2


def test_a_row_the_database_refuses_is_parked_and_the_batch_goes_through(s):
    def sloppy_row(record, message):  # a buggy mapping that lets a value through the table refuses
        row = leader_fill_row(record, message)
        if record["log_index"] == 13:
            row["side"] = "HOLD"
        return row

    sloppy = Projection(
        LEADER_FILLS_PROJECTION.name, LEADER_FILLS_PROJECTION.topic, "LeaderFill", "leader_fills", sloppy_row
    )
    where = produce(s, fills(0, 40))
    stats = run_projections(s, threading.Event(), until_caught_up=True, projections=[sloppy])
    assert scalar(s, "SELECT count(*) FROM leader_fills") == 39
    assert stats.slow_path_batches >= 1 and stats.dead_letters == 1
    error, original = None, None
    with connect(s) as conn:
        error, original = conn.execute(
            "SELECT error, original FROM dead_letters WHERE source_topic = %s AND source_partition = %s"
            " AND source_offset = %s",
            where[13],
        ).fetchone()
    assert "rejected by the database" in error and "ck_leader_fills_side" in error
    assert bytes(original) == fills(13, 1)[0][1]
    assert_offsets_at_end(s)


def test_two_runners_in_one_group_share_the_partitions_exactly_once(s):
    n = 8000
    produce(s, fills(0, n // 2))
    stop = threading.Event()
    results: dict[str, object] = {}

    def run(name: str) -> None:
        results[name] = run_projections(s, stop, batch_size=200, consumer_overrides=FAST_GROUP)

    first = threading.Thread(target=run, args=("first",))
    first.start()
    while scalar(s, "SELECT count(*) FROM leader_fills") == 0:
        time.sleep(0.05)
    second = threading.Thread(target=run, args=("second",))  # joins mid-stream: a rebalance
    second.start()
    produce(s, fills(n // 2, n // 2))
    deadline = time.monotonic() + 90
    while scalar(s, "SELECT count(*) FROM leader_fills") < n and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    first.join(30)
    second.join(30)

    assert scalar(s, "SELECT count(*) FROM leader_fills") == n
    written = sum(stats.rows_written["leader_fills"] for stats in results.values())  # type: ignore[attr-defined]
    assert written == n  # no row was written twice, whoever owned the partition
    assert_offsets_at_end(s)


def test_replay_twice_gives_the_checksums_of_the_live_tables(s):
    items = fills(0, 700)
    items += [
        ("copy.decisions", encoded("CopyDecision", copy_decision(i)), copy_decision(i)["follower"]) for i in range(150)
    ]
    items += [
        ("execution.results", encoded("ExecutionResult", execution_result(i)), execution_result(i)["follower"])
        for i in range(120)
    ]
    items += [
        ("settlement.events", encoded("SettlementEvent", settlement_event(i)), settlement_event(i)["follower"])
        for i in range(60)
    ]
    items += [("dead.letters", encoded("DeadLetter", dead_letter(i)), "k") for i in range(15)]
    items += [
        ("copy.candidates", encoded("CopyCandidate", copy_candidate(i)), copy_candidate(i)["follower"])
        for i in range(80)
    ]
    items += [("copy.decisions", b"\x13garbage", b"k"), ("execution.results", b"", None)]
    items += [("leader.fills", encoded("LeaderFill", leader_fill(3)), "dup")]  # the same event again
    produce(s, items)

    run_projections(s, threading.Event(), until_caught_up=True, batch_size=250)
    live = table_checksums(s)
    assert live["leader_fills"].rows == 700 and live["dead_letters"].rows == 17
    assert live["copy_candidates"].rows == 80  # copy.candidates is folded (and checksummed) like every topic
    assert all(live[t].rows > 0 for t in EVENT_TABLES)

    holder = ProjectionRunner(s).start()  # a live runner holds the projections' lock
    try:
        with pytest.raises(ReplayBlocked):
            replay_all(s, lock_wait=0.5)
    finally:
        holder.close()

    replay_stats: list = []
    first = replay_all(s, stats_out=replay_stats, batch_size=333)
    second = replay_all(s, batch_size=1000)
    assert first == second == live
    assert replay_stats[0].messages == len(items)
    assert_offsets_at_end(s)

    # the live runner resumes after a replay without folding anything twice
    after = run_projections(s, threading.Event(), until_caught_up=True)
    assert after.messages == 0 and table_checksums(s) == live
