"""The Faust pipeline end to end against the real broker: `horus worker` subprocesses, follows on
config.changes, leader fills in, every candidate / decision / result / settlement out exactly once,
garbage parked in dead.letters with its exact bytes while the pipeline keeps going."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from horus.codec import default_codec, envelope
from horus.domain import ids
from horus.domain.decide import decide
from horus.domain.execute import execute
from horus.domain.follow_graph import FollowGraph, apply_config_change
from horus.domain.plan import plan
from horus.domain.settle import settle
from horus.kafka.admin import create_topics
from horus.kafka.client import (assign_from_beginning, flush_or_raise, make_admin, make_consumer, make_producer,
                                poll_batch, produce_reliably)
from horus.settings import Settings
from horus.topics import (CONFIG_CHANGES, COPY_CANDIDATES, COPY_DECISIONS, DEAD_LETTERS, EXECUTION_RESULTS,
                          LEADER_FILLS, SETTLEMENT_EVENTS)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LEADERS = ["0x" + "a1" * 20, "0x" + "b2" * 20]
OTHER_LEADER = "0x" + "c3" * 20
FOLLOWERS = ["0x" + "d4" * 20, "0x" + "e5" * 20, "0x" + "f6" * 20]
OUTPUTS = (COPY_CANDIDATES, COPY_DECISIONS, EXECUTION_RESULTS, SETTLEMENT_EVENTS)
WAIT = 90.0  # seconds: generous for a loaded 2-core CI machine; a healthy run takes a few


# ------------------------------------------------------------------------- helpers

def follow_change(follow_id: str, follower: str, leader: str, enabled: bool = True, delete: bool = False) -> dict:
    body = None if delete else json.dumps({"follow_id": follow_id, "follower": follower, "leader": leader,
                                           "enabled": enabled})
    return {"envelope": envelope(ids.make_id("test-config", follow_id, uuid.uuid4().hex), "test", 0),
            "entity": "FOLLOW", "entity_id": follow_id, "op": "DELETE" if delete else "UPSERT", "body": body}


def leader_fill(leader: str, n: int) -> dict:
    tx = "0x" + ids.make_id("tx", leader, n)
    token = str(10**20 + n)
    return {
        "envelope": envelope(ids.leader_fill_id(tx, leader, token, "BUY"), "test", 1_700_000_000_000_000 + n),
        "leader": leader, "exchange": "0x" + "0e" * 20, "tx_hash": tx, "block_number": 100 + n, "log_index": n,
        "token_id": token, "condition_id": None, "side": "BUY", "shares_e6": 1_000_000 * (n + 1),
        "collateral_e6": 500_000 * (n + 1), "price": "0.5", "fee_e6": 0, "role": "TAKER", "order_hashes": [],
    }


def expected_ids(changes: list[dict], fills: list[dict]) -> dict[str, set[str]]:
    """The event ids the pipeline must produce, computed with the same pure functions."""
    graph = FollowGraph()
    for change in changes:
        apply_config_change(change, graph)
    out: dict[str, set[str]] = {spec.name: set() for spec in OUTPUTS}
    for fill in fills:
        for candidate in plan(fill, graph, now_us=0)[0]:
            out[COPY_CANDIDATES.name].add(candidate["envelope"]["event_id"])
            for decision in decide(candidate, None, now_us=0)[0]:
                out[COPY_DECISIONS.name].add(decision["envelope"]["event_id"])
                for result in execute(decision, now_us=0)[0]:
                    out[EXECUTION_RESULTS.name].add(result["envelope"]["event_id"])
                    for settlement in settle(result, now_us=0)[0]:
                        out[SETTLEMENT_EVENTS.name].add(settlement["envelope"]["event_id"])
    return out


class Producer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = make_producer(settings)
        self.codec = default_codec()
        self.placed: list[tuple[str, int, int]] = []

    def _on_delivery(self, err, msg):
        assert err is None, err
        self.placed.append((msg.topic(), msg.partition(), msg.offset()))

    def send(self, spec, record: dict | None = None, key: str | bytes | None = None, raw: bytes | None = None):
        value = raw if raw is not None else self.codec.encode(spec.event_type, record)
        produce_reliably(self.producer, self.settings.topic(spec.name), value, key=key, on_delivery=self._on_delivery)

    def configs(self, changes):
        for change in changes:
            self.send(CONFIG_CHANGES, change, key=change["entity_id"])
        self.flush()

    def fills(self, fills):
        for fill in fills:
            self.send(LEADER_FILLS, fill, key=fill["leader"])
        self.flush()

    def flush(self):
        flush_or_raise(self.producer)


class Reader:
    """Group-less reader of the output topics; keeps everything it has seen."""

    def __init__(self, settings: Settings, specs) -> None:
        self.settings = settings
        self.names = {settings.topic(spec.name): spec.name for spec in specs}
        self.consumer = make_consumer(settings)
        assign_from_beginning(self.consumer, list(self.names))
        self.seen: dict[str, list[tuple[bytes | None, dict, object]]] = {spec.name: [] for spec in specs}
        self.codec = default_codec()

    def poll(self, seconds: float = 0.2) -> None:
        for message in poll_batch(self.consumer, 5000, seconds):
            name, record = self.codec.decode(message.value())
            self.seen[self.names[message.topic()]].append((message.key(), record, message))

    def ids(self, name: str) -> list[str]:
        return [record["envelope"]["event_id"] for _, record, _ in self.seen[name]]

    def wait_for(self, want: dict[str, set[str]], workers=(), timeout: float = WAIT, settle_s: float = 1.5) -> None:
        """Until every wanted id is seen (or a worker died), then `settle_s` more to catch duplicates."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            for worker in workers:
                assert worker.alive(), f"worker exited with {worker.proc.returncode}\n{worker.output()}"
            if all(ids <= set(self.ids(name)) for name, ids in want.items()):
                break
        end = time.monotonic() + settle_s
        while time.monotonic() < end:
            self.poll()

    def close(self) -> None:
        self.consumer.close()


