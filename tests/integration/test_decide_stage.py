"""The decide stage on the real broker: `horus worker --stages plan,decide` processes against the CLOB
simulator (market rules and books), with follower and follow configs on config.changes.

- two workers and a rebalance in the middle: every candidate gets exactly one decision, and no follower's
  daily cap is exceeded across the two instances;
- pausing a market stops COPYs for it on every worker within a second; resuming restores them;
- a restarted worker (after SIGTERM, or SIGKILL) restores its partitions from their snapshots in Postgres
  and folds only the decisions that followed them.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import psycopg
import pytest
from pydantic import SecretStr

from horus.db.engine import psycopg_conninfo
from horus.domain import ids
from horus.domain.config import config_change, parse_follow_config, parse_follower
from horus.domain.control import control_command
from horus.domain.events import envelope
from horus.kafka.client import end_offsets, make_consumer
from horus.topics import COPY_CANDIDATES, COPY_DECISIONS, LEADER_FILLS
from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig, run_simulator
from tests.integration.pipeline_helpers import WAIT, Producer, Reader, Worker, prefixed, wait_group_stable

pytestmark = pytest.mark.integration

LEADER = "0x" + "1e" * 20
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
CONDITION = "0x" + "c0" * 32
FOLLOWERS = [f"0x{i + 1:040x}" for i in range(24)]
DAILY_CAP = 12  # $5 copies: two fit, the third is shrunk, then DAILY_CAP skips


@pytest.fixture(scope="module")
def sim():
    market = MarketConfig(
        condition_id=CONDITION,
        tokens=[TokenConfig(token_id=TOKEN, price="0.5")],
        tick_size="0.01",
        levels=5,
        level_size=100000,
        replenish=True,
    )
    with run_simulator(SimulatorConfig(markets=[market])) as running:
        yield running


def decide_settings(topics, sim, tag):
    settings = prefixed(topics, tag)
    # snapshots are sealed with a key derived from a configured secret (no credentials key here: fixed balances)
    return settings.model_copy(
        update={
            "clob_url": sim.url,
            "gamma_url": "",
            "balance_source": "fixed",
            "snapshot_key": SecretStr(f"decide-test-{tag}"),
            "fixed_balance": "1000",
            "session_timeout_s": 6.0,
        }
    )


def configs():
    changes = []
    for i, follower in enumerate(FOLLOWERS):
        changes.append(config_change("FOLLOWER", follower, parse_follower({"follower": follower}), "test"))
        follow = parse_follow_config(
            {
                "follow_id": f"f{i}",
                "follower": follower,
                "leader": LEADER,
                "sizing": {"mode": "fixed", "amount": "5"},
                "daily_cap": str(DAILY_CAP),
            }
        )
        changes.append(config_change("FOLLOW", follow.follow_id, follow, "test"))
    return changes


def fill(n: int, side: str = "BUY") -> dict:
    tx = "0x" + ids.make_id("decide-test-tx", n, time.time_ns())
    now = time.time_ns() // 1000
    return {
        "envelope": envelope(ids.leader_fill_id(tx, LEADER, TOKEN, side), "test", now),
        "leader": LEADER,
        "exchange": "0x" + "0e" * 20,
        "tx_hash": tx,
        "block_number": 100 + n,
        "log_index": 0,
        "token_id": TOKEN,
        "condition_id": CONDITION,
        "side": side,
        "shares_e6": 20_000_000,
        "collateral_e6": 10_000_000,
        "price": "0.5",
        "fee_e6": 0,
        "role": "TAKER",
        "order_hashes": [],
    }


def decisions_by_candidate(reader: Reader) -> Counter:
    return Counter(record["candidate_id"] for _, record, _ in reader.seen[COPY_DECISIONS.name])


def wait_for_decisions(reader: Reader, count: int, workers, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(decisions_by_candidate(reader)) < count:
        reader.poll()
        for worker in workers:
            assert worker.alive(), worker.output()
    end = time.monotonic() + 1.5  # catch any duplicate that arrives late
    while time.monotonic() < end:
        reader.poll()


def test_two_workers_and_a_rebalance_one_decision_per_candidate_and_caps_hold(topics, sim, tmp_path):
    settings = decide_settings(topics, sim, "dec")
    producer = Producer(settings)
    producer.configs(configs())
    reader = Reader(settings, (COPY_CANDIDATES, COPY_DECISIONS))
    first = Worker(settings, "plan,decide", tmp_path / "first.log")
    second = None
    try:
        wait_group_stable(settings, 1, [first])
        producer.fills([fill(n) for n in range(3)])
        wait_for_decisions(reader, 3 * len(FOLLOWERS), [first])
        second = Worker(settings, "plan,decide", tmp_path / "second.log")  # partitions move mid-stream
        for n in range(3, 6):
            producer.fills([fill(n)])
            time.sleep(0.7)
        wait_group_stable(settings, 2, [first, second])
        producer.fills([fill(n) for n in range(6, 8)])
        wait_for_decisions(reader, 8 * len(FOLLOWERS), [first, second])
        logs = first.output() + (second.output() if second else "")
        candidates = {record["envelope"]["event_id"] for _, record, _ in reader.seen[COPY_CANDIDATES.name]}
        per_candidate = decisions_by_candidate(reader)
        assert len(candidates) == 8 * len(FOLLOWERS)
        assert set(per_candidate) == candidates, f"candidates without a decision\n{logs}"
        twice = {c: n for c, n in per_candidate.items() if n > 1}
        assert not twice, f"{len(twice)} candidates decided more than once\n{logs}"
        spent = Counter()
        reasons = Counter()
        for _, d, _ in reader.seen[COPY_DECISIONS.name]:
            reasons[d["reason_code"] or "COPY"] += 1
            if d["action"] == "COPY":
                spent[d["follower"]] += d["reserved_e6"]
        assert reasons["DAILY_CAP"] > 0 and reasons["COPY"] > 0, reasons
        assert max(spent.values()) <= DAILY_CAP * 1_000_000, spent.most_common(3)
        # the second worker took partitions over and rebuilt their books from the decisions made so far: read
        # back from the snapshots the first worker wrote as it gave them up, or folded from copy.decisions
        took_over = re.findall(r"rebuilt from (\d+) decisions .*?from snapshots: (.*?); whole", second.output())
        assert any(int(n) > 0 or restored != "none" for n, restored in took_over), second.output()
    finally:
        reader.close()
        codes = [w.stop() for w in (first, second) if w is not None]
    assert all(code == 0 for code in codes), codes


def test_pausing_a_market_stops_copies_on_every_worker_within_a_second(topics, sim, tmp_path):
    settings = decide_settings(topics, sim, "pause")
    producer = Producer(settings)
    producer.configs(configs())
    reader = Reader(settings, (COPY_DECISIONS,))
    workers = [Worker(settings, "plan,decide", tmp_path / f"w{i}.log") for i in range(2)]
    try:
        wait_group_stable(settings, 2, workers)
        producer.control(control_command("MARKET", "PAUSE", CONDITION, reason="test pause"))
        time.sleep(1.0)
        paused = fill(0)
        producer.fills([paused])
        wait_for_decisions(reader, len(FOLLOWERS), workers)
        producer.control(control_command("MARKET", "RESUME", CONDITION))
        time.sleep(1.0)
        resumed = fill(1)
        producer.fills([resumed])
        wait_for_decisions(reader, 2 * len(FOLLOWERS), workers)
        by_fill = {}
        for _, d, _ in reader.seen[COPY_DECISIONS.name]:
            by_fill.setdefault(d["leader_fill_id"], []).append(d)
        during = by_fill[paused["envelope"]["event_id"]]
        after = by_fill[resumed["envelope"]["event_id"]]
        assert len(during) == len(after) == len(FOLLOWERS)
        assert {d["reason_code"] for d in during} == {"PAUSED_MARKET"}
        assert {d["action"] for d in after} == {"COPY"}
        # both workers decided some of them (the followers are spread over their partitions)
        assert all("rebuilt from" in w.output() for w in workers)
    finally:
        reader.close()
        codes = [w.stop() for w in workers]
    assert codes == [0, 0], codes


def test_the_circuit_breaker_pauses_everything_when_executions_keep_failing(topics, sim, tmp_path):
    """Executions rejected one after another: decide trips the global pause on control.commands by itself,
    and later candidates are skipped with PAUSED_GLOBAL until an operator resumes."""
    from horus.codec import default_codec
    from horus.domain.execute import result_record
    from horus.kafka.client import flush_or_raise, make_producer, produce_reliably
    from horus.topics import CONTROL_COMMANDS, EXECUTION_RESULTS

    settings = decide_settings(topics, sim, "brk").model_copy(
        update={"breaker_min_executions": 5, "breaker_failure_rate": 0.5, "breaker_window_s": 120.0}
    )
    producer = Producer(settings)
    producer.configs(configs())
    reader = Reader(settings, (COPY_DECISIONS, CONTROL_COMMANDS))
    worker = Worker(settings, "plan,decide", tmp_path / "brk.log")
    try:
        wait_group_stable(settings, 1, [worker])
        producer.fills([fill(0)])
        wait_for_decisions(reader, len(FOLLOWERS), [worker])
        copies = [d for _, d, _ in reader.seen[COPY_DECISIONS.name] if d["action"] == "COPY"]
        assert len(copies) == len(FOLLOWERS)
        codec, raw = default_codec(), make_producer(settings)
        for d in copies:  # the executor's verdict: every one rejected
            result = result_record(
                intent_id=d["intent_id"],
                follow_id=d["follow_id"],
                follower=d["follower"],
                leader_fill_id=d["leader_fill_id"],
                decision_id=d["envelope"]["event_id"],
                occurred_at_us=d["envelope"]["occurred_at_us"],
                status="REJECTED",
                seq=1,
                now_us=time.time_ns() // 1000,
                order_hash=None,
                error="not enough balance",
            )
            produce_reliably(
                raw, settings.topic(EXECUTION_RESULTS.name), codec.encode("ExecutionResult", result), key=d["follower"]
            )
        # a result decide cannot read is reported and stepped over; the readable ones still count
        produce_reliably(raw, settings.topic(EXECUTION_RESULTS.name), b"\x00not a result", key=copies[0]["follower"])
        flush_or_raise(raw)
        producer.fills([fill(1)])  # the next batch folds the results first, then trips
        wait_for_decisions(reader, 2 * len(FOLLOWERS), [worker])
        deadline = time.monotonic() + 10
        while not reader.seen[CONTROL_COMMANDS.name] and time.monotonic() < deadline:
            reader.poll()
        (_, command, _), *_ = reader.seen[CONTROL_COMMANDS.name]
        assert (command["scope"], command["command"], command["issued_by"]) == ("GLOBAL", "PAUSE", "circuit-breaker")
        assert "executions failed" in command["reason"]
        time.sleep(1.0)
        producer.fills([fill(2)])
        wait_for_decisions(reader, 3 * len(FOLLOWERS), [worker])
        latest = [d for _, d, _ in reader.seen[COPY_DECISIONS.name]][-len(FOLLOWERS) :]
        assert {d["reason_code"] for d in latest} == {"PAUSED_GLOBAL"}
        assert "circuit breaker" in latest[0]["reason_detail"]
        assert "cannot fold" in worker.log_path.read_text(), worker.output()
    finally:
        reader.close()
        assert worker.stop() == 0


def snapshot_offsets(settings) -> dict[int, tuple[int, int]]:
    """partition -> (decisions_offset, results_offset) of the group's rows in decide_snapshots."""
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        rows = conn.execute(
            "SELECT partition, decisions_offset, results_offset FROM decide_snapshots WHERE group_id = %s",
            (settings.app_id,),
        ).fetchall()
    return {p: (decisions, results) for p, decisions, results in rows}


