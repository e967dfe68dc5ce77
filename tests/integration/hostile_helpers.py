"""Hostile records for the bad-input-at-volume test (tests/integration/test_hostile_volume.py).

Every kind of record an attacker with broker access (or a broken producer) could write, on every topic the worker
and the projections consume, each with what must become of it, written down per kind before anything runs:
- `parked`: the worker stages that must park it in dead.letters with its bytes (their dead-letter `stage`);
- `projection`: PARKED (a `dead_letters` row with its bytes) or the table its row must land in;
- `decision`: for a leader fill or candidate that decodes, the SKIP reason decide must give its candidate;
- `result`: for a forged COPY that reaches the ledger, the status (and a word of the error) it must end with;
- `settlement`: for a result that decodes, the settlement settle must derive from it.

Records are generated from a seeded RNG, so a failing run can be repeated; `flood(world, n, seed)` spreads n
records over the kinds (heavy ones, hundreds of KB each, are capped). Nothing here talks to Kafka or Postgres.
Every hostile record carries at least one value that disqualifies it from a COPY, so the one venue order of a run
is the valid fill's: an order for anything else is a defect the test reports.
"""

from __future__ import annotations

import copy
import io
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

import fastavro

from horus.codec import MAGIC, default_codec
from horus.domain import ids
from horus.domain.config import config_key
from horus.domain.events import envelope
from horus.topics import (
    CONFIG_CHANGES,
    CONTROL_COMMANDS,
    COPY_CANDIDATES,
    COPY_DECISIONS,
    DEAD_LETTERS,
    EXECUTION_RESULTS,
    LEADER_FILLS,
    SETTLEMENT_EVENTS,
    TopicSpec,
)

CODEC = default_codec()
PARKED = "dead_letters"  # the projection parks it: a row in the dead_letters table
FORGED = "forged dead letter"  # a well-formed DeadLetter: a dead_letters row about the source it names
HOUR_US = 3_600 * 1_000_000
DAY_US = 24 * HOUR_US
BEYOND_CALENDAR_US = 2**62  # ~146,000 years after 1970: no datetime holds it
HUGE = 50_000  # characters of a "huge" string: far beyond any id or index entry, far below the broker's 1 MB
# a message just under the producer's limit (librdkafka message.max.bytes, 1,000,000): anything a stage adds
# to it (a dead letter's envelope and error) must not push it over
MAX_MESSAGE = 999_800

CONFIG_TAILS = frozenset({"plan-config", "decide-config", "execute-config"})
CONTROL_TAILS = frozenset({"decide-control", "execute-control"})
NONE: frozenset[str] = frozenset()
# who in the worker parks a record of a topic: one that does not decode / is of another record type / is null
UNDECODABLE = {
    LEADER_FILLS.name: frozenset({"decode"}),
    COPY_CANDIDATES.name: frozenset({"decode"}),
    COPY_DECISIONS.name: frozenset({"execute"}),
    EXECUTION_RESULTS.name: frozenset({"decode"}),
    CONFIG_CHANGES.name: CONFIG_TAILS,
    CONTROL_COMMANDS.name: CONTROL_TAILS,
    SETTLEMENT_EVENTS.name: NONE,
    DEAD_LETTERS.name: NONE,
}
WRONG_TYPE = {
    **UNDECODABLE,
    LEADER_FILLS.name: frozenset({"plan"}),
    COPY_CANDIDATES.name: frozenset({"decide"}),
    EXECUTION_RESULTS.name: frozenset({"settle"}),
}
# a null value on the compacted topics is a tombstone: the tails drop the key's state (a no-op for an unknown key)
NULL = {**UNDECODABLE, CONFIG_CHANGES.name: NONE, CONTROL_COMMANDS.name: NONE}
TOPICS = (
    LEADER_FILLS,
    COPY_CANDIDATES,
    COPY_DECISIONS,
    EXECUTION_RESULTS,
    CONFIG_CHANGES,
    CONTROL_COMMANDS,
    SETTLEMENT_EVENTS,
    DEAD_LETTERS,
)
TABLE = {
    LEADER_FILLS.name: "leader_fills",
    COPY_CANDIDATES.name: "copy_candidates",
    COPY_DECISIONS.name: "copy_decisions",
    EXECUTION_RESULTS.name: "execution_results",
    SETTLEMENT_EVENTS.name: "settlement_events",
    CONTROL_COMMANDS.name: "control_switches",
    DEAD_LETTERS.name: PARKED,
}


@dataclass(frozen=True)
class World:
    """What the hostile records are aimed at: the run's one real follow (leader -> follower) and market."""

    run: str  # makes every id of the run unique
    leader: str
    follower: str  # has an account (keys in the credentials store)
    follow_id: str
    token: str
    condition: str
    now_us: int
    unknown_tokens: tuple[str, ...] = ("1" * 70, "2" * 77, "31337")  # well-formed, listed by no market


@dataclass(frozen=True)
class Expect:
    parked: frozenset[str] = NONE
    projection: str = PARKED
    decision: tuple[str, str] | None = None  # (candidate id, SKIP reason code)
    result: tuple[str, str, str] | None = None  # (intent id, status, a word of its error)
    settlement: str | None = None


@dataclass
class Hostile:
    kind: str  # "<topic>/<what>"
    topic: TopicSpec
    key: bytes | None
    value: bytes | None
    expect: Expect
    position: tuple[int, int] | None = None  # (partition, offset) once produced

    @property
    def original(self) -> bytes:
        """What a dead letter of it must carry: its bytes (b"" for a null value)."""
        return self.value if self.value is not None else b""


@dataclass(frozen=True)
class Kind:
    topic: TopicSpec
    name: str
    make: Callable[[World, random.Random, int], Hostile]
    cap: int | None  # heavy records: at most this many per run


KINDS: list[Kind] = []


def kind(topic: TopicSpec, name: str, cap: int | None = None):
    def register(make: Callable[[World, random.Random, int], tuple]) -> Callable:
        def build(w: World, rng: random.Random, n: int) -> Hostile:
            key, value, expect = make(w, rng, n)
            return Hostile(f"{topic.name}/{name}", topic, _bytes(key), value, expect)

        KINDS.append(Kind(topic, name, build, cap))
        return make

    return register


