"""Shared by the pipeline and decide integration tests: produce to and read from private topics, run
`horus worker` subprocesses, wait for a stable consumer group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from horus.codec import default_codec
from horus.domain.config import config_key
from horus.domain.control import control_key
from horus.kafka.admin import create_topics
from horus.kafka.client import (
    assign_from_beginning,
    flush_or_raise,
    make_admin,
    make_consumer,
    make_producer,
    poll_batch,
    produce_reliably,
)
from horus.settings import Settings
from horus.topics import CONFIG_CHANGES, CONTROL_COMMANDS, LEADER_FILLS

REPO = Path(__file__).resolve().parents[2]
WAIT = 90.0  # seconds: generous for a loaded 2-core CI machine; a healthy run takes a few


class Producer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = make_producer(settings)
        self.codec = default_codec()
        self.placed: list[
            tuple[str, int, int] | None
        ] = []  # in send order (delivery reports are not, across partitions)

    def send(self, spec, record: dict | None = None, key: str | bytes | None = None, raw: bytes | None = None):
        value = raw if raw is not None else self.codec.encode(spec.event_type, record)
        slot = len(self.placed)
        self.placed.append(None)

        def on_delivery(err, msg):
            assert err is None, err
            self.placed[slot] = (msg.topic(), msg.partition(), msg.offset())

        produce_reliably(self.producer, self.settings.topic(spec.name), value, key=key, on_delivery=on_delivery)

    def configs(self, changes):
        for change in changes:
            self.send(CONFIG_CHANGES, change, key=config_key(change["entity"], change["entity_id"]))
        self.flush()

    def control(self, *commands):
        for command in commands:
            self.send(CONTROL_COMMANDS, command, key=control_key(command["scope"], command["target"]))
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

    def __init__(self, settings: Settings, stages: str, log_path: Path, runner: str = "confluent") -> None:
        env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it until stop() closes it
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "horus.cli.main",
                "worker",
                "--stages",
                stages,
                "--loglevel",
                "info",
                "--runner",
                runner,
            ],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

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


def wait_until(predicate, timeout: float, what: str, every: float = 0.2):
    """predicate()'s first truthy value, polled until `timeout` (AssertionError naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


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
        if (
            group is not None
            and group.state == ConsumerGroupState.STABLE
            and len(group.members) == members
            and all(m.assignment and m.assignment.topic_partitions for m in group.members)
        ):
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
    new = settings.model_copy(
        update={"topic_prefix": f"{settings.topic_prefix}{tag}{run}.", "app_id": f"{settings.app_id}-{tag}{run}"}
    )
    create_topics(new)
    return new
