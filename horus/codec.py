"""Avro codec for Horus events: single-object encoding on fastavro.

Wire format (Avro spec, "Single-object encoding")::

    C3 01 | 8-byte CRC-64-AVRO fingerprint of the writer schema's Parsing
            Canonical Form (little-endian) | schemaless Avro binary body

A :class:`SchemaRegistry` maps fingerprints to writer schemas and names to the
newest (reader) schema; a :class:`Codec` encodes records with the newest schema
of a name and decodes any registered writer schema through the newest schema of
the same name (Avro schema resolution), so old data stays readable.

Schemas live in ``schemas/`` (one ``.avsc`` per event, namespace
``horus.events``; ``Envelope.avsc`` is loaded first because the others refer to
it by name). Writer schemas that are no longer current but may still be found
in topics can be kept, self-contained, in ``schemas/history/*.avsc``; they are
registered for decoding only (see :meth:`SchemaRegistry.self_contained`).

Enums (all but ``ExecutionStatus``, whose default UNKNOWN is a real, safe status)
have the reader-only symbol ``UNRECOGNIZED`` as their default: a symbol added by
a newer writer resolves to it in an older reader, and decode then refuses the
record (:class:`UnrecognizedSymbolError`) instead of handing on a real value it
never meant (a future ``Side`` read as BUY). Encode refuses it too.

Every failure is a :class:`CodecError` subclass with a message that says what
is wrong and how to fix it. This module imports no Kafka or database library.
Whether two versions of a schema can read each other's data is checked by
:mod:`horus.codec_compat`.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import fastavro
from fastavro.read import SchemaResolutionError as _FastavroResolutionError
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

__all__ = [
    "SCHEMA_DIR",
    "MAGIC",
    "CodecError",
    "SchemaDefinitionError",
    "UnknownSchemaError",
    "FramingError",
    "MalformedBodyError",
    "IncompatibleSchemaError",
    "RecordMismatchError",
    "UnrecognizedSymbolError",
    "UNRECOGNIZED",
    "SchemaRegistry",
    "Codec",
    "default_codec",
    "fingerprint_hex",
]

SCHEMA_DIR: Path = Path(__file__).resolve().parent.parent / "schemas"
ENVELOPE_FILE = "Envelope.avsc"
HISTORY_DIR = "history"

MAGIC = b"\xc3\x01"
_FP_LEN = 8
_HEADER_LEN = len(MAGIC) + _FP_LEN

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# reader-only enum symbol (protobuf's name for it): what a symbol from a newer writer resolves to
UNRECOGNIZED = "UNRECOGNIZED"

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})
_COMPLEX_KINDS = _NAMED_KINDS | {"array", "map"}


# --------------------------------------------------------------------------- errors


class CodecError(ValueError):
    """Base class of every codec failure."""


class SchemaDefinitionError(CodecError):
    """A schema given to the registry is invalid or refers to an unknown type."""


class UnknownSchemaError(CodecError):
    """A fingerprint (or a name) is not in the registry."""

    def __init__(self, message: str, *, fingerprint: str | None = None, name: str | None = None):
        super().__init__(message)
        self.fingerprint = fingerprint
        self.name = name


class FramingError(CodecError):
    """The bytes are not an Avro single-object message (too short or wrong magic)."""


class MalformedBodyError(CodecError):
    """The header is valid but the body does not parse with the writer schema."""


class IncompatibleSchemaError(CodecError):
    """Data written with one schema cannot be resolved into the reader schema."""


class RecordMismatchError(CodecError):
    """A record given to encode does not match its schema."""


class UnrecognizedSymbolError(CodecError):
    """The writer used an enum symbol this reader does not know (it resolved to UNRECOGNIZED)."""

    def __init__(self, message: str, *, record_type: str, field: str, enum: str):
        super().__init__(message)
        self.record_type = record_type
        self.field = field
        self.enum = enum


# --------------------------------------------------------------------------- schema helpers


def _fingerprint_of_pcf(pcf: str) -> bytes:
    # fastavro returns the CRC-64-AVRO fingerprint as hex of its little-endian bytes,
    # which is exactly the byte order single-object encoding puts on the wire.
    return bytes.fromhex(_fastavro_fingerprint(pcf, "CRC-64-AVRO"))


def _self_contained(schema: Any, named: Mapping[str, Any], seen: set[str] | None = None) -> Any:
    """Copy of a fastavro-parsed schema in which every named type is defined inline at
    its first occurrence and referred to by full name afterwards (as the Parsing
    Canonical Form requires), so the schema needs no outside context."""
    if seen is None:
        seen = set()
    if isinstance(schema, str):
        if schema in _PRIMITIVES or schema in seen:
            return schema
        try:
            definition = named[schema]
        except KeyError:
            raise SchemaDefinitionError(
                f"unknown type {schema!r}: register the schema that defines it first "
                f"(e.g. {ENVELOPE_FILE} before the event schemas)"
            ) from None
        return _self_contained(definition, named, seen)
    if isinstance(schema, list):
        return [_self_contained(s, named, seen) for s in schema]
    if not isinstance(schema, dict):
        raise SchemaDefinitionError(f"not a schema: {schema!r}")
    out = {k: v for k, v in schema.items() if not k.startswith("__")}
    kind = out.get("type")
    if kind in _NAMED_KINDS:
        seen.add(out["name"])
    if kind in ("record", "error"):
        out["fields"] = [{**f, "type": _self_contained(f["type"], named, seen)} for f in out["fields"]]
    elif kind == "array":
        out["items"] = _self_contained(out["items"], named, seen)
    elif kind == "map":
        out["values"] = _self_contained(out["values"], named, seen)
    elif isinstance(kind, (dict, list)) or (
        isinstance(kind, str) and kind not in _PRIMITIVES and kind not in _COMPLEX_KINDS
    ):
        out["type"] = _self_contained(kind, named, seen)
    return out


def _load_json(schema: dict | str) -> dict:
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as e:
            raise SchemaDefinitionError(f"schema is not valid JSON: {e}") from None
    if not isinstance(schema, dict) or schema.get("type") not in ("record", "error"):
        raise SchemaDefinitionError('a registered schema must be a JSON object with "type": "record" and a "name"')
    if not schema.get("name"):
        raise SchemaDefinitionError('a registered record schema needs a "name"')
    return schema


def _short(fullname: str) -> str:
    return fullname.rsplit(".", 1)[-1]


# --------------------------------------------------------------------------- encode-side checks
#
# fastavro's writer is lenient (it truncates 1.5 to 1 in a long field and reports enum
# errors without the field), and its validator is slow, so each schema is compiled once
# into closures that check a record exactly and report the path of the first bad field.


class _Mismatch(Exception):
    __slots__ = ("path", "msg")

    def __init__(self, msg: str, path: list[str] | None = None):
        super().__init__(msg)
        self.msg = msg
        self.path = path if path is not None else []


def _describe(v: Any) -> str:
    r = repr(v)
    if len(r) > 60:
        r = r[:57] + "..."
    return f"{type(v).__name__} {r}"


def _integer_checker(kind: str, lo: int, hi: int) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if (type(v) is int or (isinstance(v, int) and not isinstance(v, bool))) and lo <= v <= hi:
            return
        if isinstance(v, int) and not isinstance(v, bool):
            raise _Mismatch(f"{kind} out of range [{lo}, {hi}]: {v}")
        hint = ""
        if isinstance(v, float) or type(v).__name__ == "Decimal":
            hint = (
                "; amounts are integers in base units (6 decimals for *_e6): convert exactly, "
                "e.g. int(Decimal(x) * 10**6), never through float"
            )
        elif isinstance(v, str):
            hint = "; pass an int, not a string"
        raise _Mismatch(f"expected {kind} (an int), got {_describe(v)}{hint}")

    return check


def _compile_checker(schema: Any, named: Mapping[str, Any], cache: dict[str, Callable]) -> Callable:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _compile_primitive(schema)
        if schema in cache:
            return cache[schema]
        return _compile_checker(named[schema], named, cache)
    if isinstance(schema, list):
        return _compile_union(schema, named, cache)
    kind = schema["type"]
    if isinstance(kind, (dict, list)):
        return _compile_checker(kind, named, cache)
    if kind in _PRIMITIVES:
        return _compile_primitive(kind)
    if kind in ("record", "error"):
        return _compile_record(schema, named, cache)
    if kind == "enum":
        return _compile_enum(schema, cache)
    if kind == "fixed":
        return _compile_fixed(schema, cache)
    if kind == "array":
        return _compile_array(schema, named, cache)
    if kind == "map":
        return _compile_map(schema, named, cache)
    if isinstance(kind, str) and kind in cache:
        return cache[kind]
    if isinstance(kind, str) and kind in named:
        return _compile_checker(named[kind], named, cache)
    raise SchemaDefinitionError(f"unsupported schema for encoding: {schema!r}")


def _compile_enum(schema: dict, cache: dict[str, Callable]) -> Callable:
    symbols = frozenset(schema["symbols"]) - {UNRECOGNIZED}
    ename = _short(schema["name"])
    shown = ", ".join(s for s in schema["symbols"] if s != UNRECOGNIZED)

    def check_enum(v: Any) -> None:
        if isinstance(v, str) and v in symbols:
            return
        if v == UNRECOGNIZED:
            raise _Mismatch(
                f"{UNRECOGNIZED} is reader-only in enum {ename} (what a symbol from a newer "
                f"schema reads as); a writer never writes it: use one of {shown}"
            )
        raise _Mismatch(f"expected a symbol of enum {ename} ({shown}), got {_describe(v)}")

    cache[schema["name"]] = check_enum
    return check_enum


def _compile_fixed(schema: dict, cache: dict[str, Callable]) -> Callable:
    size = schema["size"]

    def check_fixed(v: Any) -> None:
        if isinstance(v, (bytes, bytearray)) and len(v) == size:
            return
        raise _Mismatch(f"expected {size} bytes (fixed), got {_describe(v)}")

    cache[schema["name"]] = check_fixed
    return check_fixed


def _compile_array(schema: dict, named: Mapping[str, Any], cache: dict[str, Callable]) -> Callable:
    item = _compile_checker(schema["items"], named, cache)

    def check_array(v: Any) -> None:
        if not isinstance(v, (list, tuple)):
            raise _Mismatch(f"expected a list (array), got {_describe(v)}")
        for i, x in enumerate(v):
            try:
                item(x)
            except _Mismatch as e:
                e.path.append(f"[{i}]")
                raise

    return check_array


def _compile_map(schema: dict, named: Mapping[str, Any], cache: dict[str, Callable]) -> Callable:
    value = _compile_checker(schema["values"], named, cache)

    def check_map(v: Any) -> None:
        if not isinstance(v, Mapping):
            raise _Mismatch(f"expected a dict (map), got {_describe(v)}")
        for k, x in v.items():
            if not isinstance(k, str):
                raise _Mismatch(f"map keys must be str, got {_describe(k)}")
            try:
                value(x)
            except _Mismatch as e:
                e.path.append(f"[{k!r}]")
                raise

    return check_map


def _compile_primitive(kind: str) -> Callable[[Any], None]:
    if kind == "long":
        return _integer_checker("long", _LONG_MIN, _LONG_MAX)
    if kind == "int":
        return _integer_checker("int", _INT_MIN, _INT_MAX)
    return _PRIMITIVE_CHECKS.get(kind) or _number_checker(kind)


def _check_string(v: Any) -> None:
    if not isinstance(v, str):
        raise _Mismatch(f"expected a str, got {_describe(v)}")


def _check_bytes(v: Any) -> None:
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise _Mismatch(f"expected bytes, got {_describe(v)}")


def _check_null(v: Any) -> None:
    if v is not None:
        raise _Mismatch(f"expected None, got {_describe(v)}")


def _check_bool(v: Any) -> None:
    if type(v) is not bool:
        raise _Mismatch(f"expected a bool, got {_describe(v)}")


_PRIMITIVE_CHECKS: dict[str, Callable[[Any], None]] = {
    "string": _check_string,
    "bytes": _check_bytes,
    "null": _check_null,
    "boolean": _check_bool,
}


def _number_checker(kind: str) -> Callable[[Any], None]:
    # float / double: not used by Horus schemas (amounts are exact), supported for completeness.
    def check_float(v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Mismatch(f"expected a number ({kind}), got {_describe(v)}")

    return check_float


def _branch_label(s: Any) -> str:
    if isinstance(s, str):
        return _short(s)
    if isinstance(s, dict):
        return _short(s.get("name") or str(s.get("type")))
    return "union"


def _compile_union(branches: list, named: Mapping[str, Any], cache: dict[str, Callable]) -> Callable:
    checks = [_compile_checker(b, named, cache) for b in branches]
    labels = ", ".join(_branch_label(b) for b in branches)
    nullable = "null" in branches
    others = [c for b, c in zip(branches, checks, strict=True) if b != "null"]

    if nullable and len(others) == 1:
        inner = others[0]

        def check_optional(v: Any) -> None:
            if v is None:
                return
            try:
                inner(v)
            except _Mismatch as e:
                if e.path or not e.msg.startswith("expected "):
                    raise
                raise _Mismatch("expected None or " + e.msg[len("expected ") :]) from None

        return check_optional

    def check_union(v: Any) -> None:
        for c in checks:
            try:
                c(v)
                return
            except _Mismatch:
                continue
        raise _Mismatch(f"expected one of {labels}, got {_describe(v)}")

    return check_union


_MISSING = object()


def _compile_record(schema: dict, named: Mapping[str, Any], cache: dict[str, Callable]) -> Callable:
    name = schema["name"]
    cell: list[Callable] = []

    def check_ref(v: Any) -> None:  # supports recursive records
        cell[0](v)

    cache[name] = check_ref
    fields = []
    for f in schema["fields"]:
        ftype = f["type"]
        optional = "default" in f or ftype == "null" or (isinstance(ftype, list) and "null" in ftype)
        fields.append((f["name"], _compile_checker(ftype, named, cache), optional))
    fields_t = tuple(fields)
    names = frozenset(f[0] for f in fields)
    rname = _short(name)
    missing = _MISSING

    def check_record(v: Any) -> None:
        if type(v) is not dict and not isinstance(v, Mapping):
            raise _Mismatch(f"expected a dict (record {rname}), got {_describe(v)}")
        get = v.get
        for fname, check, optional in fields_t:
            x = get(fname, missing)
            if x is missing:
                if optional:
                    continue
                raise _Mismatch("required field is missing (it has no default)", [fname])
            try:
                check(x)
            except _Mismatch as e:
                e.path.append(fname)
                raise
        if not names.issuperset(v):
            extra = ", ".join(sorted(map(str, set(v) - names)))
            raise _Mismatch(
                f"record {rname} has fields its schema does not define: {extra} "
                "(remove them, or add them to the schema with a default)"
            )

    cell.append(check_record)
    cache[name] = check_record
    return check_record


# --------------------------------------------------------------------------- decode-side check
#
# Compiled once per reader schema: a finder returns (field path, enum name) of the first value
# that resolved to UNRECOGNIZED, or None. Only the parts of a schema that can hold such an enum
# are visited, so for LeaderFill the check is two dict lookups. A string in a union that also
# holds such an enum and equals "UNRECOGNIZED" is refused too (the safe side of the ambiguity).

_Finder = Callable[[Any], "tuple[tuple[str, ...], str] | None"]


def _compile_unrecognized(schema: Any, named: Mapping[str, Any], cache: dict) -> _Finder | str | None:
    """None: the schema cannot hold UNRECOGNIZED; a str (the enum name): the value itself is
    such an enum symbol; else a finder for values of the schema."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return None
        if schema in cache:
            return cache[schema]
        return _compile_unrecognized(named[schema], named, cache)
    if isinstance(schema, list):
        return _unrecognized_in_union(schema, named, cache)
    kind = schema["type"]
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind in named):
        return _compile_unrecognized(kind, named, cache)
    if kind == "enum":
        return _short(schema["name"]) if UNRECOGNIZED in schema["symbols"] else None
    if kind in ("record", "error"):
        return _unrecognized_in_record(schema, named, cache)
    if kind in ("array", "map"):
        return _unrecognized_in_items(schema, named, cache)
    return None


