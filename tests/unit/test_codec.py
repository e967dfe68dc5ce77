"""Unit tests for horus.codec: wire format, round trips, typed errors."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horus import codec as codec_mod
from horus.codec import (
    MAGIC,
    SCHEMA_DIR,
    Codec,
    CodecError,
    FramingError,
    MalformedBodyError,
    RecordMismatchError,
    SchemaDefinitionError,
    SchemaRegistry,
    UnknownSchemaError,
    UnrecognizedSymbolError,
    default_codec,
    fingerprint_hex,
)
from horus.domain.events import envelope

T0 = 1_714_000_000_000_000  # epoch µs
LEADER = "0x" + "a1" * 20
FOLLOWER = "0x" + "f0" * 20
EXCHANGE = "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e"
TX = "0x" + "9c" * 32
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
CONDITION = "0x" + "5e" * 32


def env(event_id: str, source: str = "chain", causation_id: str | None = None) -> dict:
    return envelope(event_id, source, T0, causation_id=causation_id, produced_at_us=T0 + 1_500)


SAMPLES: dict[str, dict] = {
    "Envelope": env("env:1", causation_id="lf:0"),
    "LeaderFill": {
        "envelope": env("lf:" + TX + ":" + LEADER + ":" + TOKEN + ":BUY"),
        "leader": LEADER,
        "exchange": EXCHANGE,
        "tx_hash": TX,
        "block_number": 65_432_109,
        "log_index": 217,
        "token_id": TOKEN,
        "condition_id": CONDITION,
        "side": "BUY",
        "shares_e6": 1_250_000_000,
        "collateral_e6": 662_500_000,
        "price": "0.53",
        "fee_e6": 0,
        "role": "TAKER",
        "order_hashes": ["0x" + "01" * 32, "0x" + "02" * 32],
    },
    "CopyCandidate": {
        "envelope": env("cc:1", "plan", causation_id="lf:1"),
        "leader_fill_id": "lf:1",
        "follow_id": "follow-7",
        "follower": FOLLOWER,
        "leader": LEADER,
        "token_id": TOKEN,
        "side": "SELL",
        "leader_shares_e6": 1_250_000_000,
        "leader_collateral_e6": 662_500_000,
        "leader_price": "0.53",
        "condition_id": "0x" + "c0" * 32,
    },
    "CopyDecision": {
        "envelope": env("cd:1", "decide", causation_id="cc:1"),
        "candidate_id": "cc:1",
        "follow_id": "follow-7",
        "follower": FOLLOWER,
        "leader_fill_id": "lf:1",
        "action": "COPY",
        "intent_id": "intent-1",
        "token_id": TOKEN,
        "side": "BUY",
        "size_e6": 12_500_000,
        "worst_price": "0.55",
        "order_type": "GTD",
        "expires_at_us": T0 + 60_000_000,
        "reason_code": None,
        "reason_detail": None,
        "leader": LEADER,
        "condition_id": "0x" + "c0" * 32,
        "reserved_e6": 6_875_000,
        "leader_shares_e6": 1_250_000_000,
        "inputs": '{"reference":"book"}',
    },
    "ExecutionResult": {
        "envelope": env("er:1", "execute", causation_id="cd:1"),
        "intent_id": "intent-1",
        "follow_id": "follow-7",
        "follower": FOLLOWER,
        "leader_fill_id": "lf:1",
        "status": "PARTIAL",
        "order_hash": "0x" + "0b" * 32,
        "filled_shares_e6": 10_000_000,
        "filled_collateral_e6": 5_400_000,
        "avg_price": "0.54",
        "fee_e6": 10_800,
        "error": None,
        "attempts": 2,
        "final": False,
        "seq": 3,
    },
    "SettlementEvent": {
        "envelope": env("se:1", "settle", causation_id="er:1"),
        "follower": FOLLOWER,
        "intent_id": "intent-1",
        "kind": "DEBT_RECORDED",
        "amount_e6": 5_400_000,
        "token_id": TOKEN,
        "tx_hash": TX,
        "debt_id": "debt-3",
    },
    "ConfigChange": {
        "envelope": env("cfg:1", "api"),
        "entity": "FOLLOW",
        "entity_id": "follow-7",
        "op": "UPSERT",
        "body": json.dumps({"leader": LEADER, "ratio": "0.1", "signer_ref": "vault:follower-1"}),
    },
    "ControlCommand": {
        "envelope": env("ctl:1", "cli"),
        "scope": "MARKET",
        "target": CONDITION,
        "command": "PAUSE",
        "reason": "resolution dispute",
        "issued_by": "ops@example",
    },
    "DeadLetter": {
        "envelope": env("dl:1", "decide"),
        "source_topic": "copy.candidates",
        "source_partition": 3,
        "source_offset": 2**40 + 5,
        "key": FOLLOWER.encode(),
        "original": b"\xc3\x01\x00\xffgarbage",
        "error": "MalformedBodyError: truncated",
        "stage": "decode",
    },
    "LeaderFillRetracted": {
        "envelope": env("lfr:1", causation_id="lf:0"),
        "leader_fill_id": "lf:0",
        "leader": LEADER,
        "tx_hash": TX,
        "block_number": 65_432_109,
        "reason": "reorg: log 217 of block 65432109 (0x" + "b4" * 32 + ") removed",
    },
}


@pytest.fixture(scope="module")
def codec() -> Codec:
    return default_codec()


# ----------------------------------------------------------------------------- round trips


def test_every_schema_file_has_a_sample(codec: Codec) -> None:
    files = {p.stem for p in SCHEMA_DIR.glob("*.avsc")}
    assert files == set(SAMPLES), "add a realistic sample record for each schema"
    assert {n.rsplit(".", 1)[1] for n in codec.registry.names()} == files


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip(codec: Codec, name: str) -> None:
    data = codec.encode(name, SAMPLES[name])
    assert data[:2] == MAGIC
    assert data[2:10] == codec.registry.fingerprint_of(name)
    assert codec.decode(data) == (name, SAMPLES[name])
    # full name works too and gives the same bytes
    assert codec.encode("horus.events." + name, SAMPLES[name]) == data


def test_round_trip_fills_defaults_for_omitted_optional_fields(codec: Codec) -> None:
    rec = dict(SAMPLES["CopyDecision"], action="SKIP", size_e6=0, reason_code="MAX_EXPOSURE")
    for k in ("intent_id", "worst_price", "order_type", "expires_at_us", "reason_detail"):
        del rec[k]
    rec["envelope"] = {k: v for k, v in rec["envelope"].items() if k != "causation_id"}
    name, out = codec.decode(codec.encode("CopyDecision", rec))
    assert name == "CopyDecision"
    assert out["intent_id"] is None and out["order_type"] is None and out["expires_at_us"] is None
    assert out["envelope"]["causation_id"] is None
    assert out["reason_code"] == "MAX_EXPOSURE"


def test_decode_accepts_bytearray_and_memoryview(codec: Codec) -> None:
    data = codec.encode("LeaderFill", SAMPLES["LeaderFill"])
    assert codec.decode(bytearray(data)) == ("LeaderFill", SAMPLES["LeaderFill"])
    assert codec.decode(memoryview(data)) == ("LeaderFill", SAMPLES["LeaderFill"])


def test_batch_helpers(codec: Codec) -> None:
    recs = [dict(SAMPLES["LeaderFill"], log_index=i, shares_e6=i * 1_000_000) for i in range(5)]
    datas = codec.encode_many("LeaderFill", recs)
    assert len(datas) == 5
    assert codec.decode_many(datas) == [("LeaderFill", r) for r in recs]
    assert codec.encode_many("LeaderFill", []) == [] and codec.decode_many([]) == []
    with pytest.raises(RecordMismatchError):
        codec.encode_many("LeaderFill", [recs[0], dict(recs[1], shares_e6="1")])
    with pytest.raises(FramingError):
        codec.decode_many([datas[0], b"nope"])


def test_encoding_is_deterministic(codec: Codec) -> None:
    a = codec.encode("LeaderFill", SAMPLES["LeaderFill"])
    b = Codec().encode("LeaderFill", json.loads(json.dumps(SAMPLES["LeaderFill"])))
    assert a == b


uint256 = st.integers(min_value=0, max_value=2**256 - 1).map(str)
amount = st.integers(min_value=0, max_value=2**62)
long_ = st.integers(min_value=-(2**63), max_value=2**63 - 1)
hex_addr = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
hex32 = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
price = st.decimals(min_value=0, max_value=1, places=6, allow_nan=False).map(str)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shares=amount,
    collateral=amount,
    fee=long_,
    token=uint256,
    block=long_,
    log_index=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    leader=hex_addr,
    tx=hex32,
    price=price,
    side=st.sampled_from(["BUY", "SELL"]),
    role=st.sampled_from(["MAKER", "TAKER"]),
    condition=st.none() | hex32,
    hashes=st.lists(hex32, max_size=5),
    occurred=long_,
    causation=st.none() | st.text(max_size=40),
)
def test_leader_fill_round_trip_property(
    codec: Codec,
    shares,
    collateral,
    fee,
    token,
    block,
    log_index,
    leader,
    tx,
    price,
    side,
    role,
    condition,
    hashes,
    occurred,
    causation,
) -> None:
    rec = {
        "envelope": envelope("lf:" + tx, "chain", occurred, causation, produced_at_us=occurred),
        "leader": leader,
        "exchange": EXCHANGE,
        "tx_hash": tx,
        "block_number": block,
        "log_index": log_index,
        "token_id": token,
        "condition_id": condition,
        "side": side,
        "shares_e6": shares,
        "collateral_e6": collateral,
        "price": price,
        "fee_e6": fee,
        "role": role,
        "order_hashes": hashes,
    }
    data = codec.encode("LeaderFill", rec)
    assert codec.decode(data) == ("LeaderFill", rec)


# ----------------------------------------------------------------------------- wire format


def _crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) exactly as written in the Avro specification."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for b in data:
        fp = (fp >> 8) ^ table[(fp ^ b) & 0xFF]
    return fp


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_fingerprint_is_crc64_avro_of_self_contained_pcf_little_endian(codec: Codec, name) -> None:
    entry = codec.registry._entry(name)
    pcf = entry.pcf
    expected = _crc64_avro(pcf.encode()).to_bytes(8, "little")
    assert codec.registry.fingerprint_of(name) == expected
    # the canonical form is self-contained: the Envelope is defined inline, not referenced
    parsed = json.loads(pcf)
    assert parsed["name"] == "horus.events." + name
    if name != "Envelope":
        assert parsed["fields"][0]["name"] == "envelope"
        assert parsed["fields"][0]["type"]["name"] == "horus.events.Envelope"
        assert "fields" in parsed["fields"][0]["type"]
    # PCF strips docs and defaults
    assert '"doc"' not in pcf and '"default"' not in pcf


def test_fingerprints_are_distinct(codec: Codec) -> None:
    fps = [codec.registry.fingerprint_of(n) for n in codec.registry.names()]
    assert len(set(fps)) == len(fps)
    assert all(isinstance(fp, bytes) and len(fp) == 8 for fp in fps)


def test_fingerprint_hex(codec: Codec) -> None:
    data = codec.encode("ControlCommand", SAMPLES["ControlCommand"])
    assert fingerprint_hex(data) == codec.registry.fingerprint_of("ControlCommand").hex()
    assert fingerprint_hex(memoryview(data)) == fingerprint_hex(data)
    assert fingerprint_hex(b"") is None
    assert fingerprint_hex(MAGIC + b"\x00" * 7) is None
    assert fingerprint_hex(b"\x00\x01" + data[2:]) is None
    assert fingerprint_hex("not bytes") is None  # type: ignore[arg-type]
    assert fingerprint_hex(MAGIC + b"\x00" * 8) == "00" * 8


# ----------------------------------------------------------------------------- decode errors


def test_unknown_fingerprint(codec: Codec) -> None:
    data = codec.encode("LeaderFill", SAMPLES["LeaderFill"])
    bad = data[:2] + bytes.fromhex("0123456789abcdef") + data[10:]
    with pytest.raises(UnknownSchemaError) as ei:
        codec.decode(bad)
    assert "0123456789abcdef" in str(ei.value)
    assert ei.value.fingerprint == "0123456789abcdef"
    assert isinstance(ei.value, CodecError) and isinstance(ei.value, ValueError)


@pytest.mark.parametrize("magic", [b"\x00\x00", b"\xc3\x00", b"\x01\xc3", b'{"', b"\xc3\x02"])
def test_wrong_magic(codec: Codec, magic: bytes) -> None:
    data = codec.encode("LeaderFill", SAMPLES["LeaderFill"])
    with pytest.raises(FramingError, match="magic"):
        codec.decode(magic + data[2:])


@pytest.mark.parametrize("n", range(10))
def test_too_short(codec: Codec, n: int) -> None:
    data = codec.encode("LeaderFill", SAMPLES["LeaderFill"])[:n]
    with pytest.raises(FramingError, match="too short"):
        codec.decode(data)


def test_not_bytes(codec: Codec) -> None:
    with pytest.raises(FramingError):
        codec.decode("c301")  # type: ignore[arg-type]
    with pytest.raises(FramingError):
        codec.decode(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_truncation_of_the_body_is_malformed(codec: Codec, name: str) -> None:
    data = codec.encode(name, SAMPLES[name])
    for cut in range(10, len(data)):
        with pytest.raises(MalformedBodyError):
            codec.decode(data[:cut])


def test_trailing_bytes_are_malformed(codec: Codec) -> None:
    data = codec.encode("LeaderFill", SAMPLES["LeaderFill"])
    with pytest.raises(MalformedBodyError, match="trailing"):
        codec.decode(data + b"\x00")


def test_body_of_another_schema_is_rejected(codec: Codec) -> None:
    # a ControlCommand body framed with the LeaderFill fingerprint
    body = codec.encode("ControlCommand", SAMPLES["ControlCommand"])[10:]
    with pytest.raises(MalformedBodyError):
        codec.decode(MAGIC + codec.registry.fingerprint_of("LeaderFill") + body)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=400), name=st.sampled_from(sorted(SAMPLES)))
def test_garbage_bodies_raise_only_codec_errors(codec: Codec, body: bytes, name: str) -> None:
    data = MAGIC + codec.registry.fingerprint_of(name) + body
    try:
        got_name, _ = codec.decode(data)
    except CodecError:
        return
    assert got_name == name


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_codec_errors(codec: Codec, data: bytes) -> None:
    try:
        codec.decode(data)
    except CodecError:
        pass


# ----------------------------------------------------------------------------- encode errors


@pytest.mark.parametrize(
    ("patch", "field", "fragment"),
    [
        ({"shares_e6": 1.5}, "shares_e6", "float"),
        ({"shares_e6": 1.0}, "shares_e6", "never through float"),
        ({"shares_e6": "1250000000"}, "shares_e6", "str"),
        ({"shares_e6": True}, "shares_e6", "bool"),
        ({"shares_e6": 2**63}, "shares_e6", "out of range"),
        ({"log_index": 2**31}, "log_index", "out of range"),
        ({"side": "HOLD"}, "side", "BUY, SELL"),
        ({"side": None}, "side", "Side"),
        ({"role": "maker"}, "role", "MAKER, TAKER"),
        ({"condition_id": 5}, "condition_id", "None or"),
        ({"order_hashes": "0xabc"}, "order_hashes", "list"),
        ({"order_hashes": ["0xabc", None]}, "order_hashes[1]", "str"),
        ({"token_id": int(TOKEN)}, "token_id", "str"),
    ],
)
def test_encode_mismatch_names_the_field(codec: Codec, patch: dict, field: str, fragment: str) -> None:
    rec = dict(SAMPLES["LeaderFill"], **patch)
    with pytest.raises(RecordMismatchError) as ei:
        codec.encode("LeaderFill", rec)
    msg = str(ei.value)
    assert f"'{field}'" in msg and fragment in msg and "LeaderFill" in msg


def test_encode_mismatch_in_nested_envelope(codec: Codec) -> None:
    rec = dict(SAMPLES["LeaderFill"])
    rec["envelope"] = dict(rec["envelope"], occurred_at_us=1.7e15)
    with pytest.raises(RecordMismatchError, match=r"'envelope\.occurred_at_us'"):
        codec.encode("LeaderFill", rec)
    rec["envelope"] = {"event_id": "x"}
    with pytest.raises(RecordMismatchError, match=r"'envelope\.occurred_at_us'.*missing"):
        codec.encode("LeaderFill", rec)


def test_encode_missing_and_extra_fields(codec: Codec) -> None:
    rec = {k: v for k, v in SAMPLES["LeaderFill"].items() if k != "price"}
    with pytest.raises(RecordMismatchError, match="'price'.*missing"):
        codec.encode("LeaderFill", rec)
    with pytest.raises(RecordMismatchError, match="does not define: pirce"):
        codec.encode("LeaderFill", dict(SAMPLES["LeaderFill"], pirce="0.5"))
    with pytest.raises(RecordMismatchError, match="expected a dict"):
        codec.encode("LeaderFill", None)  # type: ignore[arg-type]


def test_encode_bytes_fields(codec: Codec) -> None:
    with pytest.raises(RecordMismatchError, match="'original'"):
        codec.encode("DeadLetter", dict(SAMPLES["DeadLetter"], original="text"))
    with pytest.raises(RecordMismatchError, match="'key'"):
        codec.encode("DeadLetter", dict(SAMPLES["DeadLetter"], key="text"))
    out = codec.decode(codec.encode("DeadLetter", dict(SAMPLES["DeadLetter"], key=None)))[1]
    assert out["key"] is None


def test_encode_unknown_name(codec: Codec) -> None:
    with pytest.raises(UnknownSchemaError, match="NoSuchEvent"):
        codec.encode("NoSuchEvent", {})


# ----------------------------------------------------------------------------- registry


def test_registry_lookup_by_short_and_full_name(codec: Codec) -> None:
    reg = codec.registry
    assert reg.fingerprint_of("LeaderFill") == reg.fingerprint_of("horus.events.LeaderFill")
    assert reg.writer_for("LeaderFill") is reg.writer_for("horus.events.LeaderFill")
    assert reg.writer_for("LeaderFill")["name"] == "horus.events.LeaderFill"
    with pytest.raises(UnknownSchemaError):
        reg.writer_for("leaderfill")
    with pytest.raises(UnknownSchemaError):
        reg.fingerprint_of("other.LeaderFill")


def test_register_returns_fingerprint_and_is_idempotent() -> None:
    reg = SchemaRegistry()
    env_text = (SCHEMA_DIR / "Envelope.avsc").read_text()
    fp = reg.register(env_text)
    assert isinstance(fp, bytes) and len(fp) == 8
    assert reg.register(json.loads(env_text)) == fp
    assert reg.fingerprint_of("Envelope") == fp
    fill = json.loads((SCHEMA_DIR / "LeaderFill.avsc").read_text())
    assert reg.register(fill) == default_codec().registry.fingerprint_of("LeaderFill")


def test_register_needs_referenced_types_first() -> None:
    reg = SchemaRegistry()
    with pytest.raises(SchemaDefinitionError, match="Envelope"):
        reg.register((SCHEMA_DIR / "LeaderFill.avsc").read_text())


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        '"string"',
        '{"type": "record", "fields": []}',
        {"type": "enum", "name": "E"},
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "nosuch"}]},
    ],
)
def test_register_rejects_invalid_schemas(bad) -> None:
    with pytest.raises(SchemaDefinitionError):
        SchemaRegistry().register(bad)


def test_ambiguous_short_name() -> None:
    reg = SchemaRegistry()
    for ns in ("a", "b"):
        reg.register({"type": "record", "name": "Thing", "namespace": ns, "fields": [{"name": "x", "type": "long"}]})
    with pytest.raises(UnknownSchemaError, match="ambiguous"):
        reg.writer_for("Thing")
    c = Codec(reg)
    assert c.decode(c.encode("a.Thing", {"x": 1})) == ("Thing", {"x": 1})


def test_load_dir_loads_envelope_first_and_retries_forward_references(tmp_path: Path) -> None:
    (tmp_path / "Envelope.avsc").write_text((SCHEMA_DIR / "Envelope.avsc").read_text())
    # "AUses" sorts before "ZDefines" but refers to the enum that ZDefines defines
    (tmp_path / "AUses.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "AUses",
                "namespace": "horus.events",
                "fields": [
                    {"name": "envelope", "type": "horus.events.Envelope"},
                    {"name": "c", "type": "horus.events.Colour"},
                ],
            }
        )
    )
    (tmp_path / "ZDefines.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "ZDefines",
                "namespace": "horus.events",
                "fields": [
                    {"name": "envelope", "type": "Envelope"},
                    {
                        "name": "c",
                        "type": {"type": "enum", "name": "Colour", "symbols": ["RED", "BLUE"], "default": "RED"},
                    },
                ],
            }
        )
    )
    reg = SchemaRegistry()
    reg.load_dir(tmp_path)
    assert reg.names() == ["horus.events.AUses", "horus.events.Envelope", "horus.events.ZDefines"]
    c = Codec(reg)
    rec = {"envelope": env("x"), "c": "BLUE"}
    assert c.decode(c.encode("AUses", rec)) == ("AUses", rec)


def test_load_dir_reports_the_bad_file(tmp_path: Path) -> None:
    (tmp_path / "Broken.avsc").write_text('{"type": "record", "name": "Broken", "fields": [')
    with pytest.raises(SchemaDefinitionError, match="Broken.avsc"):
        SchemaRegistry().load_dir(tmp_path)
    with pytest.raises(SchemaDefinitionError, match="does not exist"):
        SchemaRegistry().load_dir(tmp_path / "nope")


def test_default_codec_is_cached_and_uses_schema_dir() -> None:
    assert default_codec() is default_codec()
    assert Path(codec_mod.__file__).resolve().parent.parent / "schemas" == SCHEMA_DIR
    assert SCHEMA_DIR.is_dir()
    assert Codec().registry.names() == default_codec().registry.names()


# ----------------------------------------------------------------------------- envelope


def test_envelope_helper() -> None:
    before = time.time_ns() // 1000
    e = envelope("id-1", "chain", T0)
    after = time.time_ns() // 1000
    assert e["event_id"] == "id-1" and e["source"] == "chain" and e["occurred_at_us"] == T0
    assert e["causation_id"] is None
    assert before <= e["produced_at_us"] <= after
    e2 = envelope("id-2", "plan", T0, causation_id="id-1", produced_at_us=T0 + 7)
    assert e2 == {
        "event_id": "id-2",
        "occurred_at_us": T0,
        "produced_at_us": T0 + 7,
        "source": "plan",
        "causation_id": "id-1",
    }


# ----------------------------------------------------------------------------- symbols from newer writers
#
# Every enum but ExecutionStatus ends with the reader-only UNRECOGNIZED, its default: a symbol a
# newer writer adds resolves to it here, and decode refuses the record instead of handing on a real
# value (a future Side read as BUY would be copied as a buy).

# (record, field, enum, a known symbol of the field in SAMPLES)
GUARDED_FIELDS = [
    ("LeaderFill", "side", "Side", "BUY"),
    ("LeaderFill", "role", "FillRole", "TAKER"),
    ("CopyCandidate", "side", "Side", "SELL"),
    ("CopyDecision", "action", "DecisionAction", "COPY"),
    ("CopyDecision", "side", "Side", "BUY"),
    ("CopyDecision", "order_type", "OrderType", "GTD"),
    ("SettlementEvent", "kind", "SettlementKind", "DEBT_RECORDED"),
    ("ConfigChange", "entity", "ConfigEntity", "FOLLOW"),
    ("ConfigChange", "op", "ConfigOp", "UPSERT"),
    ("ControlCommand", "scope", "ControlScope", "MARKET"),
    ("ControlCommand", "command", "ControlVerb", "PAUSE"),
]


def _enum_of(field_type):
    """The enum definition of a field typed enum or [null, enum], else None."""
    for t in field_type if isinstance(field_type, list) else [field_type]:
        if isinstance(t, dict) and t.get("type") == "enum":
            return t
    return None


def _schema_json(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())


def _with_new_symbol(name: str, field: str, symbol: str) -> dict:
    """The current schema of `name` as a newer writer would publish it: one more symbol in `field`'s enum."""
    schema = _schema_json(name)
    enum = _enum_of(next(f for f in schema["fields"] if f["name"] == field)["type"])
    enum["symbols"].append(symbol)
    return schema