def _bytes(key: bytes | str | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key


# ------------------------------------------------------------------------------------------------ encoding
def encode(name: str, record: dict) -> bytes:
    return CODEC.encode(name, record)


def decodable(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        CODEC.decode(value)
        return True
    except Exception:  # noqa: BLE001 - any refusal is what we want to know
        return False


def with_symbol(name: str, record: dict, field_name: str, symbol: str) -> bytes:
    """`record` framed with the real fingerprint of `name`, with `symbol` in enum field `field_name`: UNRECOGNIZED
    (the reader-only default, which the codec's encoder refuses) or a symbol of a newer writer (an enum index past
    the reader's symbols)."""
    registry = CODEC.registry
    schema = copy.deepcopy(registry.self_contained(name))
    for f in schema["fields"]:
        enum = (
            f["type"]
            if isinstance(f["type"], dict)
            else next((t for t in f["type"] if isinstance(t, dict)), None)
            if isinstance(f["type"], list)
            else None
        )
        if f["name"] == field_name and enum is not None and symbol not in enum["symbols"]:
            enum["symbols"] = [*enum["symbols"], symbol]
    buffer = io.BytesIO()
    buffer.write(MAGIC + registry.fingerprint_of(name))
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), {**record, field_name: symbol})
    return buffer.getvalue()


def undecodable(make: Callable[[], bytes], fallback: bytes) -> bytes:
    """The first of up to 50 tries of `make` the codec refuses (a cut or flip may leave a readable record)."""
    for _ in range(50):
        value = make()
        if not decodable(value):
            return value
    assert not decodable(fallback)
    return fallback


