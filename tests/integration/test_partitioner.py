"""One follower, one partition, whoever produces: our confluent producer and aiokafka (Faust's producer)
must put every key on the same partition (architecture notes 2b.1: librdkafka's default partitioner
does not)."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka.admin import NewTopic

from horus.kafka.admin import wait_for_leaders
from horus.kafka.client import PARTITIONER, flush_or_raise, make_admin, make_producer, produce_reliably

pytestmark = pytest.mark.integration

PARTITIONS = 12
# key -> partition of 12, as Java's and aiokafka's murmur2 partitioner place them (pinned: a change in
# any client that moves these would silently re-home followers)
PINNED = {
    "0x9cd229b8f53e7e6c9039633b70141b88076ca858": 8,
    "0x1b4831c3219dc93477e1e5c22d7db19fe479d74d": 3,
    "0xb5509a84201041737ae953e110652c70ce481307": 1,
    "0x1111111111111111111111111111111111111111": 3,
}


def random_addresses(n: int, seed: int = 20260824) -> list[str]:
    rng = random.Random(seed)
    return sorted({"0x" + rng.randbytes(20).hex() for _ in range(n)} | set(PINNED))


@pytest.fixture(scope="module")
def topic(settings):
    name = settings.topic("partitioner.check")
    admin = make_admin(settings)  # keep a reference until the future resolves
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])[name].result(30)
    wait_for_leaders(settings, [name])
    yield name
    for future in admin.delete_topics([name]).values():
        future.result(30)


def confluent_partitions(settings, topic: str, keys: list[str], **overrides) -> dict[str, int]:
    placed: dict[str, int] = {}

    def on_delivery(err, msg):
        assert err is None, err
        placed[msg.key().decode()] = msg.partition()

    producer = make_producer(settings, **overrides)
    for key in keys:
        produce_reliably(producer, topic, b"x", key=key, on_delivery=on_delivery)
    flush_or_raise(producer)
    return placed


def aiokafka_partitions(settings, topic: str, keys: list[str]) -> dict[str, int]:
    async def run() -> dict[str, int]:
        # Faust's producer: aiokafka with its default partitioner (Faust's producer_partitioner is unset)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            futures = [await producer.send(topic, b"x", key=key.encode()) for key in keys]
            metadata = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return {key: md.partition for key, md in zip(keys, metadata)}

    return asyncio.run(run())


def test_confluent_murmur2_random_matches_aiokafka_for_1000_followers(settings, topic):
    keys = random_addresses(1000)
    ours = confluent_partitions(settings, topic, keys)
    faust_side = aiokafka_partitions(settings, topic, keys)
    assert len(ours) == len(faust_side) == len(keys)
    disagree = {k: (ours[k], faust_side[k]) for k in keys if ours[k] != faust_side[k]}
    assert not disagree, (
        f"{len(disagree)} of {len(keys)} keys on different partitions, e.g. {list(disagree.items())[:3]}"
    )
    assert {k: ours[k] for k in PINNED} == PINNED
    assert len(set(ours.values())) == PARTITIONS  # the keys spread over every partition
    assert PARTITIONER == "murmur2_random"  # and make_producer (what every stage uses) sets it


def test_librdkafka_default_partitioner_would_not_agree(settings, topic):
    """The check above can fail: without partitioner=murmur2_random most followers move."""
    keys = random_addresses(1000)
    default = confluent_partitions(settings, topic, keys, partitioner="consistent_random")
    faust_side = aiokafka_partitions(settings, topic, keys)
    agree = sum(default[k] == faust_side[k] for k in keys)
    assert agree < len(keys) * 0.25, f"default partitioner agreed on {agree}/{len(keys)} keys"