def _registry(*newest: dict) -> SchemaRegistry:
    reg = SchemaRegistry()
    reg.load_dir(SCHEMA_DIR)
    for schema in newest:
        reg.register(schema)
    return reg


def _newer_writer_and_old_reader(name: str, field: str) -> tuple[Codec, Codec]:
    """A codec writing `name` with the extra symbol MERGE in `field`, and a codec of this version that
    has learned that writer schema (decode-only) but reads through its own, current schema."""
    writer = _registry(_with_new_symbol(name, field, "MERGE"))
    reader = _registry()
    reader.register(writer.self_contained(name), latest=False)
    return Codec(writer), Codec(reader)


def test_guarded_fields_are_every_enum_with_unrecognized() -> None:
    found = set()
    for path in SCHEMA_DIR.glob("*.avsc"):
        for f in json.loads(path.read_text())["fields"]:
            enum = _enum_of(f["type"])
            if enum is not None and codec_mod.UNRECOGNIZED in enum["symbols"]:
                found.add((path.stem, f["name"], enum["name"]))
    assert found == {(r, f, e) for r, f, e, _ in GUARDED_FIELDS}


@pytest.mark.parametrize(
    ("name", "field", "enum", "known"), GUARDED_FIELDS, ids=[f"{r}.{f}" for r, f, _, _ in GUARDED_FIELDS]
)
def test_a_symbol_from_a_newer_writer_is_refused_naming_the_field(name, field, enum, known) -> None:
    writer, reader = _newer_writer_and_old_reader(name, field)
    assert SAMPLES[name][field] == known
    data = writer.encode(name, dict(SAMPLES[name], **{field: "MERGE"}))
    with pytest.raises(UnrecognizedSymbolError) as ei:
        reader.decode(data)
    err = ei.value
    assert isinstance(err, CodecError)
    assert (err.record_type, err.field, err.enum) == (name, field, enum)
    msg = str(err)
    assert f"{name} field '{field}'" in msg and "does not know" in msg and "upgrade this service" in msg
    assert data[2:10].hex() in msg  # the writer schema, so an operator can find it
    # the newer writer's known symbols still read as themselves
    assert reader.decode(writer.encode(name, SAMPLES[name])) == (name, SAMPLES[name])