def text(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    """Random characters: incompressible, so a huge one stays huge in a Postgres index too."""
    return "".join(rng.choices(alphabet, k=n))


def fake_address(w: World, n: int) -> str:
    return "0x" + ids.make_id("hostile-address", w.run, n)[:40]


# ------------------------------------------------------------------------------------------------ bases
def fill_record(w: World, n: int, **change) -> dict:
    """A leader fill by the followed leader on the real market: what `change` makes hostile."""
    tx = "0x" + ids.make_id("hostile-tx", w.run, n)
    record = {
        "envelope": envelope(ids.make_id("hostile-fill", w.run, n), "hostile", w.now_us),
        "leader": w.leader,
        "exchange": "0x" + "0e" * 20,
        "tx_hash": tx,
        "block_number": 1000 + n,
        "log_index": 0,
        "token_id": w.token,
        "condition_id": w.condition,
        "side": "BUY",
        "shares_e6": 20_000_000,
        "collateral_e6": 10_000_000,
        "price": "0.5",
        "fee_e6": 0,
        "role": "TAKER",
        "order_hashes": [],
    }
    return _changed(record, change)


def candidate_record(w: World, n: int, **change) -> dict:
    fill_id = ids.make_id("hostile-fill-of-candidate", w.run, n)
    follow_id = change.pop("follow_id", w.follow_id)
    record = {
        "envelope": envelope(ids.candidate_id(fill_id, follow_id), "plan", w.now_us, causation_id=fill_id),
        "leader_fill_id": fill_id,
        "follow_id": follow_id,
        "follower": w.follower,
        "leader": w.leader,
        "token_id": w.token,
        "side": "BUY",
        "leader_shares_e6": 20_000_000,
        "leader_collateral_e6": 10_000_000,
        "leader_price": "0.5",
        "condition_id": w.condition,
    }
    return _changed(record, change)


def decision_record(w: World, n: int, *, follower: str, **change) -> dict:
    """A COPY as decide writes it, for a follow of its own (intent id right unless `change` says otherwise)."""
    fill_id = ids.make_id("hostile-fill-of-decision", w.run, n)
    follow_id = f"hostile-follow-{w.run}-{n}"
    candidate = ids.candidate_id(fill_id, follow_id)
    record = {
        "envelope": envelope(ids.decision_id(candidate), "decide", w.now_us, causation_id=candidate),
        "candidate_id": candidate,
        "follow_id": follow_id,
        "follower": follower,
        "leader_fill_id": fill_id,
        "action": "COPY",
        "intent_id": ids.intent_id(follow_id, fill_id),
        "token_id": w.token,
        "side": "BUY",
        "size_e6": 10_000_000,
        "worst_price": "0.55",
        "order_type": "FAK",
        "expires_at_us": w.now_us + 600 * 1_000_000,
        "reason_code": None,
        "reason_detail": None,
        "leader": w.leader,
        "condition_id": w.condition,
        "reserved_e6": 0,
        "leader_shares_e6": 20_000_000,
        "inputs": None,
    }
    return _changed(record, change)


def result_record(w: World, n: int, *, follower: str, **change) -> dict:
    intent = ids.make_id("hostile-intent", w.run, n)
    record = {
        "envelope": envelope(ids.result_id(intent, 1), "execute", w.now_us),
        "intent_id": intent,
        "follow_id": f"hostile-follow-{w.run}-{n}",
        "follower": follower,
        "leader_fill_id": ids.make_id("hostile-fill-of-result", w.run, n),
        "status": "FILLED",
        "order_hash": "0x" + ids.make_id("hostile-order", w.run, n),
        "filled_shares_e6": 1_000_000,
        "filled_collateral_e6": 500_000,
        "avg_price": "0.5",
        "fee_e6": 0,
        "error": None,
        "attempts": 1,
    }
    return _changed(record, change)


def settlement_record(w: World, n: int, **change) -> dict:
    record = {
        "envelope": envelope(ids.make_id("hostile-settlement", w.run, n), "settle", w.now_us),
        "follower": fake_address(w, n),
        "intent_id": ids.make_id("hostile-intent", w.run, n),
        "kind": "NOT_REQUIRED",
        "amount_e6": 0,
        "token_id": None,
        "tx_hash": None,
        "debt_id": None,
    }
    return _changed(record, change)


def config_record(
    w: World, n: int, entity: str = "FOLLOW", op: str = "UPSERT", body: str | None = None, entity_id: str | None = None
) -> dict:
    entity_id = f"hostile-{w.run}-{n}" if entity_id is None else entity_id
    return {
        "envelope": envelope(ids.make_id("hostile-config", w.run, n), "attacker", w.now_us),
        "entity": entity,
        "entity_id": entity_id,
        "op": op,
        "body": body,
    }


def follow_body(w: World, n: int, **change) -> str:
    """A FOLLOW body between two addresses nobody follows (never the real leader: a follow of it would add a
    candidate to the valid fill)."""
    body = {
        "follow_id": f"hostile-{w.run}-{n}",
        "follower": fake_address(w, 2 * n),
        "leader": fake_address(w, 2 * n + 1),
        "sizing": {"mode": "fixed", "amount": "5"},
    }
    return json.dumps({**body, **change})


def control_record(w: World, n: int, scope: str, command: str, target: str | None) -> dict:
    return {
        "envelope": envelope(ids.make_id("hostile-control", w.run, n), "attacker", w.now_us),
        "scope": scope,
        "target": target,
        "command": command,
        "reason": "hostile",
        "issued_by": "attacker",
    }


def dead_letter_record(w: World, n: int, **change) -> dict:
    record = {
        "envelope": envelope(ids.make_id("hostile-dead-letter", w.run, n), "attacker", w.now_us),
        "source_topic": f"forged.{w.run}",
        "source_partition": 0,
        "source_offset": n,
        "key": b"forged",
        "original": b"forged bytes",
        "error": "forged",
        "stage": "forged",
    }
    return _changed(record, change)


def retraction_record(w: World, n: int, **change) -> dict:
    record = {
        "envelope": envelope(ids.make_id("hostile-retraction", w.run, n), "hostile", w.now_us),
        "leader_fill_id": ids.make_id("hostile-fill", w.run, n),
        "leader": w.leader,
        "tx_hash": "0x" + ids.make_id("hostile-tx", w.run, n),
        "block_number": 1000 + n,
        "reason": "reorg",
    }
    return _changed(record, change)


def _changed(record: dict, change: dict) -> dict:
    for name, value in change.items():
        if name.startswith("envelope."):
            record["envelope"] = {**record["envelope"], name.split(".", 1)[1]: value}
        else:
            record[name] = value
    return record


# a valid record of each type, by the type name (what the topic-generic kinds corrupt or misplace)
def base_record(w: World, n: int, name: str) -> dict:
    return {
        "LeaderFill": lambda: fill_record(w, n, token_id=w.unknown_tokens[0]),
        "CopyCandidate": lambda: candidate_record(w, n, follow_id=f"hostile-{w.run}-{n}"),
        "CopyDecision": lambda: decision_record(w, n, follower=fake_address(w, n)),
        "ExecutionResult": lambda: result_record(w, n, follower=fake_address(w, n)),
        "SettlementEvent": lambda: settlement_record(w, n),
        "ConfigChange": lambda: config_record(w, n, body=follow_body(w, n)),
        "ControlCommand": lambda: control_record(w, n, "MARKET", "PAUSE", f"hostile-market-{w.run}-{n}"),
        "DeadLetter": lambda: dead_letter_record(w, n),
        "LeaderFillRetracted": lambda: retraction_record(w, n),
    }[name]()


# records of another type, placed on each topic: decodable, but not what its readers expect
MISPLACED = {
    LEADER_FILLS.name: ("CopyDecision", "ConfigChange", "DeadLetter"),
    COPY_CANDIDATES.name: ("LeaderFill", "CopyDecision"),
    COPY_DECISIONS.name: ("CopyCandidate", "ExecutionResult"),
    EXECUTION_RESULTS.name: ("SettlementEvent", "CopyDecision"),
    CONFIG_CHANGES.name: ("ControlCommand", "LeaderFill"),
    CONTROL_COMMANDS.name: ("ConfigChange", "DeadLetter"),
    SETTLEMENT_EVENTS.name: ("ExecutionResult",),
    DEAD_LETTERS.name: ("LeaderFill", "SettlementEvent"),
}


# ------------------------------------------------------------------------------------------------ every topic
# a catalogue of kinds, one `kind(...)` registration after another: long, not complex to read
def _generic(topic: TopicSpec) -> None:  # noqa: C901
    """Kinds every topic gets: bytes no reader can decode, nulls, and valid records of another type."""
    name = topic.name
    own = topic.event_type
    bad = UNDECODABLE[name]

    def valid(w: World, n: int) -> bytes:
        return encode(own, base_record(w, n, own))

    def key(w: World, n: int) -> bytes | None:
        if n % 5 == 0 and not topic.compacted:  # some without a key (a compacted topic refuses those itself)
            return None
        return f"hostile-key-{n}".encode()

    @kind(topic, "random-bytes")
    def _(w, rng, n):
        return key(w, n), undecodable(lambda: rng.randbytes(rng.randint(1, 2048)), b"\x00"), Expect(bad)

    @kind(topic, "empty")
    def _(w, rng, n):
        return key(w, n), b"", Expect(bad)

    @kind(topic, "null")
    def _(w, rng, n):
        return f"hostile-tombstone-{w.run}-{n}", None, Expect(NULL[name])

    @kind(topic, "truncated")
    def _(w, rng, n):
        data = valid(w, n)
        return key(w, n), undecodable(lambda: data[: rng.randrange(1, len(data))], data[:5]), Expect(bad)

    @kind(topic, "header-bit-flipped")
    def _(w, rng, n):
        data = valid(w, n)

        def flip():
            i = rng.randrange(10)  # magic or fingerprint
            return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]

        return key(w, n), undecodable(flip, b"\xc2" + data[1:]), Expect(bad)

    @kind(topic, "body-bit-flipped")
    def _(w, rng, n):
        data = valid(w, n)

        def flip():
            i = rng.randrange(10, len(data))
            return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]

        return key(w, n), undecodable(flip, data[:-1]), Expect(bad)

    @kind(topic, "trailing-garbage")
    def _(w, rng, n):
        return key(w, n), valid(w, n) + rng.randbytes(rng.randint(1, 64)), Expect(bad)

    @kind(topic, "unknown-schema")
    def _(w, rng, n):
        data = valid(w, n)
        return key(w, n), undecodable(lambda: MAGIC + rng.randbytes(8) + data[10:], b"\xc3\x01"), Expect(bad)

    @kind(topic, "json-text")
    def _(w, rng, n):
        return key(w, n), json.dumps(base_record(w, n, own), default=str).encode(), Expect(bad)

    @kind(topic, "wrong-type")
    def _(w, rng, n):
        other = MISPLACED[name][n % len(MISPLACED[name])]
        return key(w, n), encode(other, base_record(w, n, other)), Expect(WRONG_TYPE[name])

    @kind(topic, "huge-key", cap=1)
    def _(w, rng, n):  # a dead letter copies the key too: it must still fit in one message
        huge_key = rng.randbytes(600_000)
        return huge_key, rng.randbytes(MAX_MESSAGE - len(huge_key)), Expect(bad)

    @kind(topic, "max-size-value", cap=1)
    def _(w, rng, n):
        return key(w, n), b"\xc3\x01" + rng.randbytes(MAX_MESSAGE - 20), Expect(bad)


for _topic in TOPICS:
    _generic(_topic)


