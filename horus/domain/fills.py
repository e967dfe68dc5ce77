"""A leader's fill, as the engine defines it: the decoded fills of one order (from chain logs, Data API rows or a
replay, decoded by the venue adapter horus/venue/polymarket/fills.py and data_api.py) and the identity rule that
sums them into LeaderFill events, one per (tx hash, leader, token id, side), whichever source saw them first.
Changing the grouping or the id changes which fills count as one: don't, without a replay plan."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from horus.domain.config import normalize_address
from horus.domain.events import envelope
from horus.domain.ids import leader_fill_id

#: Decimal places of the average price string (the Data API renders prices with 10 as well).
#: The price is collateral/shares rounded half-even at the 10th place; it is exact whenever the
#: quotient terminates within 10 places (every tick-aligned fill does).
PRICE_DECIMALS = 10
#: The role written when no component fill says which it was (Data API rows): the schema's enum default.
UNKNOWN_ROLE = "TAKER"

INT64_MAX = 2**63 - 1


class AggregationError(ValueError):
    """Fills that cannot be summed into a LeaderFill (a sum out of the schema's range, no timestamp)."""


class MissingTimestampError(AggregationError):
    """No block timestamp for a fill: the log had none and the ``block_time`` callback gave none."""


@dataclass(frozen=True, slots=True)
class DecodedFill:
    """One fill of one wallet's order, from a chain log or a Data API row (fields a source lacks are None).

    ``leader`` is the wallet whose order filled: topic 2 (``maker``) of the log, ``proxy_wallet`` of a row.
    Amounts are 1e-6 units; ``fee_e6`` is in collateral units.
    """

    source: str  # "chain" | "data-api"
    tx_hash: str  # lowercase 0x hex
    leader: str  # lowercase 0x hex
    token_id: str  # decimal uint256
    side: str  # "BUY" | "SELL"
    shares_e6: int
    collateral_e6: int
    fee_e6: int = 0
    role: str | None = None  # "MAKER" | "TAKER"; None when the source does not say
    exchange: str | None = None  # lowercase address of the emitting contract
    block_number: int | None = None
    log_index: int | None = None
    block_timestamp: int | None = None  # seconds
    order_hash: str | None = None
    counterparty: str | None = None  # topic 3 (the taker's wallet, or the exchange itself)
    layout: str | None = None  # "v1" | "v2" for chain fills
    fee_raw_e6: int = 0  # the fee as logged, in ``fee_asset`` units
    fee_asset: str = "collateral"  # "collateral" | "shares" (V1 BUY)
    condition_id: str | None = None
    builder: str | None = None  # V2: bytes32 hex
    metadata: str | None = None  # V2: bytes32 hex
    block_hash: str | None = None
    removed: bool = False  # the node reported the log as removed by a reorg

    @property
    def price(self) -> str:
        """collateral / shares as a decimal string (see :data:`PRICE_DECIMALS`)."""
        return format_price(self.collateral_e6, self.shares_e6)

    @property
    def group_key(self) -> tuple[str, str, str, str]:
        """(tx hash, leader, token id, side): the LeaderFill this fill belongs to."""
        return (self.tx_hash, self.leader, self.token_id, self.side)

    @property
    def event_id(self) -> str:
        """The id of the LeaderFill this fill belongs to (same for every source)."""
        return leader_fill_id(self.tx_hash, self.leader, self.token_id, self.side)


def div_half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def format_price(collateral_e6: int, shares_e6: int, decimals: int = PRICE_DECIMALS) -> str:
    """Exact ``collateral / shares`` rounded half-even to ``decimals`` places, without exponent or
    trailing zeros: (97_790_400, 135_820_000) -> "0.72"."""
    if shares_e6 <= 0:
        raise ValueError(f"price needs positive shares, got {shares_e6}")
    if collateral_e6 < 0:
        raise ValueError(f"price needs non-negative collateral, got {collateral_e6}")
    scaled = div_half_even(collateral_e6 * 10**decimals, shares_e6)
    text = format(Decimal(scaled).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# --------------------------------------------------------------------------- aggregation


def _order_key(fill: DecodedFill) -> tuple[tuple[bool, Any], ...]:
    """A total order on fills (block, log index, then every field), so every choice below is independent
    of input order."""

    def part(value: Any) -> tuple[bool, Any]:
        return (True, "") if value is None else (False, value)

    return (part(fill.block_number), part(fill.log_index), *(part(getattr(fill, f.name)) for f in fields(DecodedFill)))


def _timestamp_lookup(
    block_time: Callable[[int], int | None] | Mapping[int, int] | None,
) -> Callable[[int | None], int | None]:
    cache: dict[int, int | None] = {}

    def lookup(block_number: int | None) -> int | None:
        if block_time is None or block_number is None:
            return None
        if block_number not in cache:
            cache[block_number] = (
                block_time.get(block_number) if isinstance(block_time, Mapping) else block_time(block_number)
            )
        return cache[block_number]

    return lookup


def aggregate(
    fills: Iterable[DecodedFill],
    leaders: Iterable[str] | None = None,
    *,
    source: str = "chain",
    block_time: Callable[[int], int | None] | Mapping[int, int] | None = None,
    produced_at_us: int | None = None,
) -> list[dict[str, Any]]:
    """Sum fills into LeaderFill records (Avro dicts), one per (tx hash, leader, token id, side).

    - ``leaders``: keep only fills of these wallets (default: every wallet that appears).
    - ``source``: the envelope source (``chain``, ``data-api``, ``replay``...).
    - ``block_time``: block number -> block timestamp in seconds (callable or mapping); used for fills
      without their own timestamp (eth_subscribe logs and receipts carry none). A group with no timestamp
      at all raises :class:`MissingTimestampError`.
    - ``produced_at_us``: envelope produced time (default: now, once for the whole call).

    Shares, collateral and fee are summed; the price is recomputed from the sums; ``log_index`` and
    ``block_number`` are the smallest seen; ``order_hashes`` are sorted and unique; ``role`` is TAKER if
    any component fill was the leader's taker order, else MAKER (``UNKNOWN_ROLE`` if no fill says).
    Removed (reorged) logs are skipped, and a log seen twice (same tx hash and log index) counts once.
    Feed one source per call: a chain log and a Data API row for the same fill would both be summed.
    The result is sorted by (time, block, log index, tx, leader, token, side) and is identical for any
    order of the input.
    """
    wanted = None if leaders is None else {normalize_address(w, "leader") for w in leaders}
    by_log: dict[tuple[str, int], DecodedFill] = {}
    unindexed: list[DecodedFill] = []
    for fill in fills:
        if fill.removed or (wanted is not None and fill.leader not in wanted):
            continue
        if fill.log_index is None:
            unindexed.append(fill)
            continue
        key = (fill.tx_hash, fill.log_index)
        seen = by_log.get(key)
        if seen is None or _order_key(fill) > _order_key(seen):
            by_log[key] = fill

    groups: dict[tuple[str, str, str, str], list[DecodedFill]] = defaultdict(list)
    for fill in [*by_log.values(), *unindexed]:
        groups[fill.group_key].append(fill)

    produced = time.time_ns() // 1000 if produced_at_us is None else produced_at_us
    lookup = _timestamp_lookup(block_time)
    records: list[dict[str, Any]] = []
    for (tx_hash, leader, token_id, side), members in groups.items():
        members.sort(key=_order_key)
        shares = sum(f.shares_e6 for f in members)
        collateral = sum(f.collateral_e6 for f in members)
        fee = sum(f.fee_e6 for f in members)
        for name, total in (("shares", shares), ("collateral", collateral), ("fee", fee)):
            if total > INT64_MAX:
                raise AggregationError(f"tx {tx_hash} leader {leader}: summed {name} {total} exceeds 2^63-1")
        blocks = [f.block_number for f in members if f.block_number is not None]
        indexes = [f.log_index for f in members if f.log_index is not None]
        block_number = min(blocks) if blocks else 0
        stamps = [f.block_timestamp for f in members if f.block_timestamp is not None]
        stamp = max(stamps) if stamps else lookup(min(blocks) if blocks else None)
        if stamp is None:
            raise MissingTimestampError(
                f"tx {tx_hash} (block {block_number or '?'}): no block timestamp; pass block_time="
            )
        roles = {f.role for f in members}
        role = "TAKER" if "TAKER" in roles else "MAKER" if "MAKER" in roles else UNKNOWN_ROLE
        exchange = next((f.exchange for f in members if f.exchange), "")
        condition_id = next((f.condition_id for f in members if f.condition_id), None)
        records.append(
            {
                "envelope": envelope(
                    leader_fill_id(tx_hash, leader, token_id, side),
                    source,
                    int(stamp) * 1_000_000,
                    produced_at_us=produced,
                ),
                "leader": leader,
                "exchange": exchange,
                "tx_hash": tx_hash,
                "block_number": block_number,
                "log_index": min(indexes) if indexes else 0,
                "token_id": token_id,
                "condition_id": condition_id,
                "side": side,
                "shares_e6": shares,
                "collateral_e6": collateral,
                "price": format_price(collateral, shares),
                "fee_e6": fee,
                "role": role,
                "order_hashes": sorted({f.order_hash for f in members if f.order_hash}),
            }
        )
    records.sort(
        key=lambda r: (
            r["envelope"]["occurred_at_us"],
            r["block_number"],
            r["log_index"],
            r["tx_hash"],
            r["leader"],
            r["token_id"],
            r["side"],
        )
    )
    return records


def aggregate_apart(
    fills: Iterable[DecodedFill],
    leaders: Iterable[str] | None,
    *,
    source: str,
    block_time: Mapping[int, int] | Callable[[int], int | None] | None = None,
    produced_at_us: int | None = None,
) -> tuple[list[dict[str, Any]], list[tuple[list[DecodedFill], AggregationError]]]:
    """aggregate(), except that a fill whose sums do not fit a LeaderFill (beyond 2^63-1) is set apart with its
    error, so one such fill cannot stop the others (a source parks it and goes on). A missing block time still
    raises MissingTimestampError: that is the node's failure, to be retried, not bad input."""
    fills = list(fills)
    try:
        return aggregate(fills, leaders, source=source, block_time=block_time, produced_at_us=produced_at_us), []
    except MissingTimestampError:
        raise
    except AggregationError:
        pass  # rare: find the fills that fail, then sum the rest in one call (same order and ids as above)
    groups: dict[tuple[str, str, str, str], list[DecodedFill]] = {}
    for fill in fills:
        groups.setdefault(fill.group_key, []).append(fill)
    kept: list[DecodedFill] = []
    apart: list[tuple[list[DecodedFill], AggregationError]] = []
    for members in groups.values():
        try:
            aggregate(members, leaders, source=source, block_time=block_time, produced_at_us=produced_at_us)
        except MissingTimestampError:
            raise
        except AggregationError as exc:
            apart.append((members, exc))
            continue
        kept += members
    return aggregate(kept, leaders, source=source, block_time=block_time, produced_at_us=produced_at_us), apart
