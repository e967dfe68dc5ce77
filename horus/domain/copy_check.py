"""The executor's input contract: a COPY decision it may prewrite, sign and send, or why not.

copy.decisions is written by decide, but the executor is the last step before money moves, so it checks what it
reads (safety review D10 and the hostile-input run): one record that decodes but cannot be stored or signed (a
price that is not a number, a NUL byte Postgres refuses, a timestamp outside any calendar, an intent id that is
not the one of its follow and leader fill) must be parked with its bytes, never retried forever and never allowed
to wedge a follower's lane. Pure: the caller passes the clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from horus.domain.ids import intent_id

SIDES = ("BUY", "SELL")
ORDER_TYPES = ("FOK", "FAK", "GTC", "GTD")
MAX_SIZE_E6 = 10**15  # a billion shares: far above any real order, far below the int64 columns
EARLIEST_US = 1_577_836_800_000_000  # 2020-01-01: nothing this engine decides is older
LATEST_AHEAD_US = 2 * 86_400 * 1_000_000  # a timestamp or an expiry more than 2 days ahead is not a clock skew
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_TOKEN = re.compile(r"[0-9]{1,78}")
_ID = re.compile(r"[A-Za-z0-9._:\-]{1,200}")


class BadCopyDecision(ValueError):
    """A COPY decision the executor must not act on; the message names the field and the rule."""


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))


def check_copy_decision(decision: dict[str, Any], now_us: int) -> None:
    """Raise BadCopyDecision if `decision` (a decoded CopyDecision with action COPY) cannot be executed as is."""
    for path, text in _strings(decision, ""):
        if "\x00" in text:
            raise BadCopyDecision(f"{path}: contains a NUL byte")
    env = decision.get("envelope") or {}
    for name in ("occurred_at_us", "produced_at_us"):
        at = env.get(name)
        if at is not None and not EARLIEST_US <= at <= now_us + LATEST_AHEAD_US:
            raise BadCopyDecision(f"envelope.{name}: {at} is not a plausible time (before 2020 or days ahead)")
    for name, pattern in (("follow_id", _ID), ("leader_fill_id", _ID), ("follower", _ADDRESS), ("token_id", _TOKEN)):
        value = decision.get(name)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise BadCopyDecision(f"{name}: {str(value)[:80]!r} is not a valid {name.replace('_', ' ')}")
    if int(decision["token_id"]) >= 2**256:
        raise BadCopyDecision("token_id: above uint256")
    expected = intent_id(decision["follow_id"], decision["leader_fill_id"])
    if decision.get("intent_id") != expected:
        raise BadCopyDecision(
            f"intent_id: {str(decision.get('intent_id'))[:80]!r} is not the intent of follow "
            f"{decision['follow_id']} and leader fill {decision['leader_fill_id']} ({expected})"
        )
    if decision.get("side") not in SIDES:
        raise BadCopyDecision(f"side: {decision.get('side')!r} is not BUY or SELL")
    size = decision.get("size_e6")
    if not isinstance(size, int) or not 0 < size <= MAX_SIZE_E6:
        raise BadCopyDecision(f"size_e6: {size!r} is not a positive size up to {MAX_SIZE_E6}")
    try:
        price = Decimal(str(decision.get("worst_price")))
    except InvalidOperation:
        raise BadCopyDecision(f"worst_price: {str(decision.get('worst_price'))[:80]!r} is not a number") from None
    if not price.is_finite() or not 0 < price < 1:
        raise BadCopyDecision(f"worst_price: {price} is outside (0, 1)")
    if decision.get("order_type") not in (None, *ORDER_TYPES):
        raise BadCopyDecision(f"order_type: {decision.get('order_type')!r} is not one of {', '.join(ORDER_TYPES)}")
    expires = decision.get("expires_at_us")
    if expires is not None and not EARLIEST_US <= expires <= now_us + LATEST_AHEAD_US:
        raise BadCopyDecision(f"expires_at_us: {expires} is not a plausible expiry (before 2020 or days ahead)")