def test_unrecognized_in_an_optional_field_only_when_set() -> None:
    writer, reader = _newer_writer_and_old_reader("CopyDecision", "order_type")
    skip = dict(SAMPLES["CopyDecision"], action="SKIP", order_type=None)
    assert reader.decode(writer.encode("CopyDecision", skip))[1]["order_type"] is None


@pytest.mark.parametrize(
    ("name", "field", "enum", "known"), GUARDED_FIELDS, ids=[f"{r}.{f}" for r, f, _, _ in GUARDED_FIELDS]
)
def test_encode_refuses_the_reader_only_symbol(codec: Codec, name, field, enum, known) -> None:
    with pytest.raises(RecordMismatchError) as ei:
        codec.encode(name, dict(SAMPLES[name], **{field: codec_mod.UNRECOGNIZED}))
    msg = str(ei.value)
    assert f"'{field}'" in msg and "reader-only" in msg and enum in msg and known in msg


def test_a_writer_that_wrote_unrecognized_itself_is_refused(codec: Codec) -> None:
    # bypassing the strict encode (another producer): same schema, so no resolution happens
    import fastavro

    buf = io.BytesIO()
    buf.write(MAGIC + codec.registry.fingerprint_of("LeaderFill"))
    fastavro.schemaless_writer(
        buf, codec.registry.writer_for("LeaderFill"), dict(SAMPLES["LeaderFill"], role=codec_mod.UNRECOGNIZED)
    )
    with pytest.raises(UnrecognizedSymbolError, match="'role'"):
        codec.decode(buf.getvalue())


