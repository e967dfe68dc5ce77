"""The LeaderFill JSON form (what `horus fills decode` prints and replay files hold) <-> the Avro record.

Amounts are decimal strings in whole units at this edge and 6-decimal integers inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from horus.domain.amounts import from_e6, to_e6
from horus.domain.events import envelope

REQUIRED = (
    "event_id",
    "leader",
    "exchange",
    "tx_hash",
    "block_number",
    "token_id",
    "side",
    "shares",
    "collateral",
    "price",
)


class FillJsonError(ValueError):
    pass


def leader_fill_from_json(obj: Mapping[str, Any], source: str = "replay") -> dict[str, Any]:
    missing = [name for name in REQUIRED if obj.get(name) in (None, "")]
    if missing:
        raise FillJsonError(f"leader fill is missing {', '.join(missing)}: {obj!r:.200}")
    side = str(obj["side"]).upper()
    if side not in ("BUY", "SELL"):
        raise FillJsonError(f"side must be BUY or SELL, got {obj['side']!r}")
    role = str(obj.get("role", "taker")).upper()  # unknown role: the schema's default, as Data API rows get
    if role not in ("MAKER", "TAKER"):
        raise FillJsonError(f"role must be maker or taker, got {obj.get('role')!r}")
    occurred_us = int(obj.get("block_timestamp", 0)) * 1_000_000
    return {
        "envelope": envelope(str(obj["event_id"]), source, occurred_us),
        "leader": str(obj["leader"]).lower(),
        "exchange": str(obj["exchange"]).lower(),
        "tx_hash": str(obj["tx_hash"]).lower(),
        "block_number": int(obj["block_number"]),
        "log_index": int(obj.get("log_index", 0)),
        "token_id": str(obj["token_id"]),
        "condition_id": obj.get("condition_id"),
        "side": side,
        "shares_e6": to_e6(obj["shares"]),
        "collateral_e6": to_e6(obj["collateral"]),
        "price": str(obj["price"]),
        "fee_e6": to_e6(obj.get("fee", "0")),
        "role": role,
        "order_hashes": [str(h).lower() for h in obj.get("order_hashes", [])],
    }


def leader_fill_to_json(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "event_id": record["envelope"]["event_id"],
        "leader": record["leader"],
        "exchange": record["exchange"],
        "tx_hash": record["tx_hash"],
        "block_number": record["block_number"],
        "log_index": record["log_index"],
        "block_timestamp": record["envelope"]["occurred_at_us"] // 1_000_000,
        "token_id": record["token_id"],
        "condition_id": record["condition_id"],
        "side": record["side"],
        "shares": from_e6(record["shares_e6"]),
        "collateral": from_e6(record["collateral_e6"]),
        "price": record["price"],
        "fee": from_e6(record["fee_e6"]),
        "role": record["role"].lower(),
        "order_hashes": list(record["order_hashes"]),
    }
