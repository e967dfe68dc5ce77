"""Bad input, at volume (issue 9): ten thousand hostile records on every topic the worker and the projections
consume, while `horus worker --stages plan,decide,execute,settle` (paper mode, against the CLOB simulator) and
`horus projections run` run as subprocesses.

The records (tests/integration/hostile_helpers.py) are bytes no reader can decode, nulls, truncated and bit-flipped
records, records of another type, and well-typed records with hostile values, each kind with its fate written down
before the run: parked in dead.letters by the named stages with its bytes, SKIPped by decide with the named
reason, ended by the executor with the named status, settled, or a projection row / a parked row in Postgres.
Afterwards, checked per record: that fate, exactly (nothing parked or decided that should not have been), by
each consumer; the processes alive and never restarted; every consumer group and the projections at the end of
their topics (a consumer that stalled never gets there); and a valid leader fill produced after the flood went
all the way: candidate, COPY, one venue order, FILLED, settlement, and the projections' rows for each. Then the
worker is restarted (SIGTERM, exit 0): its tails rebuild from the hostile config and control history, decide its
books from the hostile decisions and results, and a second valid fill must go through the same way.

`HORUS_HOSTILE_RECORDS` (default 10,000) and `HORUS_HOSTILE_SEED` make larger or other runs; the counts are printed
(`pytest -s`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass

import psycopg
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from horus.codec import default_codec
from horus.db.engine import psycopg_conninfo, scratch_database
from horus.domain import ids
from horus.domain.config import config_change, parse_follow_config
from horus.domain.events import envelope
from horus.kafka.client import (
    assign_from_beginning,
    flush_or_raise,
    make_admin,
    make_consumer,
    make_producer,
    poll_batch,
    produce_reliably,
)
from horus.kafka.dead_letter import MAX_ORIGINAL_BYTES
from horus.ops.chaos import produce_configs
from horus.topics import (
    COPY_CANDIDATES,
    COPY_DECISIONS,
    DEAD_LETTERS,
    EXECUTION_RESULTS,
    LEADER_FILLS,
    SETTLEMENT_EVENTS,
)
from horus.venue.polymarket.orders import intent_metadata
from projections.lag import projection_lag, topic_end_offsets
from tests.integration.execute_helpers import (
    CONDITION,
    TOKEN,
    group_partitions,
    make_followers,
    paper_settings,
    private_settings,
    publish_accounts,
    simulator,
    venue_orders,
)
from tests.integration.hostile_helpers import FORGED, PARKED, TABLE, TOPICS, Hostile, World, flood
from tests.integration.pipeline_helpers import REPO, Worker

pytestmark = pytest.mark.integration

RECORDS = int(os.environ.get("HORUS_HOSTILE_RECORDS", "10000"))
SEED = int(os.environ.get("HORUS_HOSTILE_SEED", "20261209"))
WAIT = 120.0 + RECORDS * 0.012  # seconds for everything to settle; a healthy 10,000-record run needs far less
LEADER = "0x" + "1e" * 20
FOLLOW = "hostile-volume-follow"
TERMINAL = {"FILLED", "PARTIAL", "NOT_FILLED", "REJECTED", "FAILED", "DRY_RUN"}
SHOWN = 12  # failures listed per check


class Projections(Worker):
    """`horus projections run` in a subprocess (Worker's alive / stop / output)."""

    def __init__(self, settings, log_path) -> None:
        env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it until stop() closes it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "horus.cli.main", "projections", "run"],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )


@dataclass
class Seen:
    key: bytes | None
    value: bytes | None
    name: str | None  # record type; None when it does not decode
    record: dict | None


