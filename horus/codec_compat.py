"""Schema compatibility: can data written with one version of an Avro record schema be read through another?

:func:`check_compatible` answers it both ways (full compatibility: an old reader reads new data and a new reader
reads old data) for two versions of a Horus event schema, and :func:`reader_problems` one way. Each problem is a
sentence naming the field path and the fix. The rules are Avro's schema resolution: promotions (int -> long,
float, double; long -> float, double; float -> double; string <-> bytes), unions resolved branch by branch,
record fields matched by name or alias (a reader field the writer lacks needs a default), enum symbols the reader
lacks need a reader default, fixed sizes equal, named types matched by name or alias.

Kept apart from :mod:`horus.codec`, which encodes and decodes (resolving old data through fastavro): this is for
whoever changes a schema, and for the tests that hold the schemas to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from horus.codec import _COMPLEX_KINDS, _NAMED_KINDS, _PRIMITIVES, SchemaRegistry, _short, default_codec

__all__ = ["check_compatible", "reader_problems"]

_PROMOTIONS = frozenset(
    {
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    }
)  # (writer, reader)


def check_compatible(old: dict | str, new: dict | str, *, registry: SchemaRegistry | None = None) -> list[str]:
    """Full (backward and forward) compatibility of two versions of a record schema.

    Returns the problems found; an empty list means data written with ``old`` is
    readable through ``new`` and data written with ``new`` is readable through ``old``.
    Named types that the schemas refer to (e.g. ``horus.events.Envelope``) are resolved
    against ``registry``, by default the registry of :func:`~horus.codec.default_codec`.
    """
    reg = registry if registry is not None else default_codec().registry
    _, old_sc, _ = reg._prepare(old)
    _, new_sc, _ = reg._prepare(new)
    problems = [f"new reader cannot read old data: {p}" for p in reader_problems(new_sc, old_sc)]
    problems += [f"old reader cannot read new data: {p}" for p in reader_problems(old_sc, new_sc)]
    return problems


def reader_problems(reader: dict, writer: dict) -> list[str]:
    """Problems reading data written with ``writer`` through ``reader`` (both
    self-contained, as :meth:`SchemaRegistry.self_contained` returns); empty = readable."""
    comparison = _Comparison(_collect_defs(reader, {}), _collect_defs(writer, {}))
    root = _short(reader["name"]) if isinstance(reader, dict) and "name" in reader else "<root>"
    comparison.compare(reader, writer, root)
    return comparison.problems


class _Comparison:
    """One reader-against-writer walk: the named types of each side, the record pairs already compared (so a
    recursive schema ends), and the problems found so far, in schema order."""

    def __init__(self, reader_defs: Mapping[str, dict], writer_defs: Mapping[str, dict]) -> None:
        self.reader_defs = reader_defs
        self.writer_defs = writer_defs
        self.seen: set[tuple[int, int]] = set()
        self.problems: list[str] = []

    def compare(self, reader: Any, writer: Any, path: str) -> None:
        r = _deref(reader, self.reader_defs)
        w = _deref(writer, self.writer_defs)
        if isinstance(w, list):  # every branch the writer may have written must be readable
            for wb in w:
                self.compare(r, wb, path)
            return
        if isinstance(r, list):
            self._into_union(r, w, path)
            return
        rk, wk = _kind(r), _kind(w)
        if rk != wk:
            if (wk, rk) not in _PROMOTIONS:
                self.problems.append(f"{path}: writer type {_label(w)} cannot be read as {_label(r)}")
            return
        if rk in ("record", "enum", "fixed") and not _names_match(r, w):
            self.problems.append(f"{path}: writer {_label(w)} and reader {_label(r)} have different names")
            return
        if rk == "record":
            self._record(r, w, path)
        elif rk == "enum":
            self._enum(r, w, path)
        elif rk == "fixed":
            if r["size"] != w["size"]:
                self.problems.append(f"{path}: fixed size {w['size']} cannot be read as size {r['size']}")
        elif rk == "array":
            self.compare(r["items"], w["items"], f"{path}[]")
        elif rk == "map":
            self.compare(r["values"], w["values"], f"{path}{{}}")

    def _into_union(self, reader_branches: list, w: Any, path: str) -> None:
        """A writer value read through a reader union: the first branch that matches it reads it."""
        for rb in reader_branches:
            rbd = _deref(rb, self.reader_defs)
            if _shallow_match(rbd, w):
                self.compare(rbd, w, path)
                return
        self.problems.append(
            f"{path}: writer type {_label(w)} matches no branch of the reader union "
            f"({', '.join(_label(_deref(b, self.reader_defs)) for b in reader_branches)})"
        )

    def _record(self, r: dict, w: dict, path: str) -> None:
        """Each reader field from the writer's field of its name (or an alias), else from its default."""
        key = (id(r), id(w))
        if key in self.seen:
            return
        self.seen.add(key)
        wfields = {f["name"]: f for f in w["fields"]}
        for rf in r["fields"]:
            wf = wfields.get(rf["name"])
            if wf is None:
                for alias in rf.get("aliases") or ():
                    wf = wfields.get(alias)
                    if wf is not None:
                        break
            fpath = f"{path}.{rf['name']}"
            if wf is not None:
                self.compare(rf["type"], wf["type"], fpath)
            elif "default" not in rf:
                self.problems.append(
                    f"{fpath}: the reader requires this field, the writer does not have it "
                    "and the reader gives no default (add a default)"
                )

    def _enum(self, r: dict, w: dict, path: str) -> None:
        missing = [s for s in w["symbols"] if s not in r["symbols"]]
        if missing and "default" not in r:
            self.problems.append(
                f"{path}: writer enum symbols {missing} are unknown to the reader enum "
                f"{_short(r['name'])}, which has no default symbol"
            )


