"""Schema evolution: resolution through the codec, check_compatible, and schema lint."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from horus.codec import (
    SCHEMA_DIR,
    UNRECOGNIZED,
    Codec,
    CodecError,
    IncompatibleSchemaError,
    SchemaRegistry,
    UnknownSchemaError,
    UnrecognizedSymbolError,
)
from horus.codec_compat import check_compatible
from horus.domain.events import envelope

SCHEMA_FILES = sorted(SCHEMA_DIR.glob("*.avsc"))
T0 = 1_714_000_000_000_000


def load(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())


def current_registry() -> SchemaRegistry:
    reg = SchemaRegistry()
    reg.load_dir(SCHEMA_DIR)
    return reg


def fill_record() -> dict:
    return {
        "envelope": envelope("lf:1", "chain", T0, produced_at_us=T0 + 10),
        "leader": "0x" + "a1" * 20,
        "exchange": "0x" + "e0" * 20,
        "tx_hash": "0x" + "9c" * 32,
        "block_number": 65_000_000,
        "log_index": 3,
        "token_id": str(2**255 + 1),
        "condition_id": None,
        "side": "SELL",
        "shares_e6": 2_000_000,
        "collateral_e6": 1_060_000,
        "price": "0.53",
        "fee_e6": 1_000,
        "role": "MAKER",
        "order_hashes": ["0x" + "01" * 32],
    }


def with_field(schema: dict, field: dict, after: str | None = None) -> dict:
    s = copy.deepcopy(schema)
    names = [f["name"] for f in s["fields"]]
    at = names.index(after) + 1 if after else len(names)
    s["fields"].insert(at, field)
    return s


def without_field(schema: dict, name: str) -> dict:
    s = copy.deepcopy(schema)
    s["fields"] = [f for f in s["fields"] if f["name"] != name]
    return s


def retyped(schema: dict, name: str, new_type: Any, **extra: Any) -> dict:
    s = copy.deepcopy(schema)
    for f in s["fields"]:
        if f["name"] == name:
            f["type"] = new_type
            f.update(extra)
    return s


V1 = load("LeaderFill")
# v2 adds a field with a default, in the middle of the record
V2 = with_field(V1, {"name": "builder_fee_e6", "type": "long", "default": 0, "doc": "v2: builder fee"}, after="fee_e6")


# ----------------------------------------------------------------------------- via the codec


def test_v1_bytes_read_through_v2_reader_get_the_default() -> None:
    reg = current_registry()
    old = Codec(reg).encode("LeaderFill", fill_record())
    fp1 = reg.fingerprint_of("LeaderFill")

    fp2 = reg.register(V2)  # v2 is now the newest LeaderFill
    assert fp2 != fp1 and reg.fingerprint_of("LeaderFill") == fp2

    name, rec = Codec(reg).decode(old)
    assert name == "LeaderFill"
    assert rec == {**fill_record(), "builder_fee_e6": 0}

    new = Codec(reg).encode("LeaderFill", {**fill_record(), "builder_fee_e6": 7})
    assert new[2:10] == fp2
    assert Codec(reg).decode(new)[1]["builder_fee_e6"] == 7


def test_v2_bytes_read_through_v1_reader_drop_the_field() -> None:
    writer = current_registry()
    writer.register(V2)
    new = Codec(writer).encode("LeaderFill", {**fill_record(), "builder_fee_e6": 7})

    # an old process: v1 is its newest LeaderFill; it has learned the v2 writer schema
    # (decode-only) but does not read through it
    old_reg = current_registry()
    with pytest.raises(UnknownSchemaError, match=new[2:10].hex()):
        Codec(old_reg).decode(new)
    old_reg.register(writer.self_contained("LeaderFill"), latest=False)
    assert old_reg.fingerprint_of("LeaderFill") != new[2:10]
    assert Codec(old_reg).decode(new) == ("LeaderFill", fill_record())


def test_added_field_with_default_is_compatible_both_ways() -> None:
    assert check_compatible(V1, V2) == []
    assert check_compatible(V2, V1) == []
    assert check_compatible(json.dumps(V1), json.dumps(V2)) == []


def test_reader_requiring_a_field_the_writer_lacks_is_caught() -> None:
    # v2 adds a field WITHOUT a default: v1 data cannot be read through v2
    v2_bad = with_field(V1, {"name": "venue", "type": "string"})
    problems = check_compatible(V1, v2_bad)
    assert len(problems) == 1
    assert problems[0].startswith("new reader cannot read old data")
    assert "LeaderFill.venue" in problems[0] and "default" in problems[0]

    reg = current_registry()
    old = Codec(reg).encode("LeaderFill", fill_record())
    reg.register(v2_bad)
    with pytest.raises(IncompatibleSchemaError) as ei:
        Codec(reg).decode(old)
    assert isinstance(ei.value, CodecError)
    assert "venue" in str(ei.value)


def test_removing_a_field_without_default_is_caught() -> None:
    # v2 drops fee_e6, which v1 requires (no default): v1 readers cannot read v2 data
    v2_drop = without_field(V1, "fee_e6")
    problems = check_compatible(V1, v2_drop)
    assert problems == [p for p in problems if p.startswith("old reader cannot read new data")]
    assert len(problems) == 1 and "LeaderFill.fee_e6" in problems[0]

    writer = current_registry()
    writer.register(v2_drop)
    rec = {k: v for k, v in fill_record().items() if k != "fee_e6"}
    new = Codec(writer).encode("LeaderFill", rec)
    old_reg = current_registry()
    old_reg.register(writer.self_contained("LeaderFill"), latest=False)
    with pytest.raises(CodecError, match="fee_e6"):
        Codec(old_reg).decode(new)
    # the other way round works: the v2 reader skips the dropped field
    old = Codec(old_reg).encode("LeaderFill", fill_record())
    assert Codec(writer).decode(old) == ("LeaderFill", rec)


def test_removing_a_field_with_default_is_compatible() -> None:
    # condition_id has a default (null), so it may be dropped
    assert check_compatible(V1, without_field(V1, "condition_id")) == []


def test_new_enum_symbol_is_refused_by_old_readers() -> None:
    # adding a symbol stays compatible (old readers resolve it to their UNRECOGNIZED default) ...
    assert V1_SIDE_DEFAULT == UNRECOGNIZED
    v2 = copy.deepcopy(V1)
    side = next(f for f in v2["fields"] if f["name"] == "side")
    side["type"]["symbols"].append("SPLIT")
    assert check_compatible(V1, v2) == []

    writer = current_registry()
    writer.register(v2)
    new = Codec(writer).encode("LeaderFill", {**fill_record(), "side": "SPLIT"})
    old_reg = current_registry()
    old_reg.register(writer.self_contained("LeaderFill"), latest=False)
    # ... and an old reader refuses such a record rather than read it as a real side
    with pytest.raises(UnrecognizedSymbolError, match="'side'"):
        Codec(old_reg).decode(new)
    assert Codec(old_reg).decode(Codec(writer).encode("LeaderFill", fill_record()))[1] == fill_record()

    # without an enum default the same change is reported
    v1_nodefault = copy.deepcopy(V1)
    del next(f for f in v1_nodefault["fields"] if f["name"] == "side")["type"]["default"]
    v2_nodefault = copy.deepcopy(v1_nodefault)
    next(f for f in v2_nodefault["fields"] if f["name"] == "side")["type"]["symbols"].append("SPLIT")
    problems = check_compatible(v1_nodefault, v2_nodefault)
    assert len(problems) == 1 and "SPLIT" in problems[0] and "old reader" in problems[0]


V1_SIDE_DEFAULT = next(f for f in V1["fields"] if f["name"] == "side")["type"]["default"]


def test_type_changes() -> None:
    # long -> string: incompatible both ways
    problems = check_compatible(V1, retyped(V1, "shares_e6", "string"))
    assert len(problems) == 2 and all("shares_e6" in p for p in problems)
    # int -> long: a promotion, readable one way only
    problems = check_compatible(V1, retyped(V1, "log_index", "long"))
    assert len(problems) == 1 and problems[0].startswith("old reader cannot read new data")
    # making a required field optional: old readers cannot read a null
    problems = check_compatible(V1, retyped(V1, "price", ["null", "string"], default=None))
    assert len(problems) == 1 and "old reader" in problems[0] and "price" in problems[0]
    # array item type change
    problems = check_compatible(V1, retyped(V1, "order_hashes", {"type": "array", "items": "long"}))
    assert len(problems) == 2 and all("order_hashes[]" in p for p in problems)


def test_envelope_evolution_changes_embedding_fingerprints_and_stays_readable() -> None:
    reg = current_registry()
    old = Codec(reg).encode("LeaderFill", fill_record())
    env_v2 = with_field(load("Envelope"), {"name": "trace_id", "type": ["null", "string"], "default": None})
    assert check_compatible(load("Envelope"), env_v2) == []
    reg.register(env_v2)
    fp_before = reg.fingerprint_of("LeaderFill")
    reg.register(V1)  # re-registered against the new Envelope
    assert reg.fingerprint_of("LeaderFill") != fp_before
    rec = Codec(reg).decode(old)[1]
    assert rec["envelope"]["trace_id"] is None


def test_history_dir_keeps_old_writers_decodable(tmp_path: Path) -> None:
    v1_reg = current_registry()
    old = Codec(v1_reg).encode("LeaderFill", fill_record())
    for f in SCHEMA_FILES:
        (tmp_path / f.name).write_text(f.read_text())
    (tmp_path / "LeaderFill.avsc").write_text(json.dumps(V2))
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "LeaderFill.v1.avsc").write_text(json.dumps(v1_reg.self_contained("LeaderFill")))
    reg = SchemaRegistry()
    reg.load_dir(tmp_path)
    assert reg.fingerprint_of("LeaderFill") != old[2:10]
    assert Codec(reg).decode(old) == ("LeaderFill", {**fill_record(), "builder_fee_e6": 0})


# ----------------------------------------------------------------------------- current schemas


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_current_schema_is_compatible_with_itself(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert check_compatible(schema, schema) == []


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_schema_file_conventions(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["type"] == "record"
    assert schema["name"] == path.stem, "file name must be the record name"
    assert schema["namespace"] == "horus.events"
    assert schema.get("doc"), "every record needs a short doc"
    names = [f["name"] for f in schema["fields"]]
    assert len(names) == len(set(names))
    if path.stem != "Envelope":
        assert schema["fields"][0] == {"name": "envelope", "type": "horus.events.Envelope"}
    for f in schema["fields"]:
        t = f["type"]
        if isinstance(t, list) and "null" in t:
            assert t[0] == "null" and f.get("default", "missing") is None, (
                f'{path.stem}.{f["name"]}: optional fields are ["null", T] with default null'
            )


def _walk(schema: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, schema
    if isinstance(schema, list):
        for i, s in enumerate(schema):
            yield from _walk(s, f"{path}|{i}")
    elif isinstance(schema, dict):
        if isinstance(schema.get("type"), (dict, list)):
            yield from _walk(schema["type"], path)
        for f in schema.get("fields", []):
            yield from _walk(f["type"], f"{path}.{f['name']}")
        if "items" in schema:
            yield from _walk(schema["items"], f"{path}[]")
        if "values" in schema:
            yield from _walk(schema["values"], f"{path}{{}}")


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_no_floats_and_every_enum_has_a_default(path: Path) -> None:
    schema = json.loads(path.read_text())
    enums = 0
    for where, node in _walk(schema, path.stem):
        assert node not in ("float", "double"), f"{where}: floats are forbidden, use *_e6 or a decimal string"
        if isinstance(node, dict):
            assert node.get("type") not in ("float", "double"), f"{where}: floats are forbidden"
            if node.get("type") == "enum":
                enums += 1
                assert node.get("default") in node["symbols"], (
                    f"{where}: enum {node['name']} needs a default symbol so new symbols stay readable by old readers"
                )
                if node["name"] == "ExecutionStatus":  # UNKNOWN: a real, safe status (see its doc)
                    assert node["default"] == "UNKNOWN" and UNRECOGNIZED not in node["symbols"]
                else:
                    assert node["default"] == UNRECOGNIZED, (
                        f"{where}: enum {node['name']} needs the reader-only symbol {UNRECOGNIZED} as "
                        "its default, so a symbol from a newer writer is refused, not read as a real one"
                    )
    # also on the registered (self-contained) form, which inlines referenced types
    reg = current_registry()
    for where, node in _walk(reg.self_contained(path.stem), path.stem):
        assert node not in ("float", "double"), where
        if isinstance(node, dict):
            assert node.get("type") not in ("float", "double"), where
            if node.get("type") == "enum":
                assert node.get("default") in node["symbols"], where


def test_amount_fields_are_longs() -> None:
    for path in SCHEMA_FILES:
        for f in json.loads(path.read_text())["fields"]:
            if f["name"].endswith("_e6"):
                assert f["type"] in ("long", ["null", "long"]), f"{path.stem}.{f['name']}"
            if f["name"].endswith("_us"):
                assert f["type"] in ("long", ["null", "long"]), f"{path.stem}.{f['name']}"


def test_shared_named_types_are_defined_identically() -> None:
    """Side is defined inline in several files; the definitions must not drift apart."""
    seen: dict[str, tuple[str, Any]] = {}
    for path in SCHEMA_FILES:
        for where, node in _walk(json.loads(path.read_text()), path.stem):
            if isinstance(node, dict) and node.get("type") in ("enum", "record", "fixed") and "name" in node:
                name = node["name"] if "." in node["name"] else f"horus.events.{node['name']}"
                if name in seen:
                    assert seen[name][1] == node, f"{name} differs between {seen[name][0]} and {where}"
                else:
                    seen[name] = (where, node)
    assert "horus.events.Side" in seen