class TopicLog:
    """Every message of the run's topics, read group-less from the beginning; decoded where it decodes."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.names = {settings.topic(t.name): t.name for t in TOPICS}
        self.consumer = make_consumer(settings)
        assign_from_beginning(self.consumer, list(self.names))
        self.seen: dict[str, dict[tuple[int, int], Seen]] = {t.name: {} for t in TOPICS}
        self.codec = default_codec()

    def poll(self, seconds: float = 0.2) -> int:
        messages = poll_batch(self.consumer, 20_000, seconds)
        for m in messages:
            try:
                name, record = self.codec.decode(m.value())
            except Exception:  # noqa: BLE001 - hostile bytes
                name, record = None, None
            self.seen[self.names[m.topic()]][(m.partition(), m.offset())] = Seen(m.key(), m.value(), name, record)
        return len(messages)

    def derived(self, topic: str, hostile: set[tuple[int, int]]) -> list[tuple[tuple[int, int], Seen]]:
        """The messages of `topic` the run's processes wrote (everything but the hostile records)."""
        return [(pos, s) for pos, s in self.seen[topic].items() if pos not in hostile]

    def close(self) -> None:
        self.consumer.close()


def group_lag(settings, admin, group: str, topics: list[str]) -> int:
    """Messages of `topics` the consumer group has not committed past (a stalled consumer never gets to 0)."""
    ends = topic_end_offsets(settings, [settings.topic(t) for t in topics], admin)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in ends])
    answer = admin.list_consumer_group_offsets([request])[group].result(10)
    committed = {(tp.topic, tp.partition): tp.offset for tp in answer.topic_partitions}
    return sum(max(0, high - max(committed.get(key, 0), 0)) for key, high in ends.items())


def every_member_holds_partitions(members: list[set[int]] | None) -> bool:
    return bool(members) and all(members)