class Worker:
    """`horus worker` in a subprocess."""

    def __init__(self, settings: Settings, stages: str, log_path: Path, runner: str = "faust") -> None:
        env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "horus.cli.main", "worker", "--stages", stages, "--loglevel", "info",
             "--runner", runner],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def wait_group_stable(settings: Settings, members: int, workers, timeout: float = WAIT) -> None:
    """Until the workers' consumer group is STABLE with `members` members that all hold partitions, so
    no rebalance (where at-least-once may legitimately repeat a batch) overlaps the test's traffic."""
    from confluent_kafka import ConsumerGroupState

    admin = make_admin(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            assert worker.alive(), f"worker exited with {worker.proc.returncode}\n{worker.output()}"
        try:
            group = admin.describe_consumer_groups([settings.app_id])[settings.app_id].result(10)
        except Exception:  # the group does not exist until the first member joins
            group = None
        if (group is not None and group.state == ConsumerGroupState.STABLE and len(group.members) == members
                and all(m.assignment and m.assignment.topic_partitions for m in group.members)):
            return
        time.sleep(0.2)
    raise AssertionError(f"consumer group {settings.app_id} not stable with {members} members in {timeout}s")


def assert_exactly_once(reader: Reader, want: dict[str, set[str]], workers) -> None:
    for name, wanted in want.items():
        got = reader.ids(name)
        missing = wanted - set(got)
        dupes = {i for i in got if got.count(i) > 1}
        logs = "\n\n".join(w.output() for w in workers)
        assert not missing, f"{name}: {len(missing)} of {len(wanted)} events missing\n{logs}"
        assert not dupes, f"{name}: {len(dupes)} events more than once"
        assert set(got) == wanted, f"{name}: unexpected events {set(got) - wanted}"


def prefixed(settings: Settings, tag: str) -> Settings:
    """Own topics and consumer group per test module, so modules never see each other's events."""
    run = uuid.uuid4().hex[:6]
    new = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}{tag}{run}.",
                                      "app_id": f"{settings.app_id}-{tag}{run}"})
    create_topics(new)
    return new


# ------------------------------------------------------------------------- one worker, all stages

FOLLOWS = [  # 3 followers x 2 leaders, plus a disabled follow and a deleted one
    follow_change("f0a", FOLLOWERS[0], LEADERS[0]),
    follow_change("f0b", FOLLOWERS[0], LEADERS[1]),
    follow_change("f1a", FOLLOWERS[1], LEADERS[0]),
    follow_change("f2b", FOLLOWERS[2], LEADERS[1]),
    follow_change("f1b", FOLLOWERS[1], LEADERS[1], enabled=False),
    follow_change("f2a", FOLLOWERS[2], LEADERS[0]),
    follow_change("f2a", FOLLOWERS[2], LEADERS[0], delete=True),
]