# ------------------------------------------------------------------------------------------------ leader.fills
def _fill_kinds() -> None:
    """Fills by the followed leader: plan makes a candidate of each, decide must SKIP it with the reason named."""

    def skipped(reason: str, projection: str = "leader_fills", **change):
        def make(w: World, rng: random.Random, n: int):
            values = {k: (v(w, rng, n) if callable(v) else v) for k, v in change.items()}
            record = fill_record(w, n, **values)
            candidate = ids.candidate_id(record["envelope"]["event_id"], w.follow_id)
            return w.leader, encode("LeaderFill", record), Expect(projection=projection, decision=(candidate, reason))

        return make

    pick = lambda *options: lambda w, rng, n: options[n % len(options)]  # noqa: E731
    unknown_token = lambda w, rng, n: w.unknown_tokens[n % len(w.unknown_tokens)]  # noqa: E731
    invalid = "CANDIDATE_INVALID"
    kind(LEADER_FILLS, "negative-shares")(skipped(invalid, shares_e6=lambda w, rng, n: -rng.randint(1, 2**62)))
    kind(LEADER_FILLS, "zero-shares")(skipped(invalid, shares_e6=0))
    kind(LEADER_FILLS, "negative-collateral")(skipped(invalid, collateral_e6=-1))
    kind(LEADER_FILLS, "price-above-one")(skipped(invalid, price=pick("1.5", "1.0000001", "1e9", "2")))
    kind(LEADER_FILLS, "price-not-positive")(skipped(invalid, price=pick("0", "-0.5", "-0", "0.000")))
    kind(LEADER_FILLS, "price-not-a-number")(
        skipped(invalid, PARKED, price=pick("abc", "NaN", "sNaN", "Infinity", "-Infinity", "", " ", "0x1"))
    )
    kind(LEADER_FILLS, "dated-in-the-future")(
        skipped(
            "FILL_IN_FUTURE",
            **{"envelope.occurred_at_us": lambda w, rng, n: w.now_us + rng.randint(DAY_US, 80 * 365 * DAY_US)},
        )
    )
    kind(LEADER_FILLS, "dated-beyond-the-calendar")(
        skipped("FILL_IN_FUTURE", PARKED, **{"envelope.occurred_at_us": pick(BEYOND_CALENDAR_US, 2**63 - 1)})
    )
    kind(LEADER_FILLS, "dated-in-the-past")(
        skipped("FILL_TOO_OLD", **{"envelope.occurred_at_us": lambda w, rng, n: rng.randint(0, 1_577_836_800_000_000)})
    )
    kind(LEADER_FILLS, "dated-before-the-calendar")(
        skipped("FILL_TOO_OLD", PARKED, **{"envelope.occurred_at_us": pick(-BEYOND_CALENDAR_US, -(2**63))})
    )
    kind(LEADER_FILLS, "unknown-token")(skipped("MARKET_UNKNOWN", token_id=unknown_token))
    kind(LEADER_FILLS, "malformed-token")(
        skipped("MARKET_UNKNOWN", token_id=pick("../../admin", "-1", "0x71", "1e5", "\u0663\u0663", " 12", "9" * 79))
    )
    kind(LEADER_FILLS, "empty-token")(skipped("MARKET_UNKNOWN", PARKED, token_id=""))
    kind(LEADER_FILLS, "nul-in-token")(skipped("MARKET_UNKNOWN", PARKED, token_id=pick("\x00", "7\x007")))
    # values plan does not copy, each with a disqualifying token
    kind(LEADER_FILLS, "nul-in-exchange")(skipped("MARKET_UNKNOWN", PARKED, token_id=unknown_token, exchange="0x\x00"))
    kind(LEADER_FILLS, "negative-block")(skipped("MARKET_UNKNOWN", PARKED, token_id=unknown_token, block_number=-1))
    kind(LEADER_FILLS, "many-order-hashes", cap=3)(
        skipped(
            "MARKET_UNKNOWN",
            token_id=unknown_token,
            order_hashes=lambda w, rng, n: [f"0x{i:064x}" for i in range(5000)],
        )
    )
    kind(LEADER_FILLS, "huge-exchange", cap=2)(
        skipped("MARKET_UNKNOWN", token_id=unknown_token, exchange=lambda w, rng, n: text(rng, HUGE))
    )

    @kind(LEADER_FILLS, "long-token")  # longer than any id (plan's bound): parked before a candidate is made
    def _(w, rng, n):
        record = fill_record(w, n, token_id=text(rng, rng.randint(257, 2000), string.digits))
        return w.leader, encode("LeaderFill", record), Expect(frozenset({"plan"}), "leader_fills")

    @kind(LEADER_FILLS, "long-event-id")
    def _(w, rng, n):
        record = fill_record(w, n, **{"envelope.event_id": f"{n}-" + text(rng, rng.randint(257, 2000))})
        return w.leader, encode("LeaderFill", record), Expect(frozenset({"plan"}), "leader_fills")

    @kind(LEADER_FILLS, "huge-token", cap=2)  # and too large for the token_id index
    def _(w, rng, n):
        record = fill_record(w, n, token_id=text(rng, HUGE, string.digits))
        return w.leader, encode("LeaderFill", record), Expect(frozenset({"plan"}), PARKED)

    @kind(LEADER_FILLS, "unknown-side")
    def _(w, rng, n):
        symbol = ("UNRECOGNIZED", "SHORT")[n % 2]
        return w.leader, with_symbol("LeaderFill", fill_record(w, n), "side", symbol), Expect(frozenset({"decode"}))

    @kind(LEADER_FILLS, "unknown-role")
    def _(w, rng, n):
        return (
            w.leader,
            with_symbol("LeaderFill", fill_record(w, n), "role", "UNRECOGNIZED"),
            Expect(frozenset({"decode"})),
        )

    @kind(LEADER_FILLS, "unfollowed-leader")  # nobody follows it: no candidate (and nothing to park)
    def _(w, rng, n):
        return (
            "x",
            encode("LeaderFill", fill_record(w, n, leader=fake_address(w, n))),
            Expect(projection="leader_fills"),
        )

    @kind(LEADER_FILLS, "empty-leader")
    def _(w, rng, n):
        return "", encode("LeaderFill", fill_record(w, n, leader="")), Expect(projection=PARKED)

    @kind(LEADER_FILLS, "retraction-of-nothing")  # a real record type of the topic: plan reads past it
    def _(w, rng, n):
        record = retraction_record(w, n, leader_fill_id=ids.make_id("no-such-fill", w.run, n))
        return w.leader, encode("LeaderFillRetracted", record), Expect(projection="leader_fill_retractions")

    @kind(LEADER_FILLS, "retraction-negative-block")
    def _(w, rng, n):
        return w.leader, encode("LeaderFillRetracted", retraction_record(w, n, block_number=-7)), Expect()