def _unrecognized_in_union(branches: list, named: Mapping[str, Any], cache: dict) -> _Finder | str | None:
    parts = [p for p in (_compile_unrecognized(b, named, cache) for b in branches) if p is not None]
    enums = "|".join(p for p in parts if isinstance(p, str))
    finders = [p for p in parts if not isinstance(p, str)]
    if not finders:
        return enums or None

    def find_union(v: Any) -> tuple[tuple[str, ...], str] | None:
        if enums and v == UNRECOGNIZED:
            return (), enums
        for find in finders:
            hit = find(v)
            if hit is not None:
                return hit
        return None

    return find_union


def _unrecognized_in_record(schema: dict, named: Mapping[str, Any], cache: dict) -> _Finder | None:
    cell: list[_Finder | None] = [None]
    cache[schema["name"]] = lambda v: cell[0](v) if cell[0] is not None else None  # recursion
    direct, nested = [], []
    for f in schema["fields"]:
        part = _compile_unrecognized(f["type"], named, cache)
        if isinstance(part, str):
            direct.append((f["name"], part))
        elif part is not None:
            nested.append((f["name"], part))
    if not direct and not nested:
        cache[schema["name"]] = None
        return None
    direct_t, nested_t = tuple(direct), tuple(nested)

    def find_record(v: Any) -> tuple[tuple[str, ...], str] | None:
        if type(v) is not dict:
            return None
        for fname, ename in direct_t:
            if v[fname] == UNRECOGNIZED:
                return (fname,), ename
        for fname, find in nested_t:
            hit = find(v[fname])
            if hit is not None:
                return (fname, *hit[0]), hit[1]
        return None

    cell[0] = find_record
    cache[schema["name"]] = find_record
    return find_record