RUNNERS = ("faust", "confluent")  # the same stages under both runners (streams/confluent_loop.py)


@pytest.fixture(scope="module", params=RUNNERS)
def pipeline(topics, tmp_path_factory, request):
    settings = prefixed(topics, "pipe")
    producer = Producer(settings)
    producer.configs(FOLLOWS)  # before the worker starts: it must rebuild the graph from the topic
    reader = Reader(settings, OUTPUTS + (DEAD_LETTERS,))
    worker = Worker(settings, "plan,decide,execute,settle", tmp_path_factory.mktemp("worker") / "worker.log",
                    runner=request.param)
    try:
        wait_group_stable(settings, 1, [worker])
    except BaseException:
        worker.stop()
        reader.close()
        raise
    yield settings, producer, reader, worker
    reader.close()
    code = worker.stop()
    assert code == 0, f"worker did not exit cleanly on SIGTERM (exit {code})\n{worker.output()}"


def test_every_stage_event_appears_exactly_once(pipeline):
    settings, producer, reader, worker = pipeline
    fills = [leader_fill(leader, n) for n in range(6) for leader in (*LEADERS, OTHER_LEADER)]
    producer.fills(fills)
    want = expected_ids(FOLLOWS, fills)
    assert len(want[COPY_CANDIDATES.name]) == 6 * 4  # 2 enabled follows per followed leader
    reader.wait_for(want, [worker])
    assert worker.alive(), worker.output()
    assert_exactly_once(reader, want, [worker])
    for name in (spec.name for spec in OUTPUTS):
        for key, record, _ in reader.seen[name]:
            assert key == record["follower"].encode(), f"{name} must be keyed by follower"
    for _, candidate, _ in reader.seen[COPY_CANDIDATES.name]:
        assert candidate["envelope"]["source"] == "plan"
        assert candidate["follow_id"] in {"f0a", "f0b", "f1a", "f2b"}


def test_garbage_goes_to_dead_letters_with_its_bytes_and_the_pipeline_keeps_going(pipeline):
    settings, producer, reader, worker = pipeline
    garbage = b"\x00\xffnot an avro event\xc3"
    wrong_type = default_codec().encode("ConfigChange", follow_change("x", FOLLOWERS[0], LEADERS[0]))
    # properly framed, but written with a schema this process has never seen
    unknown = b"\xc3\x01" + bytes.fromhex("0123456789abcdef") + b"\x02body"
    producer.placed.clear()
    producer.send(LEADER_FILLS, raw=garbage, key=b"garbage-key")
    producer.send(LEADER_FILLS, raw=wrong_type, key=LEADERS[0])
    producer.send(LEADER_FILLS, raw=unknown, key=b"unknown-key")
    producer.flush()
    (_, g_part, g_off), (_, w_part, w_off), (_, u_part, u_off) = producer.placed
    after = [leader_fill(LEADERS[0], 100 + n) for n in range(3)]
    producer.fills(after)
    want = expected_ids(FOLLOWS, after)
    want[DEAD_LETTERS.name] = {ids.dead_letter_id(settings.topic(LEADER_FILLS.name), g_part, g_off, "decode"),
                               ids.dead_letter_id(settings.topic(LEADER_FILLS.name), w_part, w_off, "plan"),
                               ids.dead_letter_id(settings.topic(LEADER_FILLS.name), u_part, u_off, "decode")}
    reader.wait_for(want, [worker])
    assert worker.alive(), worker.output()
    letters = {(r["source_partition"], r["source_offset"]): r for _, r, _ in reader.seen[DEAD_LETTERS.name]}
    assert len(reader.seen[DEAD_LETTERS.name]) == 3
    bad = letters[(g_part, g_off)]
    assert bad["original"] == garbage and bad["key"] == b"garbage-key" and bad["stage"] == "decode"
    assert (bad["source_topic"], bad["source_partition"]) == (settings.topic(LEADER_FILLS.name), g_part)
    assert "magic" in bad["error"]
    assert letters[(w_part, w_off)]["original"] == wrong_type
    assert "expects LeaderFill" in letters[(w_part, w_off)]["error"]
    unknown_letter = letters[(u_part, u_off)]
    assert unknown_letter["original"] == unknown and unknown_letter["key"] == b"unknown-key"
    assert "0123456789abcdef" in unknown_letter["error"]  # the fingerprint, so an operator can find the schema
    for name in (spec.name for spec in OUTPUTS):
        assert want[name] <= set(reader.ids(name)), f"{name}: the pipeline stopped after the garbage"