_fill_kinds()


# ------------------------------------------------------------------------------------------------ copy.candidates
def _candidate_kinds() -> None:
    def skipped(reason: str, projection: str = "copy_candidates", **change):
        def make(w: World, rng: random.Random, n: int):
            values = {k: (v(w, rng, n) if callable(v) else v) for k, v in change.items()}
            record = candidate_record(w, n, **values)
            expect = Expect(projection=projection, decision=(record["envelope"]["event_id"], reason))
            return record["follower"], encode("CopyCandidate", record), expect

        return make

    pick = lambda *options: lambda w, rng, n: options[n % len(options)]  # noqa: E731
    kind(COPY_CANDIDATES, "unknown-follow")(
        skipped("FOLLOW_UNKNOWN", follow_id=lambda w, rng, n: f"nobody-{w.run}-{n}")
    )
    kind(COPY_CANDIDATES, "follow-of-another-leader")(
        skipped("FOLLOW_CHANGED", leader=lambda w, rng, n: fake_address(w, n))
    )
    kind(COPY_CANDIDATES, "follow-of-another-follower")(
        skipped("FOLLOW_CHANGED", follower=lambda w, rng, n: fake_address(w, n))
    )
    kind(COPY_CANDIDATES, "negative-shares")(skipped("CANDIDATE_INVALID", leader_shares_e6=-(2**63)))
    kind(COPY_CANDIDATES, "negative-collateral")(skipped("CANDIDATE_INVALID", leader_collateral_e6=-5))
    kind(COPY_CANDIDATES, "price-outside")(skipped("CANDIDATE_INVALID", leader_price=pick("0", "1.01", "-1", "1E+99")))
    kind(COPY_CANDIDATES, "price-beyond-numeric")(skipped("CANDIDATE_INVALID", PARKED, leader_price="1E+999999"))
    kind(COPY_CANDIDATES, "price-not-a-number")(
        skipped("CANDIDATE_INVALID", PARKED, leader_price=pick("abc", "NaN", "Infinity", ""))
    )
    kind(COPY_CANDIDATES, "dated-in-the-future")(
        skipped(
            "FILL_IN_FUTURE", **{"envelope.occurred_at_us": lambda w, rng, n: w.now_us + rng.randint(HOUR_US, 10**15)}
        )
    )
    kind(COPY_CANDIDATES, "dated-beyond-the-calendar")(
        skipped("FILL_IN_FUTURE", PARKED, **{"envelope.occurred_at_us": 2**63 - 1})
    )
    kind(COPY_CANDIDATES, "dated-in-the-past")(
        skipped("FILL_TOO_OLD", **{"envelope.occurred_at_us": lambda w, rng, n: w.now_us - rng.randint(DAY_US, 10**15)})
    )
    kind(COPY_CANDIDATES, "unknown-token")(
        skipped("MARKET_UNKNOWN", token_id=lambda w, rng, n: w.unknown_tokens[n % len(w.unknown_tokens)])
    )
    kind(COPY_CANDIDATES, "malformed-token")(skipped("MARKET_UNKNOWN", token_id=pick("abc", "", "1" * 78 + "0")))
    kind(COPY_CANDIDATES, "nul-in-token")(skipped("MARKET_UNKNOWN", PARKED, token_id="\x00"))
    kind(COPY_CANDIDATES, "nul-in-condition")(
        skipped("MARKET_UNKNOWN", PARKED, token_id=lambda w, rng, n: w.unknown_tokens[0], condition_id="0x\x00")
    )

    @kind(COPY_CANDIDATES, "long-follow-id")  # no decision can be written for it (decide's bound): parked
    def _(w, rng, n):
        record = candidate_record(w, n, follow_id=f"{n}-" + text(rng, rng.randint(257, 2000)))
        return record["follower"], encode("CopyCandidate", record), Expect(frozenset({"decide"}), "copy_candidates")

    @kind(COPY_CANDIDATES, "huge-follower", cap=2)
    def _(w, rng, n):
        record = candidate_record(w, n, follower=text(rng, HUGE))
        return b"huge", encode("CopyCandidate", record), Expect(frozenset({"decide"}), PARKED)

    @kind(COPY_CANDIDATES, "huge-price", cap=2)
    def _(w, rng, n):
        record = candidate_record(w, n, leader_price="0." + text(rng, HUGE, string.digits))
        return record["follower"], encode("CopyCandidate", record), Expect(frozenset({"decide"}), PARKED)

    @kind(COPY_CANDIDATES, "unknown-side")
    def _(w, rng, n):
        record = candidate_record(w, n, token_id=w.unknown_tokens[0])
        return w.follower, with_symbol("CopyCandidate", record, "side", "UNRECOGNIZED"), Expect(frozenset({"decode"}))


_candidate_kinds()