def decision_ends(settings) -> dict[int, int]:
    """partition -> end offset of copy.decisions, for the partitions that hold decisions."""
    consumer = make_consumer(settings)
    try:
        return {p: end for p, end in end_offsets(consumer, settings.topic(COPY_DECISIONS.name)).items() if end}
    finally:
        consumer.close()


def rebuilds(worker: Worker) -> list[tuple[int, str, str]]:
    """(decisions folded, 'from snapshots: ...', 'whole history: ...') of each assign the worker logged."""
    return [
        (int(n), restored, whole)
        for n, restored, whole in re.findall(
            r"rebuilt from (\d+) decisions and \d+ results in [\d.]+s; from snapshots: (.*?); whole history: (.*?)\"",
            worker.log_path.read_text(),
        )
    ]


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_a_restarted_worker_starts_from_the_snapshots_and_folds_only_what_followed(topics, sim, tmp_path, stop):
    """A worker decides, snapshots, and is stopped (SIGTERM: the last snapshots are taken as it leaves) or
    killed after more decisions (SIGKILL: those are the tail). The next worker restores every partition from
    its snapshot and folds exactly the decisions made after it; candidates are still decided once (also one
    plan produced again from before the snapshot), and the daily caps still hold."""
    killed = stop == "SIGKILL"
    settings = decide_settings(topics, sim, f"snap{stop[3:].lower()}").model_copy(
        update={
            # SIGTERM: snapshots only when the partitions are given up; SIGKILL: also every 4 s while changing
            "decide_snapshot_every": 0 if killed else 10_000,
            "decide_snapshot_interval_s": 4.0 if killed else 0.0,
        }
    )
    producer = Producer(settings)
    producer.configs(configs())
    reader = Reader(settings, (COPY_CANDIDATES, COPY_DECISIONS))
    first = Worker(settings, "plan,decide", tmp_path / "first.log")
    second = None
    try:
        wait_group_stable(settings, 1, [first])
        producer.fills([fill(n) for n in range(3)])
        wait_for_decisions(reader, 3 * len(FOLLOWERS), [first])
        if killed:
            time.sleep(4.5)
            producer.fills([fill(3)])  # its batch is the first one after the interval: every partition is due
            wait_for_decisions(reader, 4 * len(FOLLOWERS), [first])
            deadline = time.monotonic() + WAIT
            while set(snapshot_offsets(settings)) != set(decision_ends(settings)) and time.monotonic() < deadline:
                time.sleep(0.1)
            producer.fills([fill(4)])  # decided after the snapshots: the tail
            wait_for_decisions(reader, 5 * len(FOLLOWERS), [first])
            first.proc.kill()
            first.proc.wait(10)
        else:
            assert first.stop() == 0
        decided_before = 5 if killed else 3
        saved, ends = snapshot_offsets(settings), decision_ends(settings)
        assert set(saved) == set(ends), (saved, ends)  # every partition with decisions has a snapshot
        tail = sum(ends[p] - saved[p][0] for p in ends)
        assert (0 < tail < sum(ends.values())) if killed else tail == 0, (saved, ends)

        second = Worker(settings, "plan,decide", tmp_path / "second.log")
        wait_group_stable(settings, 1, [second])
        # plan produces candidates from before the snapshots again (as after a plan crash): no second decision
        again = [(key, message.value()) for key, _, message in reader.seen[COPY_CANDIDATES.name][: len(FOLLOWERS)]]
        for key, value in again:
            producer.send(COPY_CANDIDATES, key=key, raw=value)
        producer.flush()
        producer.fills([fill(n) for n in range(decided_before, decided_before + 3)])
        wait_for_decisions(reader, (decided_before + 3) * len(FOLLOWERS), [second])

        # (after a SIGKILL the partitions may arrive in more than one assignment)
        assigns = rebuilds(second)
        assert sum(folded for folded, _, _ in assigns) == tail, second.output()
        restored = {int(p) for _, text, _ in assigns for p in re.findall(r"(\d+) \(\d+ followers", text)}
        whole = {int(p) for _, _, text in assigns for p in re.findall(r"\d+", text)}
        assert restored == set(ends) and whole.isdisjoint(ends), second.output()
        candidates = {record["envelope"]["event_id"] for _, record, _ in reader.seen[COPY_CANDIDATES.name]}
        per_candidate = decisions_by_candidate(reader)
        assert len(candidates) == (decided_before + 3) * len(FOLLOWERS)
        assert set(per_candidate) == candidates
        twice = {c: n for c, n in per_candidate.items() if n > 1}
        assert not twice, f"{len(twice)} candidates decided more than once\n{second.output()}"
        spent, reasons = Counter(), Counter()
        for _, d, _ in reader.seen[COPY_DECISIONS.name]:
            reasons[d["reason_code"] or "COPY"] += 1
            if d["action"] == "COPY":
                spent[d["follower"]] += d["reserved_e6"]
        assert reasons["DAILY_CAP"] > 0 and reasons["COPY"] > 0, reasons
        assert max(spent.values()) <= DAILY_CAP * 1_000_000, spent.most_common(3)
    finally:
        reader.close()
        codes = [w.stop() for w in (first, second) if w is not None]
    assert codes[-1] == 0, codes