def test_a_follow_added_while_running_is_planned(pipeline):
    settings, producer, reader, worker = pipeline
    change = follow_change("f1c", FOLLOWERS[1], OTHER_LEADER)
    producer.configs([change])
    time.sleep(1.0)  # the graph folds config.changes continuously; give the change a moment to land
    fill = leader_fill(OTHER_LEADER, 500)
    producer.fills([fill])
    want = expected_ids(FOLLOWS + [change], [fill])
    assert len(want[SETTLEMENT_EVENTS.name]) == 1
    reader.wait_for(want, [worker])
    for name, wanted in want.items():
        assert wanted <= set(reader.ids(name)), f"{name}: the new follow was not planned\n{worker.output()}"


# ------------------------------------------------------------------------- stages in two processes

@pytest.mark.parametrize("runner", RUNNERS)
def test_stages_split_across_two_workers_deliver_end_to_end(topics, tmp_path, runner):
    settings = prefixed(topics, "split")
    producer = Producer(settings)
    changes = FOLLOWS[:4]
    producer.configs(changes)
    reader = Reader(settings, OUTPUTS)
    front = Worker(settings, "plan,decide", tmp_path / "front.log", runner)
    back = Worker(settings, "execute,settle", tmp_path / "back.log", runner)
    try:
        wait_group_stable(settings, 2, [front, back])
        fills = [leader_fill(leader, n) for n in range(5) for leader in LEADERS]
        producer.fills(fills)
        want = expected_ids(changes, fills)
        reader.wait_for(want, [front, back])
        assert front.alive() and back.alive(), front.output() + back.output()
        assert_exactly_once(reader, want, [front, back])
    finally:
        reader.close()
        codes = (front.stop(), back.stop())
    assert codes == (0, 0), f"exit codes {codes}\n{front.output()}\n{back.output()}"


# ------------------------------------------------------------------------- crash in the middle

@pytest.mark.parametrize("runner", RUNNERS)
def test_a_worker_killed_mid_stream_loses_nothing(topics, tmp_path, runner):
    """SIGKILL the worker while it is producing, three times; after a final restart every expected event
    is there (at-least-once: a re-run batch may repeat events, but only with the same deterministic ids)."""
    settings = prefixed(topics, "kill").model_copy(update={"session_timeout_s": 6.0})
    producer = Producer(settings)
    changes = FOLLOWS[:4]
    producer.configs(changes)
    fills = [leader_fill(leader, n) for n in range(1500) for leader in LEADERS]
    producer.fills(fills)
    want = expected_ids(changes, fills)
    reader = Reader(settings, OUTPUTS)
    try:
        for round_ in range(3):
            worker = Worker(settings, "plan,decide,execute,settle", tmp_path / f"kill{round_}.log", runner)
            before = len(reader.seen[SETTLEMENT_EVENTS.name])
            deadline = time.monotonic() + WAIT
            while len(reader.seen[SETTLEMENT_EVENTS.name]) == before and time.monotonic() < deadline:
                reader.poll(0.05)  # kill as soon as it is visibly mid-stream
                assert worker.alive(), worker.output()
            worker.proc.kill()
            worker.proc.wait(10)
            worker.log.close()
        final = Worker(settings, "plan,decide,execute,settle", tmp_path / "final.log", runner)
        try:
            reader.wait_for(want, [final], timeout=3 * WAIT)
        finally:
            assert final.stop() == 0, final.output()
        for name, wanted in want.items():
            got = set(reader.ids(name))
            assert wanted <= got, f"{name}: {len(wanted - got)} events lost after the kills\n{final.output()}"
            assert got == wanted, f"{name}: events nobody asked for: {got - wanted}"
        # re-delivery volume is a cost, not a fault (ids are deterministic); shown for the record
        print(f"{runner}: {len(reader.seen[SETTLEMENT_EVENTS.name])} settlement messages for "
              f"{len(want[SETTLEMENT_EVENTS.name])} settlements after 3 kills")
    finally:
        reader.close()