# ------------------------------------------------------------------------------------------------ copy.decisions
def _decision_kinds() -> None:
    execute = frozenset({"execute"})

    def refused(projection: str = "copy_decisions", real: bool = True, **change):
        """A COPY the executor must park unsent (copy_check): for the real follower, so that anything less than
        a park is an order at the venue."""

        def make(w: World, rng: random.Random, n: int):
            values = {k: (v(w, rng, n) if callable(v) else v) for k, v in change.items()}
            follower = values.pop("follower", w.follower if real else fake_address(w, n))
            record = decision_record(w, n, follower=follower, **values)
            return record["follower"], encode("CopyDecision", record), Expect(execute, projection)

        return make

    pick = lambda *options: lambda w, rng, n: options[n % len(options)]  # noqa: E731
    kind(COPY_DECISIONS, "intent-of-another-fill")(
        refused(intent_id=lambda w, rng, n: ids.intent_id(w.follow_id, ids.make_id("other-fill", w.run, n)))
    )
    kind(COPY_DECISIONS, "intent-missing")(refused(intent_id=None))
    kind(COPY_DECISIONS, "negative-size")(refused(size_e6=lambda w, rng, n: -rng.randint(1, 2**63)))
    kind(COPY_DECISIONS, "zero-size")(refused(size_e6=0))
    kind(COPY_DECISIONS, "absurd-size")(refused(size_e6=2**63 - 1))
    kind(COPY_DECISIONS, "price-outside")(refused(worst_price=pick("0", "1", "1.5", "-0.1", "1E+5")))
    kind(COPY_DECISIONS, "price-not-a-number")(refused(PARKED, worst_price=pick("abc", "NaN", "Infinity", "")))
    kind(COPY_DECISIONS, "price-missing")(refused(worst_price=None))
    kind(COPY_DECISIONS, "nul-in-token")(refused(PARKED, token_id=lambda w, rng, n: w.token + "\x00"))
    kind(COPY_DECISIONS, "nul-in-follow")(refused(PARKED, follow_id=lambda w, rng, n: f"hostile\x00{n}"))
    kind(COPY_DECISIONS, "expiry-beyond-the-calendar")(refused(PARKED, expires_at_us=BEYOND_CALENDAR_US))
    kind(COPY_DECISIONS, "expiry-in-a-month")(refused(expires_at_us=lambda w, rng, n: w.now_us + 30 * DAY_US))
    kind(COPY_DECISIONS, "expiry-before-2020")(refused(expires_at_us=lambda w, rng, n: rng.randint(0, 10**15)))
    kind(COPY_DECISIONS, "dated-before-2020")(refused(**{"envelope.occurred_at_us": 1000}))
    kind(COPY_DECISIONS, "dated-beyond-the-calendar")(refused(PARKED, **{"envelope.produced_at_us": -(2**63)}))
    kind(COPY_DECISIONS, "follower-not-an-address")(
        refused(real=False, follower=pick("nobody", "0xABC", "0X" + "1" * 40))
    )
    kind(COPY_DECISIONS, "token-not-a-number")(refused(token_id=pick("abc", "-1", "", "1" * 79)))
    kind(COPY_DECISIONS, "token-above-uint256")(refused(token_id=str(2**256)))

    @kind(COPY_DECISIONS, "unknown-action")
    def _(w, rng, n):
        record = decision_record(w, n, follower=w.follower)
        return (
            w.follower,
            with_symbol("CopyDecision", record, "action", ("UNRECOGNIZED", "HEDGE")[n % 2]),
            Expect(execute),
        )

    @kind(COPY_DECISIONS, "unknown-order-type")
    def _(w, rng, n):
        record = decision_record(w, n, follower=w.follower)
        return w.follower, with_symbol("CopyDecision", record, "order_type", "UNRECOGNIZED"), Expect(execute)

    @kind(COPY_DECISIONS, "unknown-follower")  # executable as written, but no account: rejected, never sent
    def _(w, rng, n):
        record = decision_record(w, n, follower=fake_address(w, n))
        expect = Expect(projection="copy_decisions", result=(record["intent_id"], "REJECTED", "no account"))
        return record["follower"], encode("CopyDecision", record), expect

    @kind(COPY_DECISIONS, "unknown-follower-huge-inputs", cap=2)
    def _(w, rng, n):
        record = decision_record(
            w,
            n,
            follower=fake_address(w, n),
            inputs=text(rng, HUGE),
            token_id=w.unknown_tokens[n % len(w.unknown_tokens)],
        )
        expect = Expect(projection="copy_decisions", result=(record["intent_id"], "REJECTED", ""))
        return record["follower"], encode("CopyDecision", record), expect

    @kind(COPY_DECISIONS, "unknown-follower-huge-event-id", cap=2)  # the result names it as its cause
    def _(w, rng, n):
        record = decision_record(w, n, follower=fake_address(w, n), **{"envelope.event_id": text(rng, HUGE)})
        expect = Expect(projection=PARKED, result=(record["intent_id"], "REJECTED", "no account"))
        return record["follower"], encode("CopyDecision", record), expect

    @kind(COPY_DECISIONS, "expired")  # the real follower and market, but past its expiry: never sent (D2)
    def _(w, rng, n):
        record = decision_record(w, n, follower=w.follower, expires_at_us=w.now_us - rng.randint(1, 30) * DAY_US)
        expect = Expect(projection="copy_decisions", result=(record["intent_id"], "NOT_FILLED", "EXPIRED"))
        return w.follower, encode("CopyDecision", record), expect

    @kind(COPY_DECISIONS, "skip-with-nul")  # a SKIP: nothing to execute; the projection refuses the NUL
    def _(w, rng, n):
        record = decision_record(
            w,
            n,
            follower=fake_address(w, n),
            action="SKIP",
            intent_id=None,
            reason_code="PAUSED",
            reason_detail="why\x00not",
        )
        return record["follower"], encode("CopyDecision", record), Expect(projection=PARKED)

    @kind(COPY_DECISIONS, "skip-with-huge-detail", cap=2)
    def _(w, rng, n):
        record = decision_record(
            w,
            n,
            follower=fake_address(w, n),
            action="SKIP",
            intent_id=None,
            reason_code="PAUSED",
            reason_detail=text(rng, HUGE),
        )
        return record["follower"], encode("CopyDecision", record), Expect(projection="copy_decisions")

    @kind(COPY_DECISIONS, "skip-with-huge-candidate-id", cap=2)
    def _(w, rng, n):
        record = decision_record(
            w,
            n,
            follower=fake_address(w, n),
            action="SKIP",
            intent_id=None,
            reason_code="PAUSED",
            candidate_id=text(rng, HUGE),
        )
        return record["follower"], encode("CopyDecision", record), Expect(projection=PARKED)


_decision_kinds()