def test_hostile_candidates_and_fills_are_skipped_or_parked_and_the_worker_keeps_deciding(topics, sim, tmp_path):
    """Well-typed but hostile records (as anyone with broker access can write them) reach a running plan+decide
    worker: each is SKIPped with a reason or parked with its bytes; the worker lives and decides what follows."""
    from horus.codec import default_codec
    from horus.topics import DEAD_LETTERS

    settings = decide_settings(topics, sim, "hostile")
    producer = Producer(settings)
    producer.configs(configs())
    reader = Reader(settings, (COPY_DECISIONS, DEAD_LETTERS))
    worker = Worker(settings, "plan,decide", tmp_path / "hostile.log")
    now = time.time_ns() // 1000

    def candidate(n: int, **change) -> dict:
        fill_id = ids.leader_fill_id("0x" + ids.make_id("hostile", n, now), LEADER, TOKEN, "BUY")
        record = {
            "envelope": envelope(ids.candidate_id(fill_id, f"f{n}"), "plan", now),
            "leader_fill_id": fill_id,
            "follow_id": f"f{n}",
            "follower": FOLLOWERS[n],
            "leader": LEADER,
            "token_id": TOKEN,
            "side": "BUY",
            "leader_shares_e6": 20_000_000,
            "leader_collateral_e6": 10_000_000,
            "leader_price": "0.5",
            "condition_id": CONDITION,
        }
        return {**record, **change}

    skipped = {
        "CANDIDATE_INVALID": [
            candidate(0, leader_price="abc"),
            candidate(1, leader_price="0"),
            candidate(2, leader_shares_e6=-1),
            candidate(3, leader_collateral_e6=-5),
        ],
        "FILL_IN_FUTURE": [candidate(4, envelope=envelope("future", "plan", now + 3600 * 1_000_000))],
        "MARKET_UNKNOWN": [candidate(5, token_id="../../admin"), candidate(6, token_id="9" * 70)],
    }
    codec = default_codec()
    parked = [
        codec.encode("CopyCandidate", candidate(7, token_id="7" * 600_000)),  # its decision: > 1 MB
        codec.encode("CopyCandidate", candidate(8, follow_id="f" * 300_000)),
        b"\xc3\x01 not a record",
    ]
    huge_fill = codec.encode("LeaderFill", {**fill(99), "token_id": "7" * 600_000})
    try:
        wait_group_stable(settings, 1, [worker])
        for records in skipped.values():
            for record in records:
                producer.send(COPY_CANDIDATES, record, key=record["follower"])
        for raw in parked:
            producer.send(COPY_CANDIDATES, key=FOLLOWERS[9], raw=raw)
        producer.send(LEADER_FILLS, key=LEADER, raw=huge_fill)
        producer.flush()
        valid_fill = fill(100)
        producer.fills([valid_fill])  # a valid fill after all of them: every follower decides it
        want = {c["envelope"]["event_id"] for records in skipped.values() for c in records}
        reader.wait_for({COPY_DECISIONS.name: {ids.decision_id(c) for c in want}}, [worker])
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and (
            len(reader.seen[DEAD_LETTERS.name]) < len(parked) + 1
            or len(decisions_by_candidate(reader)) < len(want) + len(FOLLOWERS)
        ):
            reader.poll()
            assert worker.alive(), worker.output()
        decided = {d["candidate_id"]: d for _, d, _ in reader.seen[COPY_DECISIONS.name]}
        for code, records in skipped.items():
            for record in records:
                got = decided[record["envelope"]["event_id"]]
                assert (got["action"], got["reason_code"]) == ("SKIP", code), got
        valid = [d for d in decided.values() if d["leader_fill_id"] == valid_fill["envelope"]["event_id"]]
        assert len(valid) == len(decided) - len(want) == len(FOLLOWERS)
        assert any(d["action"] == "COPY" for d in valid), valid[:2]
        letters = [d for _, d, _ in reader.seen[DEAD_LETTERS.name]]
        assert sorted(d["original"] for d in letters) == sorted([*parked, huge_fill])
        assert worker.alive(), worker.output()
    finally:
        reader.close()
        code = worker.stop()
    assert code == 0, code
