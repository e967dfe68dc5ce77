"""JSON from the broker is bounded in nesting depth and size BEFORE it is parsed.

The hostile-input run found that one FOLLOW change whose body is ~200 KB of nested arrays killed the whole
worker with signal 11: importing the chain code (py_ecc) raises Python's recursion limit to 100,000, and
json.loads on a config tail's thread then overflows the C stack instead of raising RecursionError.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from horus.domain.config import (
    BODY_MAX_BYTES,
    BODY_MAX_DEPTH,
    ConfigInvalid,
    ConfigState,
    apply_config,
    load_body_json,
    parse_follow_config,
)
from horus.domain.follow_graph import ConfigError, FollowGraph, apply_config_change
from horus.domain.json_guard import UnsafeJson, check_json, loads_bounded

FOLLOW = {
    "follow_id": "f1",
    "follower": "0x" + "1" * 40,
    "leader": "0x" + "a" * 40,
    "sizing": {"mode": "fixed", "amount": "5"},
    "markets_allow": ["tag:nba"],
}


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        "[]",
        "1",
        '"x"',
        json.dumps(FOLLOW),
        nested(8),
        '{"a": [{"b": [[1]]}]}',
        json.dumps({"s": "[[[[[[[[[[[[{{{{{{{{{{{{"}),  # brackets inside strings do not nest
        json.dumps({"s": 'quote \\" then [[[[[[[[[[[[[['}),  # nor after an escaped quote
        "not json at all [[",  # depth and size only: json.loads still says what else is wrong
    ],
)
def test_shallow_small_json_passes_the_guard(text):
    check_json(text, max_depth=8, max_bytes=10_000)
    check_json(text.encode(), max_depth=8, max_bytes=10_000)


@pytest.mark.parametrize(
    "text, needle",
    [
        (nested(9), "nested deeper than 8"),
        ('{"a":' * 9 + "1" + "}" * 9, "nested deeper than 8"),
        ('"' + "x" * 10_001 + '"', "larger than 10000"),
        (nested(100_000), "larger than 10000"),
        ('"abc' + "[" * 20, "nested deeper than 8"),  # an unterminated string hides nothing
    ],
)
def test_deep_or_large_json_is_refused_with_a_clear_error(text, needle):
    with pytest.raises(UnsafeJson, match=needle):
        check_json(text, max_depth=8, max_bytes=10_000)
    with pytest.raises(UnsafeJson):
        loads_bounded(text, max_depth=8, max_bytes=10_000)


def test_loads_bounded_parses_what_passes():
    assert loads_bounded(json.dumps(FOLLOW), max_depth=8, max_bytes=10_000) == FOLLOW


def test_config_bodies_are_bounded_everywhere_they_are_parsed():
    bomb = nested(100_000)
    assert len(bomb) < BODY_MAX_BYTES  # refused for its depth, not its size
    with pytest.raises(ConfigInvalid, match=f"nested deeper than {BODY_MAX_DEPTH}"):
        load_body_json(bomb)
    with pytest.raises(ConfigInvalid, match="nested deeper"):
        parse_follow_config(bomb)
    change = {"envelope": {}, "entity": "FOLLOW", "entity_id": "f1", "op": "UPSERT", "body": bomb}
    state = ConfigState()
    with pytest.raises(ConfigInvalid, match="nested deeper"):
        apply_config(change, state)
    assert "nested deeper" in state.invalid["f1"]
    with pytest.raises(ConfigError, match="nested deeper"):
        apply_config_change(change, FollowGraph())
    with pytest.raises(ConfigInvalid, match="larger than"):
        parse_follow_config(json.dumps({**FOLLOW, "markets_allow": ["tag:x" * 100] * (BODY_MAX_BYTES // 500)}))


# The worker's conditions: the chain code imported (py_ecc sets the recursion limit to 100,000), the config
# change decoded from its Avro bytes and folded on a thread of its own, by the folds the config tails run.
BOMB_SCRIPT = textwrap.dedent("""
    import sys, threading
    import horus.ingest.chain  # noqa: F401  (what the execute service imports: web3 -> py_ecc)
    assert sys.getrecursionlimit() >= 100_000, sys.getrecursionlimit()
    from horus.codec import default_codec
    from horus.domain.events import envelope
    from horus.domain.config import ConfigState, apply_config
    from horus.domain.follow_graph import FollowGraph, apply_config_change

    codec = default_codec()
    depth = 100_000
    body = "[" * depth + "]" * depth  # ~200 KB
    change = {"envelope": envelope("bomb", "attacker", 0), "entity": "FOLLOW", "entity_id": "f1", "op": "UPSERT",
              "body": body}
    value = codec.encode("ConfigChange", change)
    errors = []

    def tail():
        for fold, state in ((apply_config_change, FollowGraph()), (apply_config, ConfigState())):
            _, record = codec.decode(value)
            try:
                fold(record, state)
            except ValueError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=tail)
    thread.start()
    thread.join()
    for error in errors:
        print(error)
""")


def test_a_config_change_bomb_on_a_tail_thread_is_rejected_and_the_process_lives():
    run = subprocess.run([sys.executable, "-c", BOMB_SCRIPT], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"exit {run.returncode} (-11 is SIGSEGV): {run.stderr[-2000:]}"
    lines = run.stdout.splitlines()
    assert len(lines) == 2 and all("nested deeper than" in line for line in lines), run.stdout
    assert lines[0].startswith("ConfigError") and lines[1].startswith("ConfigInvalid")