def _unrecognized_in_items(schema: dict, named: Mapping[str, Any], cache: dict) -> _Finder | None:
    kind = schema["type"]
    part = _compile_unrecognized(schema["items"] if kind == "array" else schema["values"], named, cache)
    if part is None:
        return None
    is_list = kind == "array"

    def find_items(v: Any) -> tuple[tuple[str, ...], str] | None:
        for k, x in enumerate(v) if is_list else v.items():
            hit: tuple[tuple[str, ...], str] | None
            if isinstance(part, str):
                hit = ((), part) if x == UNRECOGNIZED else None
            else:
                hit = part(x)
            if hit is not None:
                return (f"[{k!r}]", *hit[0]), hit[1]
        return None

    return find_items


# --------------------------------------------------------------------------- registry


class _Entry:
    __slots__ = ("fullname", "short", "fp", "header", "schema", "parsed", "pcf", "find_unrecognized")

    def __init__(self, fullname: str, fp: bytes, schema: dict, parsed: dict, pcf: str):
        self.fullname = fullname
        self.short = _short(fullname)
        self.fp = fp
        self.header = MAGIC + fp
        self.schema = schema  # self-contained JSON form (keeps docs, defaults, aliases)
        self.parsed = parsed  # fastavro-parsed, self-contained
        self.pcf = pcf
        found = _compile_unrecognized(parsed, parsed.get("__named_schemas", {}), {})
        self.find_unrecognized = found if callable(found) else None  # a record is never a bare enum