def test_execution_status_keeps_unknown_as_its_default() -> None:
    # the one exception: UNKNOWN is a real, safe status (the reconciler looks the order up)
    writer, reader = _newer_writer_and_old_reader("ExecutionResult", "status")
    data = writer.encode("ExecutionResult", dict(SAMPLES["ExecutionResult"], status="MERGE"))
    assert reader.decode(data)[1]["status"] == "UNKNOWN"
    status = _enum_of(next(f for f in _schema_json("ExecutionResult")["fields"] if f["name"] == "status")["type"])
    assert codec_mod.UNRECOGNIZED not in status["symbols"] and status["default"] == "UNKNOWN"


def _nested_schema(symbols: list[str]) -> dict:
    kind = {"type": "enum", "name": "Kind", "symbols": symbols, "default": symbols[-1]}
    inner = {"type": "record", "name": "Inner", "fields": [{"name": "kind", "type": kind}]}
    return {
        "type": "record",
        "name": "Outer",
        "namespace": "test",
        "fields": [
            {"name": "inner", "type": ["null", inner], "default": None},
            {"name": "kinds", "type": {"type": "array", "items": "Kind"}},
            {"name": "by_name", "type": {"type": "map", "values": "Kind"}},
            {"name": "plain", "type": "string"},
        ],
    }


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"inner": {"kind": "NEW"}, "kinds": [], "by_name": {}}, "inner.kind"),
        ({"inner": None, "kinds": ["A", "NEW"], "by_name": {}}, "kinds[1]"),
        ({"inner": None, "kinds": ["A"], "by_name": {"x": "A", "y": "NEW"}}, "by_name['y']"),
    ],
)
def test_unrecognized_is_found_in_nested_records_arrays_and_maps(record: dict, field: str) -> None:
    writer = SchemaRegistry()
    writer.register(_nested_schema(["A", "UNRECOGNIZED", "NEW"]))
    reader = SchemaRegistry()
    reader.register(_nested_schema(["A", "UNRECOGNIZED"]))
    reader.register(writer.self_contained("Outer"), latest=False)
    record = dict(record, plain=codec_mod.UNRECOGNIZED)  # a string field is never mistaken for the symbol
    with pytest.raises(UnrecognizedSymbolError) as ei:
        Codec(reader).decode(Codec(writer).encode("Outer", record))
    assert (ei.value.record_type, ei.value.field, ei.value.enum) == ("Outer", field, "Kind")
    fine = {"inner": {"kind": "A"}, "kinds": ["A"], "by_name": {"x": "A"}, "plain": "UNRECOGNIZED"}
    assert Codec(reader).decode(Codec(writer).encode("Outer", fine))[1] == fine


