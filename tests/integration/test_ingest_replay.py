"""`horus ingest replay FILE` on the real stack: logs, Data API rows and LeaderFill JSON in one file,
each fill produced once (also across a second replay), bad lines parked with their raw form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from horus.codec import default_codec
from horus.domain.fills import aggregate
from horus.kafka.admin import create_topics
from horus.kafka.client import assign_from_beginning, make_consumer, poll_batch
from horus.venue.polymarket.exchanges import ExchangeBook
from horus.venue.polymarket.fills import decode_log
from tests.unit.test_venue_fills import v2_log  # the log builder the decoder's unit tests use

pytestmark = pytest.mark.integration

DEMO = os.path.join(os.path.dirname(__file__), "..", "..", "data", "demo", "leader_fills.jsonl")


def read_topic(settings, name: str) -> list[tuple[str, dict]]:
    consumer = make_consumer(settings)
    assign_from_beginning(consumer, [settings.topic(name)])
    out, idle = [], 0
    while idle < 6:
        batch = poll_batch(consumer, 1000, 0.5)
        idle = 0 if batch else idle + 1
        out += [default_codec().decode(m.value()) for m in batch]
    consumer.close()
    return out


def run_replay(settings, path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.as_env()}
    return subprocess.run(
        [sys.executable, "-m", "horus.cli.main", "ingest", "replay", str(path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_replay_file_of_mixed_inputs_is_produced_once(topics, tmp_path):
    settings = topics.model_copy(update={"topic_prefix": topics.topic_prefix + "replay."})
    create_topics(settings)
    logs = [v2_log(tx=f"0x{i + 1:064x}", order=i, index=i, timestamp=1_790_000_000 + i) for i in range(3)]
    demo = [json.loads(line) for line in Path(DEMO).read_text().splitlines()[:5]]
    path = tmp_path / "replay.jsonl"
    lines = [json.dumps(log) for log in logs] + [json.dumps(fill) for fill in demo]
    lines += [json.dumps({"not": "a fill"}), json.dumps(logs[0] | {"data": "0x00"})]
    path.write_text("\n".join(lines) + "\n")

    first = run_replay(settings, path)
    assert first.returncode == 0, first.stderr
    second = run_replay(settings, path)
    assert second.returncode == 0, second.stderr

    book = ExchangeBook.mainnet()
    from_logs = {r["envelope"]["event_id"] for r in aggregate([decode_log(log, book) for log in logs])}
    expected = from_logs | {fill["event_id"] for fill in demo}
    fills = [r["envelope"]["event_id"] for name, r in read_topic(settings, "leader.fills") if name == "LeaderFill"]
    assert sorted(fills) == sorted(expected), "every fill exactly once, also after replaying the file again"
    parked = [r for name, r in read_topic(settings, "dead.letters") if r["stage"] == "ingest-replay"]
    assert len(parked) == 2 * 2  # two bad lines, parked by each of the two runs
    assert any(json.loads(r["original"]) == {"not": "a fill"} for r in parked)
    said = [" ".join(run.stdout.split()) for run in (first, second)]  # the console wraps long lines
    assert "8 new, 0 already produced" in said[0] and "0 new, 8 already produced" in said[1]


def test_replay_refuses_fills_dated_in_the_future(iso, tmp_path):
    """D12: a replay file's future-dated LeaderFill JSON and Data API rows are parked with their raw form,
    never produced as fresh fills; the other fills of the file are produced."""
    import time

    settings = iso
    demo = [json.loads(line) for line in Path(DEMO).read_text().splitlines()[:3]]
    future_s = int(time.time()) + 365 * 86_400
    ahead = dict(demo[2], block_timestamp=future_s)
    row = {
        "proxy_wallet": demo[0]["leader"],
        "timestamp": future_s,
        "type": "TRADE",
        "transaction_hash": "0x" + "7f" * 32,
        "token_id": "1234567",
        "side": "BUY",
        "size": 10,
        "price": 0.5,
    }
    path = tmp_path / "future.jsonl"
    path.write_text("\n".join(json.dumps(v) for v in (demo[0], demo[1], ahead, row)) + "\n")

    run = run_replay(settings, path)
    assert run.returncode == 0, run.stderr
    fills = [r["envelope"]["event_id"] for name, r in read_topic(settings, "leader.fills") if name == "LeaderFill"]
    assert sorted(fills) == sorted([demo[0]["event_id"], demo[1]["event_id"]])
    parked = [r for name, r in read_topic(settings, "dead.letters") if name == "DeadLetter"]
    errors = " | ".join(r["error"] for r in parked)
    assert len(parked) == 2 and errors.count("ahead of our clock") == 2, errors
    originals = [json.loads(r["original"]) for r in parked]
    assert row in originals  # the Data API row as the file had it
    assert any(o.get("envelope", {}).get("event_id") == ahead["event_id"] for o in originals)
    said = " ".join(run.stdout.split())
    assert "2 new, 0 already produced; 2 " in said, said