def _collect_defs(schema: Any, defs: dict[str, dict]) -> dict[str, dict]:
    if isinstance(schema, list):
        for s in schema:
            _collect_defs(s, defs)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in _NAMED_KINDS:
            defs.setdefault(schema["name"], schema)
        if kind in ("record", "error"):
            for f in schema["fields"]:
                _collect_defs(f["type"], defs)
        elif kind == "array":
            _collect_defs(schema["items"], defs)
        elif kind == "map":
            _collect_defs(schema["values"], defs)
        elif isinstance(kind, (dict, list)):
            _collect_defs(kind, defs)
    return defs


def _deref(s: Any, defs: Mapping[str, dict]) -> Any:
    while True:
        if isinstance(s, str):
            if s in _PRIMITIVES:
                return s
            return defs[s]
        if isinstance(s, dict):
            kind = s.get("type")
            if isinstance(kind, (dict, list)) or (
                isinstance(kind, str) and kind not in _PRIMITIVES and kind not in _COMPLEX_KINDS
            ):
                s = kind
                continue
            if kind in _PRIMITIVES:
                return kind
        return s


def _kind(s: Any) -> str:
    if isinstance(s, str):
        return s
    if isinstance(s, list):
        return "union"
    return "record" if s["type"] == "error" else s["type"]


def _label(s: Any) -> str:
    k = _kind(s)
    if k in ("record", "enum", "fixed"):
        return f"{k} {_short(s['name'])}"
    return k


def _names_match(r: dict, w: dict) -> bool:
    if r["name"] == w["name"] or _short(r["name"]) == _short(w["name"]):
        return True
    aliases = r.get("aliases") or ()
    return w["name"] in aliases or _short(w["name"]) in {_short(a) for a in aliases}


def _shallow_match(r: Any, w: Any) -> bool:
    rk, wk = _kind(r), _kind(w)
    if rk != wk:
        return (wk, rk) in _PROMOTIONS
    if rk in ("record", "enum", "fixed"):
        return _names_match(r, w)
    return True
