"""Shared by the ingest integration tests: private topics and database, emitters on anvil, follows on
config.changes, reading leader.fills, and a `horus ingest ...` subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from web3 import Web3

from horus.codec import default_codec
from horus.db.engine import scratch_database
from horus.domain import ids
from horus.domain.events import envelope
from horus.kafka.admin import create_topics
from horus.kafka.client import (
    assign_from_beginning,
    end_offsets,
    flush_or_raise,
    make_consumer,
    make_producer,
    poll_batch,
)
from horus.ops.testchain import V1Fill, V2Fill, deploy_emitters
from horus.settings import Settings
from horus.topics import CONFIG_CHANGES, LEADER_FILLS
from horus.venue.polymarket.exchanges import ExchangeBook
from horus.venue.polymarket.fills import decode_log

HORUS = str(Path(sys.executable).with_name("horus"))
LEADERS = ["0x" + f"{i:02x}" * 20 for i in (0xA1, 0xA2, 0xA3, 0xA4)]
STRANGER = "0x" + "5e" * 20
codec = default_codec()


@pytest.fixture
def iso(settings: Settings):
    """Private topics (3 partitions) and a private migrated database for one test."""
    run = uuid.uuid4().hex[:6]
    private = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}ing{run}.", "partitions": 3})
    with scratch_database(private, f"horus_ing{run}") as isolated:
        create_topics(isolated)
        yield isolated


@pytest.fixture(scope="module")
def emitters(settings: Settings):
    return deploy_emitters(settings.eth_rpc_url)


def follow(settings: Settings, follow_id: str, leader: str, delete: bool = False) -> None:
    body = (
        None
        if delete
        else json.dumps(
            {
                "follow_id": follow_id,
                "follower": "0x" + "f0" * 20,
                "leader": leader,
                "sizing": {"mode": "fixed", "amount": "5"},
            }
        )
    )
    record = {
        "envelope": envelope(ids.make_id("test-config", follow_id, uuid.uuid4().hex), "test", 0),
        "entity": "FOLLOW",
        "entity_id": follow_id,
        "op": "DELETE" if delete else "UPSERT",
        "body": body,
    }
    producer = make_producer(settings)
    producer.produce(settings.topic(CONFIG_CHANGES.name), codec.encode("ConfigChange", record), key=follow_id)
    flush_or_raise(producer)


def head(settings: Settings) -> int:
    return Web3(Web3.HTTPProvider(settings.eth_rpc_url)).eth.block_number


def read_topic(settings: Settings, spec) -> list[tuple[str, dict]]:
    topic = settings.topic(spec.name)
    consumer = make_consumer(settings, None)
    try:
        ends = {p: o for p, o in end_offsets(consumer, topic).items() if o > 0}
        assign_from_beginning(consumer, [topic])
        out = []
        deadline = time.monotonic() + 20
        while ends and time.monotonic() < deadline:
            for message in poll_batch(consumer, 1000, 0.3):
                out.append(codec.decode(message.value()))
                if message.offset() + 1 >= ends.get(message.partition(), 0):
                    ends.pop(message.partition(), None)
        return out
    finally:
        consumer.close()


def fill_ids(settings: Settings) -> Counter:
    return Counter(r["envelope"]["event_id"] for name, r in read_topic(settings, LEADER_FILLS) if name == "LeaderFill")


def expected_from(receipts, book: ExchangeBook, leaders) -> set[str]:
    out = set()
    for receipt in receipts:
        for log in receipt["logs"]:
            try:
                fill = decode_log(log, book)
            except ValueError:
                continue
            if fill.leader in leaders:
                out.add(fill.event_id)
    return out


class HorusProcess:
    """`horus <args>` as a subprocess with `settings` (and `env`) in its environment, output to `log_path`."""

    def __init__(self, settings: Settings, log_path: Path, *args: str, **env) -> None:
        self.args = [HORUS, *args]
        self.env = {**os.environ, **settings.as_env(), **{k: str(v) for k, v in env.items()}}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return -9
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)


class Ingest(HorusProcess):
    """`horus ingest chain` over both emitters, from `from_block`."""

    def __init__(self, settings: Settings, emitters, log_path: Path, from_block: int, *extra: str, **env) -> None:
        super().__init__(
            settings,
            log_path,
            "ingest",
            "chain",
            "--exchange",
            emitters.v1,
            "--exchange",
            emitters.v2,
            "--from-block",
            str(from_block),
            *extra,
            **env,
        )


def _v2(leader: str, n: int, token: int = 7, side: int = 0, taker=None) -> V2Fill:
    return V2Fill(
        order_hash=ids.make_id("order", leader, n, uuid.uuid4().hex),
        maker=leader,
        taker=taker,
        side=side,
        token_id=token,
        maker_amount_filled=1_000_000 * (n % 5 + 1),
        taker_amount_filled=2_000_000 * (n % 5 + 1),
    )


def _v1(leader: str, n: int, token: int = 9) -> V1Fill:
    return V1Fill(
        order_hash=ids.make_id("order1", leader, n, uuid.uuid4().hex),
        maker=leader,
        taker=None,
        maker_asset_id=0,
        taker_asset_id=token,
        maker_amount_filled=3_000_000,
        taker_amount_filled=6_000_000,
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metric_values(port: int) -> dict[str, float]:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("horus_ingest")
    }
