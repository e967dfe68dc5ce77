"""The house rules import-linter cannot express (its contracts are in pyproject.toml; docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENGINE = ("horus", "streams", "projections")
VENUE_ADAPTER = REPO / "horus" / "venue"

# keys of Polymarket's CLOB JSON (orders, replies, order records, trades): only the venue adapter reads or writes them
CLOB_KEYS = frozenset(
    {
        "makerAmount",
        "takerAmount",
        "makingAmount",
        "takingAmount",
        "size_matched",
        "taker_order_id",
        "maker_orders",
        "matched_amount",
        "fee_rate_bps",
        "errorMsg",
        "orderHash",
        "orderID",
        "orderType",
        "signatureType",
        "tokenId",
    }
)


# the chaos proof reads the venue's own books with a reader of its own: checking the engine through the engine's
# parser would prove nothing about that parser
INDEPENDENT_READERS = {REPO / "horus" / "ops" / "chaos.py"}


def engine_files():
    for package in ENGINE:
        for path in sorted((REPO / package).rglob("*.py")):
            if VENUE_ADAPTER not in path.parents:
                yield path


def test_the_clob_wire_format_is_known_in_the_venue_adapter_only():
    found = []
    for path in engine_files():
        if path in INDEPENDENT_READERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and node.value in CLOB_KEYS:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not found, "CLOB keys outside horus/venue/ (parse them in horus/venue/polymarket/):\n" + "\n".join(found)


def test_execution_statuses_are_declared_once():
    """ExecutionResult's statuses: the Avro enum is the one list; the domain reads it, nothing spells it again."""
    spelled = []
    for path in engine_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Set, ast.Tuple, ast.List)):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if {"FILLED", "PARTIAL", "NOT_FILLED", "REJECTED"} <= names:
                    spelled.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert len(spelled) <= 1, "terminal statuses spelled in several places:\n" + "\n".join(spelled)
