"""Hostile records on the compacted config and control topics, read by real tails on a private stack's topics:
a bad record is parked in dead.letters with its bytes and changes nothing; the tail (and its process) lives."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from horus.codec import default_codec
from horus.domain.config import config_change, parse_follow_config
from horus.kafka.client import flush_or_raise, make_producer
from horus.topics import CONFIG_CHANGES, CONTROL_COMMANDS, DEAD_LETTERS
from tests.integration.ingest_helpers import read_topic
from tests.integration.pipeline_helpers import wait_until

pytestmark = pytest.mark.integration
codec = default_codec()
FOLLOWER, LEADER = "0x" + "1" * 40, "0x" + "a" * 40


def produce(settings, topic, records: list[tuple[str | None, bytes | None]]) -> None:
    producer = make_producer(settings)
    for key, value in records:
        producer.produce(settings.topic(topic.name), value, key=key)
    flush_or_raise(producer)


def dead_letters(settings) -> list[dict]:
    return [r for name, r in read_topic(settings, DEAD_LETTERS) if name == "DeadLetter"]


# A worker's config tails (plan's follow graph, decide/execute's configs) in a process that imported the chain
# code, as `horus worker` with the execute stage does (py_ecc raises the recursion limit to 100,000).
TAILS_SCRIPT = textwrap.dedent("""
    import sys, threading
    import horus.ingest.chain  # noqa: F401
    assert sys.getrecursionlimit() >= 100_000
    from horus.domain.config import ConfigState, apply_config, apply_config_tombstone
    from horus.domain.follow_graph import FollowGraph, apply_config_change, apply_tombstone
    from horus.codec import default_codec
    from horus.kafka.client import make_producer
    from horus.kafka.config_tail import ConfigTail
    from horus.kafka.dead_letter import DeadLetters
    from horus.settings import get_settings

    settings = get_settings()
    producer = make_producer(settings)
    parked = DeadLetters(settings, producer)
    graph, configs = FollowGraph(), ConfigState()
    tails = [ConfigTail(settings, default_codec(), graph, threading.Lock(), dead_letters=parked, stage="plan-config",
                        apply=apply_config_change, tombstone=apply_tombstone),
             ConfigTail(settings, default_codec(), configs, threading.Lock(), dead_letters=parked,
                        stage="decide-config", apply=apply_config, tombstone=apply_config_tombstone)]
    for tail in tails:
        tail.start()
    for tail in tails:
        assert tail.ready.wait(60) and tail.failed is None, tail.failed
        tail.stop()
    assert producer.flush(30) == 0
    print(sorted(f.follow_id for f in graph.follows_of(sys.argv[1])), sorted(configs.follows), sorted(configs.invalid))
""")


def test_a_nested_json_bomb_on_config_changes_is_parked_and_the_worker_lives(iso):
    depth = 100_000
    bomb = config_change("FOLLOW", "bomb", "[" * depth + "]" * depth, "attacker")
    good = config_change(
        "FOLLOW",
        "good",
        parse_follow_config(
            {"follow_id": "good", "follower": FOLLOWER, "leader": LEADER, "sizing": {"mode": "fixed", "amount": "5"}}
        ),
        "test",
    )
    bomb_bytes = codec.encode("ConfigChange", bomb)
    produce(iso, CONFIG_CHANGES, [("bomb", bomb_bytes), ("good", codec.encode("ConfigChange", good))])
    run = subprocess.run(
        [sys.executable, "-c", TAILS_SCRIPT, LEADER],
        env={**os.environ, **iso.as_env()},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, f"exit {run.returncode} (-11 is SIGSEGV): {run.stderr[-3000:]}"
    assert run.stdout.split("\n")[0] == "['good'] ['good'] ['bomb']", run.stdout
    parked = dead_letters(iso)
    assert sorted(r["stage"] for r in parked) == ["decide-config", "plan-config"]
    assert all(r["original"] == bomb_bytes and "nested deeper than" in r["error"] for r in parked), [
        r["error"] for r in parked
    ]


def test_control_commands_that_break_the_rules_are_parked_by_a_running_tail_and_change_no_switch(iso):
    from horus.domain.control import ControlState, apply_control, apply_control_tombstone, control_command
    from horus.kafka.config_tail import ConfigTail
    from horus.kafka.dead_letter import DeadLetters
    from tests.unit.test_cli_config import RULE_BREAKERS, rule_breaker

    producer = make_producer(iso)
    state, lock = ControlState(), threading.Lock()
    tail = ConfigTail(
        iso,
        codec,
        state,
        lock,
        dead_letters=DeadLetters(iso, producer),
        stage="decide-control",
        apply=apply_control,
        tombstone=apply_control_tombstone,
        topic=CONTROL_COMMANDS,
    )
    tail.start()
    try:
        assert tail.ready.wait(30) and tail.failed is None
        hostile = [
            codec.encode("ControlCommand", rule_breaker(fields))
            for fields, _ in RULE_BREAKERS
            if "UNRECOGNIZED" not in fields.values()
        ]  # a writer cannot encode those (see the unit test)
        valid = control_command("MARKET", "PAUSE", "0xdef", reason="kept")
        produce(
            iso,
            CONTROL_COMMANDS,
            [("GLOBAL", value) for value in hostile] + [("MARKET:0xdef", codec.encode("ControlCommand", valid))],
        )

        def settled():
            producer.flush(5)
            with lock:
                folded = "MARKET:0xdef" in state.active
            return folded and len(dead_letters(iso)) == len(hostile)

        wait_until(settled, 30, "the valid command folded and every hostile one parked")
        with lock:
            assert set(state.active) == {"MARKET:0xdef"} and not state.killed and not state.global_paused
    finally:
        tail.stop()
    parked = dead_letters(iso)
    assert sorted(r["original"] for r in parked) == sorted(hostile)
    assert all(r["stage"] == "decide-control" and "ControlError" in r["error"] for r in parked)