# ------------------------------------------------------------------------------------------------ execution.results
def _result_kinds() -> None:
    def settled(projection: str = "execution_results", real: bool = False, **change):
        """A result settle passes on (NOT_REQUIRED): it must emit the settlement; decide's results tail folds it
        for a follower whose books hold no such intent, so it changes nothing there."""

        def make(w: World, rng: random.Random, n: int):
            values = {k: (v(w, rng, n) if callable(v) else v) for k, v in change.items()}
            follower = values.pop("follower", w.follower if real else fake_address(w, n))
            record = result_record(w, n, follower=follower, **values)
            settlement = ids.settlement_id(record["envelope"]["event_id"], "NOT_REQUIRED")
            return (
                record["follower"],
                encode("ExecutionResult", record),
                Expect(projection=projection, settlement=settlement),
            )

        return make

    pick = lambda *options: lambda w, rng, n: options[n % len(options)]  # noqa: E731
    kind(EXECUTION_RESULTS, "failure-of-an-unknown-intent")(settled(real=True, status=pick("REJECTED", "FAILED")))
    kind(EXECUTION_RESULTS, "negative-fill")(settled(filled_shares_e6=-5, filled_collateral_e6=-(2**63)))
    kind(EXECUTION_RESULTS, "status-unknown")(settled(status="UNKNOWN"))
    kind(EXECUTION_RESULTS, "negative-attempts")(settled(attempts=-(2**31)))
    kind(EXECUTION_RESULTS, "price-not-a-number")(settled(PARKED, avg_price=pick("abc", "NaN")))
    kind(EXECUTION_RESULTS, "nul-in-follower")(settled(PARKED, follower=lambda w, rng, n: f"0x\x00{n}"))
    kind(EXECUTION_RESULTS, "dated-beyond-the-calendar")(settled(PARKED, **{"envelope.occurred_at_us": 2**63 - 1}))
    kind(EXECUTION_RESULTS, "huge-error", cap=2)(settled(error=lambda w, rng, n: text(rng, HUGE)))
    kind(EXECUTION_RESULTS, "empty-intent")(settled(PARKED, intent_id=""))

    @kind(EXECUTION_RESULTS, "huge-follower", cap=2)  # its settlement (keyed and valued by follower) is too large
    def _(w, rng, n):
        record = result_record(w, n, follower=text(rng, 520_000))
        return b"huge", encode("ExecutionResult", record), Expect(frozenset({"settle"}), PARKED)

    @kind(EXECUTION_RESULTS, "status-of-a-newer-writer")
    def _(w, rng, n):
        record = result_record(w, n, follower=fake_address(w, n))
        return (
            record["follower"],
            with_symbol("ExecutionResult", record, "status", "SETTLED_ON_MARS"),
            Expect(frozenset({"decode"})),
        )


_result_kinds()


# ------------------------------------------------------------------------------------------------ config.changes
def _config_kinds() -> None:
    """Changes to configs of their own (never the real follow or follower: a valid one would change the run)."""

    def change(
        parked: frozenset[str], projection: str, entity: str = "FOLLOW", op: str = "UPSERT", body=None, entity_id=None
    ):
        def make(w: World, rng: random.Random, n: int):
            record = config_record(
                w,
                n,
                entity,
                op,
                body(w, rng, n) if callable(body) else body,
                entity_id(w, rng, n) if callable(entity_id) else entity_id,
            )
            return config_key(entity, record["entity_id"]), encode("ConfigChange", record), Expect(parked, projection)

        return make

    state_tails = frozenset({"decide-config", "execute-config"})  # FOLLOWER changes: plan's graph ignores them
    # a FOLLOW is parsed by the one follow parser everywhere (plan's graph included), so every config tail parks it
    kind(CONFIG_CHANGES, "follow-breaking-a-rule")(
        change(
            CONFIG_TAILS,
            "follow_configs",
            body=lambda w, rng, n: follow_body(
                w,
                n,
                **[
                    {"sizing": {"mode": "fixed", "amount": "-5"}},
                    {"slippage_bps": 10**9},
                    {"order_ttl_s": 0},
                    {"price_min": "0.9", "price_max": "0.1"},
                    {"unknown_field": 1},
                    {"markets_allow": ["nope"]},
                    {"max_fill_age_s": "NaN"},
                ][n % 7],
            ),
        )
    )
    kind(CONFIG_CHANGES, "follow-of-oneself")(
        change(CONFIG_TAILS, "follow_configs", body=lambda w, rng, n: follow_body(w, n, leader=fake_address(w, 2 * n)))
    )
    kind(CONFIG_CHANGES, "follow-bad-address")(
        change(
            CONFIG_TAILS,
            "follow_configs",
            body=lambda w, rng, n: follow_body(w, n, follower=["0xZZ", "", 5, None, "0x" + "1" * 39][n % 5]),
        )
    )
    kind(CONFIG_CHANGES, "follow-not-json")(
        change(
            CONFIG_TAILS,
            "follow_configs",
            body=lambda w, rng, n: ["{{{", "", "null", "[]", '"a string"', '{"follow_id": 1e99999}', "\x00"][n % 7],
        )
    )
    kind(CONFIG_CHANGES, "follow-without-body")(change(CONFIG_TAILS, "follow_configs", body=None))
    kind(CONFIG_CHANGES, "follow-id-mismatch")(
        change(CONFIG_TAILS, "follow_configs", body=lambda w, rng, n: follow_body(w, n, follow_id=f"someone-else-{n}"))
    )
    kind(CONFIG_CHANGES, "follow-json-bomb", cap=3)(
        change(
            CONFIG_TAILS,
            "follow_configs",
            body=lambda w, rng, n: ("[" * 100_000 + "]" * 100_000, '{"a":' * 60_000 + "1" + "}" * 60_000)[n % 2],
        )
    )
    kind(CONFIG_CHANGES, "follow-huge-body", cap=2)(
        change(CONFIG_TAILS, "follow_configs", body=lambda w, rng, n: follow_body(w, n, note=text(rng, 300_000)))
    )
    kind(CONFIG_CHANGES, "follower-breaking-a-rule")(
        change(
            state_tails,
            "follower_configs",
            "FOLLOWER",
            body=lambda w, rng, n: json.dumps({"follower": fake_address(w, n), "signature_type": 9}),
            entity_id=lambda w, rng, n: fake_address(w, n),
        )
    )
    kind(CONFIG_CHANGES, "follower-not-an-address")(
        change(
            state_tails,
            "follower_configs",
            "FOLLOWER",
            body=lambda w, rng, n: json.dumps({"follower": "nobody"}),
            entity_id=lambda w, rng, n: f"nobody-{w.run}-{n}",
        )
    )
    kind(CONFIG_CHANGES, "delete-with-nul-id")(
        change(NONE, PARKED, op="DELETE", entity_id=lambda w, rng, n: f"hostile\x00{w.run}-{n}")
    )
    kind(CONFIG_CHANGES, "delete-with-huge-id", cap=2)(
        change(NONE, PARKED, op="DELETE", entity_id=lambda w, rng, n: text(rng, HUGE))
    )
    kind(CONFIG_CHANGES, "upsert-with-empty-id")(
        change(CONFIG_TAILS, PARKED, entity_id="", body=lambda w, rng, n: follow_body(w, n))
    )

    @kind(CONFIG_CHANGES, "unknown-entity")
    def _(w, rng, n):
        record = config_record(w, n, body=follow_body(w, n))
        return (
            f"hostile-{n}",
            with_symbol("ConfigChange", record, "entity", ("UNRECOGNIZED", "LEADER")[n % 2]),
            Expect(CONFIG_TAILS),
        )

    @kind(CONFIG_CHANGES, "unknown-op")
    def _(w, rng, n):
        record = config_record(w, n, body=follow_body(w, n))
        return f"hostile-{n}", with_symbol("ConfigChange", record, "op", "UNRECOGNIZED"), Expect(CONFIG_TAILS)

    @kind(CONFIG_CHANGES, "tombstone-with-binary-key")
    def _(w, rng, n):
        return b"\xff\xfe" + rng.randbytes(16), None, Expect(NONE)