def test_a_stage_parks_a_record_with_an_unrecognized_symbol() -> None:
    from horus.settings import Settings
    from horus.topics import COPY_CANDIDATES, LEADER_FILLS
    from streams.runtime import Runtime, StageSpec
    from tests.unit.test_stages import FakeProducer as Producer

    writer, reader = _newer_writer_and_old_reader("LeaderFill", "side")
    seen = []
    runtime = Runtime(Settings(topic_prefix="u."), codec=reader, producer=Producer())
    spec = StageSpec(
        name="plan",
        source=LEADER_FILLS,
        input_type="LeaderFill",
        sink=COPY_CANDIDATES,
        output_type="CopyCandidate",
        fn=lambda record, state, now_us: (seen.append(record) or [], state),
    )
    merge = writer.encode("LeaderFill", dict(SAMPLES["LeaderFill"], side="MERGE"))
    buy = writer.encode("LeaderFill", SAMPLES["LeaderFill"])
    runtime.process(spec, [("u.leader.fills", 0, 7, b"k", merge), ("u.leader.fills", 0, 8, b"k", buy)], now_us=T0)
    assert seen == [SAMPLES["LeaderFill"]]  # the stage never saw the MERGE fill, as a BUY or otherwise
    [(topic, _, value)] = runtime.producer.sent
    letter = reader.decode(value)[1]
    assert topic == "u.dead.letters" and letter["stage"] == "decode" and letter["original"] == merge
    assert letter["source_offset"] == 7
    assert letter["error"].startswith("UnrecognizedSymbolError: LeaderFill field 'side'")
