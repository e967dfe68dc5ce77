"""Bound a JSON text's nesting depth and size BEFORE it is parsed.

`json.loads` recurses once per nesting level on the C stack. Python's recursion limit is meant to turn a
deep document into a RecursionError first, but a library may raise that limit (py_ecc, imported with the
chain code, sets it to 100,000), and a thread's stack is small: one ~200 KB document of nested arrays then
overflows the stack and the whole process dies with SIGSEGV, no traceback. So JSON from the outside (the
broker, a file) is scanned first by this small iterative scanner, which refuses it with a clear error when
it is nested deeper or is larger than its caller allows. Never rely on the recursion limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

# a JSON string, escapes included (possessive: no backtracking); brackets inside strings do not nest
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class UnsafeJson(ValueError):
    """A JSON text nested deeper or larger than allowed (nothing was parsed)."""


def check_json(text: str | bytes, *, max_depth: int, max_bytes: int) -> None:
    """Raise UnsafeJson if `text` is longer than `max_bytes` (characters for a str) or opens more than
    `max_depth` arrays/objects inside each other. Only depth and size are judged: what else is wrong with
    the text is for the parser to say. An unterminated string hides nothing (its brackets count)."""
    if len(text) > max_bytes:
        raise UnsafeJson(f"JSON text of {len(text)} bytes is larger than {max_bytes}")
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "replace")
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise UnsafeJson(f"JSON text is nested deeper than {max_depth} levels")
        else:
            depth -= 1


def loads_bounded(text: str | bytes, *, max_depth: int, max_bytes: int) -> Any:
    """json.loads after check_json: UnsafeJson for a deep or large text, ValueError for one that is not JSON."""
    check_json(text, max_depth=max_depth, max_bytes=max_bytes)
    return json.loads(text)