class SchemaRegistry:
    """Writer schemas by fingerprint, and the newest schema of each record name."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._named: dict[str, Any] = {}  # full name -> parsed definition, for name references
        self._by_fp: dict[bytes, _Entry] = {}
        self._latest: dict[str, _Entry] = {}  # full name -> newest entry
        self._short: dict[str, set[str]] = {}  # short name -> full names
        # plans cached for the codec; cleared whenever the registry changes
        self._enc_plans: dict[str, tuple] = {}
        self._dec_plans: dict[bytes, tuple] = {}

    # ---- registration

    def _prepare(self, schema: dict | str) -> tuple[str, dict, dict[str, Any]]:
        """Parse a schema against the registry's named types. Returns (full name,
        self-contained schema, named types known while parsing)."""
        raw = copy.deepcopy(_load_json(schema))
        named = dict(self._named)
        try:
            # a schema given as a JSON object parses to a JSON object (fastavro types any schema's result)
            parsed = cast(dict[str, Any], fastavro.parse_schema(raw, named))
        except CodecError:
            raise
        except Exception as e:
            raise SchemaDefinitionError(
                f"invalid schema {raw.get('name')!r}: {e}. Referenced named types must be "
                f"registered first (known: {', '.join(sorted(self._named)) or 'none'})"
            ) from None
        return parsed["name"], _self_contained(parsed, named), named

    def register(self, schema: dict | str, *, latest: bool = True) -> bytes:
        """Register a record schema (dict or JSON text); return its 8-byte fingerprint.

        Named types it refers to must already be registered. With ``latest`` (the
        default) the schema becomes the newest of its name: encode writes it and decode
        reads every older version of the name through it. ``latest=False`` registers a
        writer schema for decoding only (e.g. a historical version); it must then be
        self-contained. Registering a known fingerprint again is idempotent, except that
        ``latest=True`` makes it the newest again.
        """
        with self._lock:
            fullname, selfc, named = self._prepare(schema)
            pcf = to_parsing_canonical_form(selfc)
            fp = _fingerprint_of_pcf(pcf)
            known = self._by_fp.get(fp)
            if known is not None and known.fullname != fullname:  # pragma: no cover - 2**-64
                raise SchemaDefinitionError(f"fingerprint {fp.hex()} of {fullname} collides with {known.fullname}")
            if known is not None and not latest:
                return fp
            try:
                # a schema given as a JSON object parses to a JSON object (fastavro types any schema's result)
                parsed = cast(dict[str, Any], fastavro.parse_schema(copy.deepcopy(selfc), {}))
            except Exception as e:  # pragma: no cover - _prepare already parsed it
                raise SchemaDefinitionError(f"invalid schema {fullname!r}: {e}") from None
            entry = _Entry(fullname, fp, selfc, parsed, pcf)
            self._by_fp[fp] = entry
            if latest:
                self._latest[fullname] = entry
                self._short.setdefault(entry.short, set()).add(fullname)
                # later schemas referring to these names get the newest definitions
                for name, definition in parsed.get("__named_schemas", {}).items():
                    self._named[name] = named.get(name, definition)
            elif fullname not in self._latest:
                self._short.setdefault(entry.short, set()).add(fullname)
            self._enc_plans = {}
            self._dec_plans = {}
            return fp

    def load_dir(self, path: Path) -> None:
        """Register ``history/*.avsc`` (decode-only, self-contained), then ``Envelope.avsc``,
        then every other ``*.avsc`` in ``path`` as the newest schemas."""
        path = Path(path)
        if not path.is_dir():
            raise SchemaDefinitionError(f"schema directory {path} does not exist")
        history = path / HISTORY_DIR
        if history.is_dir():
            for f in sorted(history.glob("*.avsc")):
                try:
                    self.register(f.read_text(encoding="utf-8"), latest=False)
                except CodecError as e:
                    raise SchemaDefinitionError(
                        f"{f}: {e} (history schemas must be self-contained; write them from "
                        "SchemaRegistry.self_contained(name))"
                    ) from None
        files = sorted(path.glob("*.avsc"), key=lambda p: (p.name != ENVELOPE_FILE, p.name))
        pending = files
        while pending:  # a file referring to a type defined by a later file is retried
            failed: list[tuple[Path, CodecError]] = []
            for f in pending:
                try:
                    self.register(f.read_text(encoding="utf-8"))
                except CodecError as e:
                    failed.append((f, e))
            if len(failed) == len(pending):
                first_file, first_error = failed[0]
                raise SchemaDefinitionError(f"{first_file}: {first_error}") from None
            pending = [f for f, _ in failed]

    # ---- lookup

    def _entry(self, name: str) -> _Entry:
        entry = self._latest.get(name)
        if entry is not None:
            return entry
        fulls = self._short.get(name, ())
        candidates = [self._latest[n] for n in fulls if n in self._latest]
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise UnknownSchemaError(
                f"schema name {name!r} is ambiguous ({', '.join(sorted(fulls))}); use the full name", name=name
            )
        known = ", ".join(sorted(e.short for e in self._latest.values())) or "none"
        raise UnknownSchemaError(
            f"no schema named {name!r} is registered (known: {known}); add schemas/{name}.avsc or register it",
            name=name,
        )

    def writer_for(self, name: str) -> dict:
        """The newest registered schema of a name (short or full), fastavro-parsed."""
        return self._entry(name).parsed

    def fingerprint_of(self, name: str) -> bytes:
        """8-byte fingerprint of the newest schema of a name (short or full)."""
        return self._entry(name).fp

    def self_contained(self, name: str) -> dict:
        """The newest schema of a name as self-contained JSON-able dict (named types
        inlined); the form to keep in ``schemas/history/`` when changing a schema."""
        return copy.deepcopy(self._entry(name).schema)

    def names(self) -> list[str]:
        """Full names of the schemas that have a newest version."""
        return sorted(self._latest)

    def __contains__(self, fp: object) -> bool:
        return fp in self._by_fp

    # ---- plans for the codec

    def _encode_plan(self, name: str) -> tuple:
        with self._lock:
            entry = self._entry(name)
            check = _compile_checker(entry.parsed, entry.parsed.get("__named_schemas", {}), {})
            plan = (entry.header, entry.parsed, check, entry.short)
            self._enc_plans[name] = plan
            return plan

    def _decode_plan(self, fp: bytes) -> tuple:
        with self._lock:
            writer = self._by_fp.get(fp)
            if writer is None:
                hexfp = fp.hex()
                raise UnknownSchemaError(
                    f"unknown writer schema fingerprint {hexfp}: the message was written with a "
                    "schema this process has not registered; deploy the schema (or keep the old "
                    "version in schemas/history/) and retry",
                    fingerprint=hexfp,
                )
            reader = self._latest.get(writer.fullname, writer)
            plan = (
                writer.short,
                writer.parsed,
                None if reader is writer or reader.fp == writer.fp else reader.parsed,
                reader.find_unrecognized,
            )
            self._dec_plans[fp] = plan
            return plan


# --------------------------------------------------------------------------- codec


class Codec:
    """Encode/decode Horus events as Avro single-object messages."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        if registry is None:
            registry = SchemaRegistry()
            registry.load_dir(SCHEMA_DIR)
        self.registry = registry

    def encode(self, name: str, record: dict) -> bytes:
        """Encode ``record`` with the newest schema named ``name`` (short or full)."""
        reg = self.registry
        plan = reg._enc_plans.get(name)
        if plan is None:
            plan = reg._encode_plan(name)
        header, parsed, check, short = plan
        try:
            check(record)
        except _Mismatch as e:
            path = ".".join(reversed(e.path)).replace(".[", "[")
            where = f"field {path!r}: " if path else ""
            raise RecordMismatchError(
                f"cannot encode {short}: {where}{e.msg}. Fix the value to match the {short} schema."
            ) from None
        buf = io.BytesIO()
        buf.write(header)
        try:
            fastavro.schemaless_writer(buf, parsed, record)
        except Exception as e:  # checker passed, so this is unexpected; keep it typed
            raise RecordMismatchError(f"cannot encode {short}: {e}") from e
        return buf.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict]:
        """Decode a single-object message; returns (short name, record) read through the
        newest registered schema of the writer schema's name."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise FramingError(f"expected bytes to decode, got {type(data).__name__}")
        n = len(data)
        if n >= 2 and (data[0] != 0xC3 or data[1] != 0x01):
            raise FramingError(
                f"wrong magic {bytes(data[:2]).hex()} (expected c301): not an Avro single-object "
                "message; it was produced by something other than horus.codec"
            )
        if n < _HEADER_LEN:
            raise FramingError(
                f"message too short ({n} bytes): an Avro single-object message needs at "
                f"least {_HEADER_LEN} bytes (C3 01 + 8-byte fingerprint); it was truncated "
                "or is not a Horus event"
            )
        fp = bytes(data[2:_HEADER_LEN])
        plan = self.registry._dec_plans.get(fp)
        if plan is None:
            plan = self.registry._decode_plan(fp)
        short, writer, reader, find_unrecognized = plan
        fo = io.BytesIO(data)
        fo.seek(_HEADER_LEN)
        try:
            # every registered schema is a record, read as a dict (fastavro types any Avro value)
            record = cast(dict[str, Any], fastavro.schemaless_reader(fo, writer, reader))
        except _FastavroResolutionError as e:
            raise IncompatibleSchemaError(
                f"cannot read {short} written with schema {fp.hex()} through the newest "
                f"{short} schema: {e}. A field the reader needs is missing from the writer "
                "schema and has no default; give it a default"
            ) from None
        except Exception as e:
            raise MalformedBodyError(
                f"{short} body ({n - _HEADER_LEN} bytes, schema {fp.hex()}) does not parse: "
                f"{type(e).__name__}: {str(e) or 'unexpected end of data'}; the message is truncated "
                "or corrupt"
            ) from None
        if fo.tell() != n:
            raise MalformedBodyError(
                f"{short} body has {n - fo.tell()} trailing bytes after the record (schema "
                f"{fp.hex()}); the message is corrupt or was framed with the wrong fingerprint"
            )
        if find_unrecognized is not None:
            hit = find_unrecognized(record)
            if hit is not None:
                field = ".".join(hit[0]).replace(".[", "[")
                raise UnrecognizedSymbolError(
                    f"{short} field {field!r}: the writer (schema {fp.hex()}) used a symbol of enum "
                    f"{hit[1]} that this reader does not know, so it is refused rather than read as "
                    f"another value; upgrade this service to the newer {short} schema",
                    record_type=short,
                    field=field,
                    enum=hit[1],
                )
        return short, record

    def encode_many(self, name: str, records: Iterable[dict]) -> list[bytes]:
        encode = self.encode
        return [encode(name, r) for r in records]

    def decode_many(self, datas: Iterable[bytes]) -> list[tuple[str, dict]]:
        decode = self.decode
        return [decode(d) for d in datas]


@functools.cache
def default_codec() -> Codec:
    """A process-wide codec over the schemas in :data:`SCHEMA_DIR`."""
    return Codec()


def fingerprint_hex(data: bytes) -> str | None:
    """Hex writer-schema fingerprint of an encoded message (wire byte order, as
    UnknownSchemaError reports it), or None if ``data`` is not single-object framed."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < _HEADER_LEN:
        return None
    if data[0] != 0xC3 or data[1] != 0x01:
        return None
    return bytes(data[2:_HEADER_LEN]).hex()
