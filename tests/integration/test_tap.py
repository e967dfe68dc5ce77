"""`horus tap` against the real broker: decoding, filters, limits, and garbage shown, not fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from horus.codec import default_codec
from horus.domain.fill_json import leader_fill_from_json
from horus.kafka.client import flush_or_raise, make_producer, produce_reliably

ROW = {
    "event_id": "e",
    "leader": "0x" + "a" * 40,
    "exchange": "0x" + "e" * 40,
    "tx_hash": "0x" + "1" * 64,
    "block_number": 1,
    "token_id": "123",
    "side": "BUY",
    "shares": "10",
    "collateral": "5",
    "price": "0.5",
}
LEADERS = ["0x" + c * 40 for c in "abc"]


@pytest.fixture(scope="module")
def tapped(topics):
    settings = topics
    codec = default_codec()
    producer = make_producer(settings)
    topic = settings.topic("leader.fills")
    for i in range(30):
        record = leader_fill_from_json(ROW | {"event_id": f"fill-{i}", "leader": LEADERS[i % 3], "shares": f"{i + 1}"})
        produce_reliably(producer, topic, codec.encode("LeaderFill", record), key=record["leader"])
    produce_reliably(producer, topic, b"\x00not avro", key=b"garbage")
    flush_or_raise(producer)
    return settings


def run_tap(settings, *args) -> list[dict]:
    env = {**os.environ, **settings.as_env()}
    result = subprocess.run(
        [sys.executable, "-m", "horus.cli.main", "tap", "leader.fills", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_from_beginning_reads_everything_once(tapped):
    lines = run_tap(tapped, "--from-beginning")
    assert len(lines) == 31
    fills = [line for line in lines if line["type"] == "LeaderFill"]
    assert sorted(line["value"]["envelope"]["event_id"] for line in fills) == sorted(f"fill-{i}" for i in range(30))
    for line in lines:
        assert {"partition", "offset", "timestamp_ms", "key"} <= set(line)
    garbage = [line for line in lines if line["type"] is None]
    assert len(garbage) == 1 and "error" in garbage[0] and garbage[0]["key"] == "garbage"


def test_key_grep_and_limit(tapped):
    by_key = run_tap(tapped, "--from-beginning", "--key", LEADERS[1])
    assert len(by_key) == 10 and {line["key"] for line in by_key} == {LEADERS[1]}
    grepped = run_tap(tapped, "--from-beginning", "--grep", '"fill-7"')
    assert [line["value"]["envelope"]["event_id"] for line in grepped] == ["fill-7"]
    assert len(run_tap(tapped, "--from-beginning", "--limit", "4")) == 4


def test_without_from_beginning_and_follow_prints_nothing(tapped):
    assert run_tap(tapped) == []