def wait_groups_stable(settings, groups: list[str], processes, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(groups)
    while waiting:
        for p in processes:
            assert p.alive(), f"exited with {p.proc.returncode}\n{p.output()}"
        waiting = [g for g in waiting if not every_member_holds_partitions(group_partitions(settings, g))]
        assert time.monotonic() < deadline, f"consumer groups {waiting} not stable in {timeout:g}s"
        time.sleep(0.3)


def valid_fill(run: str) -> dict:
    tx = "0x" + ids.make_id("hostile-volume-valid", run)
    return {
        "envelope": envelope(ids.leader_fill_id(tx, LEADER, TOKEN, "BUY"), "test", time.time_ns() // 1000),
        "leader": LEADER,
        "exchange": "0x" + "0e" * 20,
        "tx_hash": tx,
        "block_number": 1,
        "log_index": 0,
        "token_id": TOKEN,
        "condition_id": CONDITION,
        "side": "BUY",
        "shares_e6": 20_000_000,
        "collateral_e6": 10_000_000,
        "price": "0.5",
        "fee_e6": 0,
        "role": "TAKER",
        "order_hashes": [],
    }


def produce(settings, records: list[Hostile]) -> None:
    """Every record, its (partition, offset) noted once the broker has it."""
    producer = make_producer(settings, log_level=3)
    for h in records:

        def placed(err, msg, h=h):
            assert err is None, f"{h.kind}: {err}"
            h.position = (msg.partition(), msg.offset())

        produce_reliably(producer, settings.topic(h.topic.name), h.value, key=h.key, on_delivery=placed)
    flush_or_raise(producer, 120)
    assert all(h.position is not None for h in records)


class Expected:
    """What the run must show, from the records' expectations (and the valid fills produced around them)."""

    def __init__(self, settings, world: World, records: list[Hostile]) -> None:
        self.settings = settings
        self.world = world
        self.records = records
        self.positions: dict[str, set[tuple[int, int]]] = defaultdict(set)
        for h in records:
            self.positions[h.topic.name].add(h.position)
        self.letters = {
            (settings.topic(h.topic.name), *h.position, stage): h for h in records for stage in h.expect.parked
        }
        self.decisions = {h.expect.decision[0]: (h.expect.decision[1], h) for h in records if h.expect.decision}
        self.results = {h.expect.result[0]: (h.expect.result[1:], h) for h in records if h.expect.result}
        self.settlements = {h.expect.settlement: h for h in records if h.expect.settlement}
        self.valid_fills: list[str] = []

    def valid(self, fill: dict) -> None:
        self.valid_fills.append(fill["envelope"]["event_id"])

    @property
    def valid_candidates(self) -> list[str]:
        return [ids.candidate_id(f, FOLLOW) for f in self.valid_fills]

    @property
    def valid_intents(self) -> list[str]:
        return [ids.intent_id(FOLLOW, f) for f in self.valid_fills]

    def missing(self, log: TopicLog) -> Counter:
        """What has not shown up yet, by what it is."""
        out: Counter = Counter()
        letters = {
            (s.record["source_topic"], s.record["source_partition"], s.record["source_offset"], s.record["stage"])
            for _, s in log.derived(DEAD_LETTERS.name, self.positions[DEAD_LETTERS.name])
            if s.record
        }
        for key, h in self.letters.items():
            if key not in letters:
                out[f"dead letter {key[3]} of {h.kind}"] += 1
        decided = {
            s.record["candidate_id"]
            for _, s in log.derived(COPY_DECISIONS.name, self.positions[COPY_DECISIONS.name])
            if s.record
        }
        for candidate, (_, h) in self.decisions.items():
            if candidate not in decided:
                out[f"decision of {h.kind}"] += 1
        ended = self.latest_results(log)
        for intent, (_, h) in self.results.items():
            if ended.get(intent, {}).get("status") not in TERMINAL:
                out[f"result of {h.kind}"] += 1
        settled = self.settlement_ids(log)
        for settlement, h in self.settlements.items():
            if settlement not in settled:
                out[f"settlement of {h.kind}"] += 1
        for n, (candidate, intent) in enumerate(zip(self.valid_candidates, self.valid_intents)):
            valid = ended.get(intent)
            if candidate not in decided:
                out[f"valid fill {n}: its decision"] += 1
            elif valid is None or valid["status"] not in TERMINAL:
                out[f"valid fill {n}: its result"] += 1
            elif ids.settlement_id(valid["envelope"]["event_id"], "NOT_REQUIRED") not in settled:
                out[f"valid fill {n}: its settlement"] += 1
        return out

    def latest_results(self, log: TopicLog) -> dict[str, dict]:
        latest: dict[str, dict] = {}
        for _, s in sorted(log.derived(EXECUTION_RESULTS.name, self.positions[EXECUTION_RESULTS.name])):
            if s.record:
                latest[s.record["intent_id"]] = s.record  # one follower, one partition: topic order
        return latest

    def settlement_ids(self, log: TopicLog) -> set[str]:
        return {
            s.record["envelope"]["event_id"]
            for _, s in log.derived(SETTLEMENT_EVENTS.name, self.positions[SETTLEMENT_EVENTS.name])
            if s.record
        }


def settle_all(s, log: TopicLog, expected: Expected, processes, timeout: float) -> float:
    """Until every expected fate showed up, then every consumer group (worker, executor) and the projections
    committed past the end of their topics: a consumer that stalls, silently drops a record or dies fails here.
    Returns when the stages were done (seconds from now)."""
    started = time.monotonic()
    deadline = started + timeout
    admin = make_admin(s)  # held: a client collected mid-request never resolves its future
    missing: Counter = Counter()
    lags: dict[str, int] = {}
    stages_done = None
    while True:
        log.poll(0.5)
        for p in processes:
            assert p.alive(), f"a process died (exit {p.proc.returncode}):\n{p.output()}"
        missing = expected.missing(log)
        if not missing:
            stages_done = stages_done or time.monotonic() - started
            lags = {
                "worker": group_lag(
                    s, admin, s.app_id, [LEADER_FILLS.name, COPY_CANDIDATES.name, EXECUTION_RESULTS.name]
                ),
                "executor": group_lag(s, admin, f"{s.app_id}-execute", [COPY_DECISIONS.name]),
            }
            if not any(lags.values()):
                lags["projections"] = sum(row["lag"] for row in projection_lag(s))
                if not lags["projections"]:
                    break
        assert time.monotonic() < deadline, (
            f"not settled after {timeout:.0f}s; lag {lags}; missing {sum(missing.values())}: "
            f"{missing.most_common(SHOWN)}\n" + "\n".join(f"--- {p.log_path.name}:\n{p.output()}" for p in processes)
        )
    while log.poll(0.5):  # the tail of what was written meanwhile (re-emitted duplicates, if any)
        pass
    return stages_done


def send_valid_fill(s, expected: Expected, tag: str) -> None:
    fill = valid_fill(tag)
    producer = make_producer(s)
    produce_reliably(producer, s.topic(LEADER_FILLS.name), default_codec().encode("LeaderFill", fill), key=LEADER)
    flush_or_raise(producer)
    expected.valid(fill)


def test_ten_thousand_hostile_records_are_parked_or_skipped_and_a_valid_fill_still_flows(settings, tmp_path):
    # A database of its own: this run's executor confirms every provisional fill of its ledger, and another test's
    # (on the session database, under other topics) would come out on this run's execution.results as a result
    # nobody here expected.
    with scratch_database(settings, f"horus_hostile_{uuid.uuid4().hex[:8]}") as own:
        flood_and_check(own, tmp_path)


def flood_and_check(settings, tmp_path) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    sim = simulator()
    run = uuid.uuid4().hex[:8]
    s = paper_settings(private_settings(settings, balance_source="fixed", fixed_balance="1000000"), sim)
    follower = make_followers(s, 1)[0]
    publish_accounts(s, [follower])
    follow = parse_follow_config(
        {
            "follow_id": FOLLOW,
            "follower": follower.address,
            "leader": LEADER,
            "sizing": {"mode": "fixed", "amount": "5"},
            "max_fill_age_s": 3600,
        }
    )
    produce_configs(s, [config_change("FOLLOW", FOLLOW, follow, "test")])
    world = World(run, LEADER, follower.address, FOLLOW, TOKEN, CONDITION, time.time_ns() // 1000)
    records = flood(world, RECORDS, SEED)
    timings["generate"] = time.monotonic() - started

    log = TopicLog(s)
    worker = Worker(s, "plan,decide,execute,settle", tmp_path / "worker.log")
    projections = Projections(s, tmp_path / "projections.log")
    restarted = None
    codes: list[int | None] = []
    groups = [s.app_id, f"{s.app_id}-execute", f"{s.app_id}-projections"]
    try:
        wait_groups_stable(s, groups, [worker, projections])
        pids = [p.proc.pid for p in (worker, projections)]
        timings["start"] = time.monotonic() - started
        t0 = time.monotonic()
        produce(s, records)
        expected = Expected(s, world, records)
        send_valid_fill(s, expected, run)  # after the whole flood
        timings["produce"] = time.monotonic() - t0
        timings["stages"] = settle_all(s, log, expected, [worker, projections], WAIT) + timings["produce"]
        timings["drain"] = time.monotonic() - t0
        assert [p.proc.pid for p in (worker, projections)] == pids and worker.alive() and projections.alive()

        # a restarted worker folds the hostile history again: its tails rebuild from the hostile configs and
        # switches, decide its books from the hostile decisions and results; a second valid fill still goes through
        codes.append(worker.stop())
        t1 = time.monotonic()
        restarted = Worker(s, "plan,decide,execute,settle", tmp_path / "worker-restarted.log")
        wait_groups_stable(s, groups[:2], [restarted, projections])
        send_valid_fill(s, expected, run + "-after-restart")
        settle_all(s, log, expected, [restarted, projections], WAIT)
        timings["restart"] = time.monotonic() - t1

        failures = check_everything(s, log, expected, sim)
        assert restarted.alive() and projections.alive() and projections.proc.pid == pids[1]
    finally:
        log.close()
        codes += [p.stop() for p in (restarted, projections) if p is not None]
        if worker.alive():
            worker.stop()
        sim.stop()
    outputs = "\n".join(p.output() for p in (worker, restarted, projections) if p is not None)
    assert codes == [0, 0, 0], f"exit codes {codes} (worker, restarted worker, projections)\n{outputs}"
    for w in (worker, restarted):
        assert "execute: stopped cleanly" in w.output(), w.output()
    report(records, expected, projections.output(), timings, time.monotonic() - started)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[: SHOWN * 4])


# ------------------------------------------------------------------------------------------------ the checks
# one check after another, each naming what it found wrong: a list to read in order, not logic to split
def check_everything(s, log: TopicLog, expected: Expected, sim) -> list[str]:  # noqa: C901
    failures: list[str] = []

    def fail(what: str) -> None:
        failures.append(what)

    hostile_at = {(h.topic.name, *h.position): h for h in expected.records}
    stage_letters = [s_.record for _, s_ in log.derived(DEAD_LETTERS.name, expected.positions[DEAD_LETTERS.name])]

    # dead.letters: each hostile record parked by exactly the stages named, with its bytes and key; nothing else
    parked_by: dict[tuple, set[str]] = defaultdict(set)
    for letter in stage_letters:
        if letter is None:
            fail("a stage wrote a dead letter that does not decode")
            continue
        topic = letter["source_topic"].removeprefix(s.topic_prefix)
        h = hostile_at.get((topic, letter["source_partition"], letter["source_offset"]))
        if h is None:
            fail(
                f"{letter['stage']} parked {topic}[{letter['source_partition']}]@{letter['source_offset']}, "
                f"which is no hostile record: {letter['error'][:200]}"
            )
            continue
        parked_by[(topic, *h.position)].add(letter["stage"])
        if letter["stage"] not in h.expect.parked:
            fail(
                f"{h.kind}: parked by {letter['stage']}, expected only by {sorted(h.expect.parked)}: "
                f"{letter['error'][:200]}"
            )
        original = h.original
        if len(original) > MAX_ORIGINAL_BYTES:  # cut, and the dead letter says so; the rest is in its topic
            ok = letter["original"] == original[:MAX_ORIGINAL_BYTES] and "cut" in letter["error"]
        else:
            ok = letter["original"] == original
        if not ok:
            fail(f"{h.kind}: the dead letter of {letter['stage']} does not carry its bytes")
        if not key_kept(letter, h):
            fail(f"{h.kind}: the dead letter of {letter['stage']} does not carry its key")
    for h in expected.records:
        missing = h.expect.parked - parked_by[(h.topic.name, *h.position)]
        if missing:
            fail(f"{h.kind}: not parked by {sorted(missing)}")

    # plan and decide: a candidate and one SKIP with the reason named for every hostile fill / candidate that
    # reaches decide, and none for anything else; the valid fill's one candidate is a COPY
    written = {
        topic.name: log.derived(topic.name, expected.positions[topic.name])
        for topic in (COPY_CANDIDATES, COPY_DECISIONS, EXECUTION_RESULTS, SETTLEMENT_EVENTS)
    }
    for topic, messages in written.items():
        if any(m.record is None for _, m in messages):
            fail(f"a stage wrote a message to {topic} that does not decode")
            messages[:] = [(pos, m) for pos, m in messages if m.record is not None]
    candidates = Counter(r.record["envelope"]["event_id"] for _, r in written[COPY_CANDIDATES.name])
    from_fills = {c for c, (_, h) in expected.decisions.items() if h.topic == LEADER_FILLS}
    valid_candidates = set(expected.valid_candidates)
    if set(candidates) != from_fills | valid_candidates:
        fail(
            f"plan's candidates: {len(set(candidates) - from_fills - valid_candidates)} unexpected, "
            f"{len(from_fills | valid_candidates - set(candidates))} missing"
        )
    decisions: dict[str, list[dict]] = defaultdict(list)
    for _, d in written[COPY_DECISIONS.name]:
        decisions[d.record["candidate_id"]].append(d.record)
    for candidate, made in decisions.items():
        if len({(d["action"], d["reason_code"], d["size_e6"]) for d in made}) > 1:
            fail(f"candidate {candidate} decided differently twice: {made}")
        if candidate not in valid_candidates and candidate not in expected.decisions:
            fail(f"a decision nobody expected: {made[0]['action']} {made[0]['reason_code']} {made[0]['reason_detail']}")
    for candidate, (reason, h) in expected.decisions.items():
        for d in decisions.get(candidate, []):
            if (d["action"], d["reason_code"]) != ("SKIP", reason):
                fail(f"{h.kind}: {d['action']} {d['reason_code']} ({d['reason_detail']}), expected SKIP {reason}")
    for n, candidate in enumerate(expected.valid_candidates):
        valid = decisions.get(candidate, [{}])[0]
        if valid.get("action") != "COPY":
            fail(f"valid fill {n} was not copied: {valid}")

    # the executor: the forged COPYs it may execute end as named, parked ones leave no ledger row, one venue order
    latest = expected.latest_results(log)
    for intent, ((status, word), h) in expected.results.items():
        got = latest.get(intent, {})
        if got.get("status") != status or word not in (got.get("error") or ""):
            fail(f"{h.kind}: result {got.get('status')} ({got.get('error')}), expected {status} ({word})")
    unexpected = set(latest) - set(expected.results) - set(expected.valid_intents)
    if unexpected:
        fail(f"{len(unexpected)} results nobody expected, e.g. {latest[next(iter(unexpected))]}")
    for n, intent in enumerate(expected.valid_intents):
        if latest.get(intent, {}).get("status") != "FILLED":
            fail(f"valid fill {n}'s result: {latest.get(intent)}")
    refused = set()
    for h in expected.records:
        if h.topic == COPY_DECISIONS and h.expect.parked:
            seen = log.seen[COPY_DECISIONS.name].get(h.position)
            if seen is not None and seen.record and seen.record.get("intent_id"):
                refused.add(seen.record["intent_id"])
    with psycopg.connect(psycopg_conninfo(s.database_url)) as conn:
        rows = dict(
            conn.execute(
                "SELECT idempotency_key, status FROM copy_trades WHERE idempotency_key = ANY(%s)",
                (sorted(refused | set(expected.results)),),
            ).fetchall()
        )
    for intent in refused & set(rows):
        fail(f"a parked COPY has a ledger row ({rows[intent]}): intent {intent}")
    orders = venue_orders(sim)
    if sorted(o["metadata"] for o in orders) != sorted(intent_metadata(i) for i in expected.valid_intents):
        fail(
            f"the venue received {len(orders)} orders; only the valid fills' {len(expected.valid_intents)} were expected"
        )
    elif not all(o["size_matched_e6"] > 0 for o in orders):
        fail(f"a valid fill's order did not match at the venue: {orders}")

    # settle: one settlement of every result that decodes (the hostile ones and the run's own)
    settled = expected.settlement_ids(log)
    own = {
        ids.settlement_id(r.record["envelope"]["event_id"], "NOT_REQUIRED")
        for _, r in log.derived(EXECUTION_RESULTS.name, expected.positions[EXECUTION_RESULTS.name])
    }
    if settled != set(expected.settlements) | own:
        fail(
            f"settlements: {len(set(expected.settlements) | own - settled)} missing, "
            f"{len(settled - set(expected.settlements) - own)} unexpected"
        )

    failures += check_projections(s, log, expected)
    return failures


def key_kept(letter: dict, h: Hostile) -> bool:
    from horus.kafka import dead_letter

    limit = getattr(dead_letter, "MAX_KEY_BYTES", None)
    if h.key is not None and limit is not None and len(h.key) > limit:
        return letter["key"] == h.key[:limit] and "key cut" in letter["error"]
    return letter["key"] == h.key


def check_projections(s, log: TopicLog, expected: Expected) -> list[str]:  # noqa: C901 - a list of checks, as above
    """Every hostile record where its kind says, every record the run wrote in its table or parked."""
    failures: list[str] = []
    prefix = s.topic_prefix
    hostile_topics = {h.topic.name for h in expected.records}
    with psycopg.connect(psycopg_conninfo(s.database_url)) as conn:
        letters = {
            (t.removeprefix(prefix), p, o): (key, bytes(original), stage, event_id)
            for t, p, o, key, original, stage, event_id in conn.execute(
                "SELECT source_topic, source_partition, source_offset, key, original, stage, event_id"
                " FROM dead_letters WHERE starts_with(source_topic, %s)",
                (prefix,),
            ).fetchall()
        }
        forged = {
            (p, o): (stage, event_id)
            for p, o, stage, event_id in conn.execute(
                "SELECT source_partition, source_offset, stage, event_id FROM dead_letters WHERE source_topic = %s",
                (f"forged.{expected.world.run}",),
            ).fetchall()
        }
        event_ids: dict[str, set[str]] = defaultdict(set)
        for h in expected.records:
            record = decoded(h)
            if h.expect.projection not in (PARKED, FORGED) and record is not None and "envelope" in record:
                event_ids[h.expect.projection].add(record["envelope"]["event_id"])
        for topic in (COPY_CANDIDATES, COPY_DECISIONS, EXECUTION_RESULTS, SETTLEMENT_EVENTS):
            for _, r in log.derived(topic.name, expected.positions[topic.name]):
                event_ids[TABLE[topic.name]].add(r.record["envelope"]["event_id"])
        rows: dict[str, dict[str, tuple[int, int]]] = {}
        for table, wanted in event_ids.items():
            column = {"follow_configs": "follow_id", "follower_configs": "follower"}.get(table)
            if column:
                rows[table] = {
                    event_id: (p, o, invalid)
                    for event_id, p, o, invalid in conn.execute(
                        f"SELECT event_id, kafka_partition, kafka_offset, invalid FROM {table} WHERE event_id = ANY(%s)",
                        (sorted(wanted),),
                    ).fetchall()
                }
            else:
                rows[table] = {
                    event_id: (p, o)
                    for event_id, p, o in conn.execute(
                        f"SELECT event_id, kafka_partition, kafka_offset FROM {table} WHERE event_id = ANY(%s)",
                        (sorted(wanted),),
                    ).fetchall()
                }
        for n, (fill, candidate, intent) in enumerate(
            zip(expected.valid_fills, expected.valid_candidates, expected.valid_intents)
        ):
            got = conn.execute(
                "SELECT (SELECT count(*) FROM leader_fills WHERE event_id = %s),"
                " (SELECT count(*) FROM copy_candidates WHERE event_id = %s),"
                " (SELECT action FROM copy_decisions WHERE candidate_id = %s),"
                " (SELECT bool_or(status = 'FILLED') FROM execution_results WHERE intent_id = %s),"
                " (SELECT count(*) > 0 FROM settlement_events WHERE intent_id = %s)",
                (fill, candidate, candidate, intent, intent),
            ).fetchone()
            if got != (1, 1, "COPY", True, True):
                failures.append(f"valid fill {n}: projection rows (fill, candidate, decision, FILLED, settled) {got}")

    for h in expected.records:
        at = (h.topic.name, *h.position)
        if h.expect.projection == PARKED:
            got = letters.get(at)
            if got is None:
                failures.append(f"{h.kind}: no dead_letters row (the projection neither parked nor stored it)")
                continue
            key, original, stage, _ = got
            if original != h.original and not (h.expect.parked and original == h.original[:MAX_ORIGINAL_BYTES]):
                failures.append(f"{h.kind}: its dead_letters row does not carry its bytes")
            if not h.expect.parked and stage != "projections":
                failures.append(f"{h.kind}: its dead_letters row is by {stage}, expected the projections'")
        elif h.expect.projection == FORGED:
            record = decoded(h)
            got = forged.get((record["source_partition"], record["source_offset"]))
            if got != (record["stage"], record["envelope"]["event_id"]):
                failures.append(f"{h.kind}: forged dead letter not folded as a row: {got}")
        else:
            record = decoded(h)
            got = rows.get(h.expect.projection, {}).get(record["envelope"]["event_id"])
            parked_as = letters.get(at, (None, None, None, None))[2]
            if got is None or got[:2] != h.position:
                failures.append(
                    f"{h.kind}: no {h.expect.projection} row at {h.position} ({got}); dead_letters row: {parked_as}"
                )
            elif parked_as == "projections":
                failures.append(f"{h.kind}: stored AND parked by the projections")
            elif h.expect.projection in ("follow_configs", "follower_configs") and got[2] is None:
                failures.append(f"{h.kind}: its {h.expect.projection} row does not say it is invalid")
    # what the run's processes wrote: folded (a row by event id) or parked by the projections, never dropped
    for topic in (COPY_CANDIDATES, COPY_DECISIONS, EXECUTION_RESULTS, SETTLEMENT_EVENTS):
        for pos, r in log.derived(topic.name, expected.positions[topic.name]):
            if r.record["envelope"]["event_id"] not in rows[TABLE[topic.name]] and (topic.name, *pos) not in letters:
                failures.append(
                    f"{topic.name}[{pos[0]}]@{pos[1]} ({r.record['envelope']['source']}) neither "
                    f"folded nor parked by the projections"
                )
    for pos, r in log.derived(DEAD_LETTERS.name, expected.positions[DEAD_LETTERS.name]):
        letter = r.record
        source = (letter["source_topic"].removeprefix(prefix), letter["source_partition"], letter["source_offset"])
        if source not in letters and (DEAD_LETTERS.name, *pos) not in letters:
            failures.append(f"the dead letter of {source} by {letter['stage']} is not in the dead_letters table")
    assert hostile_topics == {t.name for t in TOPICS}, "every topic gets hostile records"
    return failures


def decoded(h: Hostile) -> dict | None:
    try:
        return default_codec().decode(h.value)[1] if h.value is not None else None
    except Exception:  # noqa: BLE001
        return None


# ------------------------------------------------------------------------------------------------ the report
def report(
    records: list[Hostile], expected: Expected, projections_output: str, timings: dict[str, float], total_s: float
) -> None:
    """The counts for docs/benchmarks.md (`pytest -s` shows them)."""
    by_topic = Counter(h.topic.name for h in records)
    kinds = Counter(h.kind for h in records)
    parked_positions = Counter(h.topic.name for h in records if h.expect.parked)
    stages = Counter(stage for h in records for stage in h.expect.parked)
    skipped = Counter(reason for reason, _ in expected.decisions.values())
    results = Counter(status for (status, _), _ in expected.results.values())
    projection_parked = Counter(h.topic.name for h in records if h.expect.projection == PARKED)
    stats = re.search(r"'dead_letters':\s*(\d+),\s*'undecodable':\s*(\d+)", projections_output)
    print(
        f"\nhostile volume: {len(records):,} records ({len(kinds)} kinds, seed {SEED}) in {total_s:.1f}s "
        f"(generate {timings['generate']:.1f}s, start {timings['start'] - timings['generate']:.1f}s, produce "
        f"{timings['produce']:.1f}s, stages done {timings['stages']:.1f}s, all folded {timings['drain']:.1f}s, "
        f"restart over the hostile history to the second valid fill settled {timings['restart']:.1f}s)"
    )
    print("records per topic: " + ", ".join(f"{t} {n:,}" for t, n in by_topic.most_common()))
    print(
        "parked by the worker (distinct positions) per topic: "
        + ", ".join(f"{t} {n:,}" for t, n in parked_positions.most_common())
    )
    print("dead letters per stage: " + ", ".join(f"{st} {n:,}" for st, n in stages.most_common()))
    print("SKIPs per reason: " + ", ".join(f"{r} {n:,}" for r, n in skipped.most_common()))
    print(
        "forged COPYs that reached the ledger (never sent): "
        + ", ".join(f"{st} {n:,}" for st, n in results.most_common())
    )
    print(
        "hostile records parked by the projections per topic: "
        + ", ".join(f"{t} {n:,}" for t, n in projection_parked.most_common())
        + (
            f"; the projections' own count: {int(stats.group(1)):,} parked ({int(stats.group(2)):,} undecodable)"
            if stats
            else ""
        )
    )
    print("per kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