_config_kinds()


# ------------------------------------------------------------------------------------------------ control.commands
def _control_kinds() -> None:
    def command(parked: frozenset[str], projection: str, scope: str, verb: str, target, key=None):
        def make(w: World, rng: random.Random, n: int):
            record = control_record(w, n, scope, verb, target(w, rng, n) if callable(target) else target)
            return key or scope, encode("ControlCommand", record), Expect(parked, projection)

        return make

    # the project's own rules (horus.domain.control.check_control): every reader refuses these
    kind(CONTROL_COMMANDS, "kill-for-one-follower")(
        command(CONTROL_TAILS, PARKED, "FOLLOWER", "KILL", lambda w, rng, n: fake_address(w, n))
    )
    kind(CONTROL_COMMANDS, "kill-for-one-market")(command(CONTROL_TAILS, PARKED, "MARKET", "KILL", "0x" + "ab" * 32))
    kind(CONTROL_COMMANDS, "pause-without-target")(
        command(CONTROL_TAILS, PARKED, "FOLLOWER", "PAUSE", lambda w, rng, n: ("", "   ", None, "\t")[n % 4])
    )
    kind(CONTROL_COMMANDS, "global-with-target")(
        command(CONTROL_TAILS, PARKED, "GLOBAL", "PAUSE", lambda w, rng, n: ("x", "", w.follower)[n % 3])
    )
    # within the rules, for markets nobody trades: honoured (harmless); the projection refuses what it cannot store
    kind(CONTROL_COMMANDS, "pause-with-nul-target")(
        command(NONE, PARKED, "MARKET", "PAUSE", lambda w, rng, n: f"nowhere\x00{w.run}-{n}")
    )
    kind(CONTROL_COMMANDS, "pause-with-huge-target", cap=2)(
        command(NONE, PARKED, "MARKET", "PAUSE", lambda w, rng, n: text(rng, HUGE))
    )

    @kind(CONTROL_COMMANDS, "unknown-scope")
    def _(w, rng, n):
        record = control_record(w, n, "GLOBAL", "KILL", None)
        return (
            "GLOBAL",
            with_symbol("ControlCommand", record, "scope", ("UNRECOGNIZED", "GALAXY")[n % 2]),
            Expect(CONTROL_TAILS),
        )

    @kind(CONTROL_COMMANDS, "unknown-verb")
    def _(w, rng, n):
        record = control_record(w, n, "GLOBAL", "KILL", None)
        return "GLOBAL", with_symbol("ControlCommand", record, "command", "UNRECOGNIZED"), Expect(CONTROL_TAILS)

    @kind(CONTROL_COMMANDS, "tombstone-with-binary-key")  # a switch key is text: the tails park it
    def _(w, rng, n):
        return b"\xff\xfe" + rng.randbytes(16), None, Expect(CONTROL_TAILS)


_control_kinds()


# ------------------------------------------------------------------------------------------------ settlement.events
def _settlement_kinds() -> None:
    def settlement(projection: str, **change):
        def make(w: World, rng: random.Random, n: int):
            values = {k: (v(w, rng, n) if callable(v) else v) for k, v in change.items()}
            record = settlement_record(w, n, **values)
            return record["follower"], encode("SettlementEvent", record), Expect(projection=projection)

        return make

    kind(SETTLEMENT_EVENTS, "negative-amount")(settlement("settlement_events", amount_e6=-(2**63)))
    kind(SETTLEMENT_EVENTS, "nul-in-follower")(settlement(PARKED, follower="0x\x00"))
    kind(SETTLEMENT_EVENTS, "empty-follower")(settlement(PARKED, follower=""))
    kind(SETTLEMENT_EVENTS, "dated-beyond-the-calendar")(settlement(PARKED, **{"envelope.produced_at_us": 2**63 - 1}))
    kind(SETTLEMENT_EVENTS, "huge-debt-id", cap=2)(settlement(PARKED, debt_id=lambda w, rng, n: text(rng, HUGE)))

    @kind(SETTLEMENT_EVENTS, "kind-of-a-newer-writer")
    def _(w, rng, n):
        return "x", with_symbol("SettlementEvent", settlement_record(w, n), "kind", "UNRECOGNIZED"), Expect()


_settlement_kinds()


# ------------------------------------------------------------------------------------------------ dead.letters
def _dead_letter_kinds() -> None:
    def letter(projection: str, **change):
        def make(w: World, rng: random.Random, n: int):
            values = {k: (v(w, rng, n) if callable(v) else v) for k, v in change.items()}
            return "forged", encode("DeadLetter", dead_letter_record(w, n, **values)), Expect(projection=projection)

        return make

    kind(DEAD_LETTERS, "forged")(letter(FORGED))  # well-formed: a row of its own (about a topic that does not exist)
    kind(DEAD_LETTERS, "negative-partition")(letter(PARKED, source_partition=-1))
    kind(DEAD_LETTERS, "negative-offset")(letter(PARKED, source_offset=-(2**63)))
    kind(DEAD_LETTERS, "nul-in-error")(letter(PARKED, error="\x00"))
    kind(DEAD_LETTERS, "empty-source-topic")(letter(PARKED, source_topic=""))


_dead_letter_kinds()


# ------------------------------------------------------------------------------------------------ the flood
def flood(w: World, n: int, seed: int) -> list[Hostile]:
    """`n` hostile records (at least one of every kind), in a seeded random order."""
    rng = random.Random(seed)
    capped = [k for k in KINDS if k.cap is not None]
    free = [k for k in KINDS if k.cap is None]
    counts = {k.name + k.topic.name: min(k.cap, max(1, n // len(KINDS))) for k in capped}
    left = max(n - sum(counts.values()), len(free))
    for i, k in enumerate(free):
        counts[k.name + k.topic.name] = left // len(free) + (1 if i < left % len(free) else 0)
    records = []
    serial = 0
    for k in KINDS:
        for _ in range(counts[k.name + k.topic.name]):
            records.append(k.make(w, rng, serial))
            serial += 1
    rng.shuffle(records)
    return records
