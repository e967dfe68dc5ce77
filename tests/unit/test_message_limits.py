"""What a stage writes about one input must fit in one Kafka message, whatever the input: librdkafka refuses to
produce a message larger than its message.max.bytes (MSG_SIZE_TOO_LARGE, raised by produce()), and a stage that
cannot write its output or its dead letter stops on that input after every restart. Found by the hostile-input
volume test (tests/integration/test_hostile_volume.py)."""

from __future__ import annotations

import pytest

from horus.codec import default_codec
from horus.domain import ids
from horus.domain.events import envelope

NOW = 1_800_000_000_000_000
TOPIC = "t0123abcd.x01234f.config.changes"
ABOVE_ANY_REAL_KEY = 600_000


def producible(key: bytes | str | None, value: bytes) -> bool:
    """What librdkafka's produce() accepts, asked of a real (unconnected) producer: it checks the size locally."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer({"bootstrap.servers": "127.0.0.1:9", "log_level": 0})
    try:
        producer.produce("t", value=value, key=key)
        return True
    except KafkaException:
        return False
    finally:
        producer.purge()


@pytest.mark.parametrize("key_bytes", [0, 300, ABOVE_ANY_REAL_KEY, 999_800])
def test_the_dead_letter_of_any_message_the_broker_took_can_be_produced(key_bytes):
    """A hostile message just under the limit with most of it in its key: its dead letter copies key and bytes and
    adds an envelope and the error, so without a bound on the key it is too large and the parking stage dies."""
    from horus.kafka.dead_letter import dead_letter_record

    key, original = b"k" * key_bytes, b"\xc3" * (999_800 - key_bytes)
    assert producible(key, original)
    error = ValueError("\U0001f4a5" * 5_000)  # the longest error a dead letter keeps, in 4-byte characters
    record = dead_letter_record(
        topic=TOPIC, partition=3, offset=42, key=key, original=original, error=error, stage="execute-config", now_us=NOW
    )
    value = default_codec().encode("DeadLetter", record)
    assert producible(TOPIC, value), f"a dead letter of {len(value)} bytes cannot be produced"
    assert record["original"] == original[: len(record["original"])] and record["key"] == key[: len(record["key"])]
    if len(record["key"]) < key_bytes:
        assert f"key cut from {key_bytes}" in record["error"]
    else:
        assert record["key"] == key


def test_a_key_of_real_size_is_kept_whole():
    from horus.kafka.dead_letter import dead_letter_record

    key = "0x" + "ab" * 20
    record = dead_letter_record(
        topic=TOPIC, partition=0, offset=1, key=key, original=b"x", error="bad", stage="decode", now_us=NOW
    )
    assert record["key"] == key.encode() and record["error"] == "bad"


def settle_runtime():
    from horus.domain.settle import settle
    from horus.settings import Settings
    from horus.topics import EXECUTION_RESULTS, SETTLEMENT_EVENTS
    from streams.runtime import Runtime, StageSpec

    sent: list[tuple[str, object, bytes]] = []

    class Producer:  # records what the stage produces, refusing what librdkafka would refuse
        def produce(self, topic, value=None, key=None, on_delivery=None, headers=None):
            if not producible(key, value):
                from confluent_kafka import KafkaError, KafkaException

                raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
            sent.append((topic, key, value))

        def poll(self, timeout=0):
            return 0

        def flush(self, timeout=None):
            return 0

    runtime = Runtime(Settings(topic_prefix="u."), producer=Producer())
    spec = StageSpec(
        name="settle",
        source=EXECUTION_RESULTS,
        input_type="ExecutionResult",
        sink=SETTLEMENT_EVENTS,
        output_type="SettlementEvent",
        fn=settle,
    )
    return runtime, spec, sent


def result(follower: str, n: int) -> dict:
    intent = ids.make_id("intent", n)
    return {
        "envelope": envelope(ids.result_id(intent, 1), "execute", NOW),
        "intent_id": intent,
        "follow_id": "f",
        "follower": follower,
        "leader_fill_id": "lf",
        "status": "FILLED",
        "order_hash": None,
        "filled_shares_e6": 1,
        "filled_collateral_e6": 1,
        "avg_price": "0.5",
        "fee_e6": 0,
        "error": None,
        "attempts": 1,
    }


def test_an_input_whose_output_would_be_too_large_is_parked_and_the_stage_goes_on():
    """settle copies a result's follower into its settlement's value and key: a result with a 520 KB follower (a
    message of 520 KB) makes a settlement of over 1 MB. The result is parked, the next one settled."""
    codec = default_codec()
    runtime, spec, sent = settle_runtime()
    huge = codec.encode("ExecutionResult", result("f" * 520_000, 1))
    fine = codec.encode("ExecutionResult", result("0x" + "ab" * 20, 2))
    produced = runtime.process(
        spec, [("u.execution.results", 0, 7, b"k", huge), ("u.execution.results", 0, 8, b"k", fine)], now_us=NOW
    )
    assert produced == 1
    settlements = [codec.decode(v)[1] for t, _, v in sent if t == "u.settlement.events"]
    assert [s["intent_id"] for s in settlements] == [ids.make_id("intent", 2)]
    letters = [codec.decode(v)[1] for t, _, v in sent if t == "u.dead.letters"]
    assert [(d["source_offset"], d["stage"], d["original"]) for d in letters] == [(7, "settle", huge)]
    assert "too large" in letters[0]["error"]
