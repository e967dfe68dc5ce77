"""Data API rows -> :class:`DecodedFill`, so a row and the chain log of the same fill give the same
LeaderFill event id (same tx hash, leader = ``proxy_wallet``, token id = ``token_id``/``asset``, side).

Accepted rows (platform notes 8.4): ``/v2/activity`` and ``/v2/trades`` (snake_case: ``proxy_wallet,
transaction_hash, token_id, condition_id, side, size, usdc_size, price, timestamp, type``) and the classic
``/activity`` and ``/trades`` (camelCase: ``proxyWallet, transactionHash, asset, conditionId, side, size,
usdcSize, price, timestamp, type``). Trades rows have no ``type`` and are trades. Activity rows of another
type (SPLIT, MERGE, REDEEM, CONVERSION, REWARD, ...) are not order fills: :func:`parse_row` returns a
:class:`SkippedRow` with the reason, not an error.

Numbers arrive as JSON numbers or strings. Every value goes to :class:`~decimal.Decimal` through its text
(a Python float through ``repr``, which is the shortest text that reads back as the same float, i.e. what
the API printed), never through float arithmetic. Then, all roundings half-even and explicit:

- shares = ``size`` rounded to 6 decimals (exact for every real row: on-chain amounts have 6 decimals);
- collateral = shares x ``price`` rounded to 6 decimals. This is the notional *before* fees, i.e. the same
  number the chain log carries (V2 BUY ``makerAmountFilled``, SELL ``takerAmountFilled``). The row's price
  has 10 decimals, so for fills under ~10,000 shares this recovers the chain amount exactly;
- fee = the gap between ``usdc_size`` (rounded to 6 decimals) and that notional: BUY ``usdc_size - notional``,
  SELL ``notional - usdc_size``, never negative; 0 when the row has no ``usdc_size``. Inferred from the
  captured fixture (a BUY row whose ``usdc_size`` is notional + a 4%·p·(1-p) fee); not documented.

Data API rows do not say maker or taker, nor carry block number, log index, exchange or order hash: the
fill's ``role`` is whatever the caller passes (e.g. ``TAKER`` for ``/v2/trades`` with ``taker_only=true``),
otherwise None, and :func:`~horus.domain.fills.aggregate` writes ``exchange ""``, ``block_number 0``,
``log_index 0``, ``order_hashes []`` and the row ``timestamp`` as the block time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from horus.domain.amounts import E6, AmountError, json_decimal
from horus.domain.clock import future_detail, in_future
from horus.domain.fills import INT64_MAX, DecodedFill, div_half_even
from horus.venue.polymarket.exchanges import AddressBookError, normalize_address
from horus.venue.polymarket.fills import FillDecodeError

__all__ = [
    "SOURCE",
    "RowDecodeError",
    "SkippedRow",
    "ParsedRows",
    "Page",
    "parse_row",
    "parse_rows",
    "page_rows",
    "timestamp_seconds",
    "to_decimal",
    "to_e6_half_even",
]

SOURCE = "data-api"
# The API documents seconds; some routes have answered milliseconds. The unit is read from the magnitude: the
# ranges do not overlap for any date between 1973 and 5138 (seconds reach 10^11 in the year 5138). Anything
# larger is no unit this source knows, and anything dated beyond the clock slack ahead of now is refused: a
# unit mix-up must not turn history into "fresh" fills (review D12/D14).
_UNITS = ((10**11, 1), (10**14, 1000), (10**17, 1_000_000))  # (below this, divide by this)


class RowDecodeError(FillDecodeError):
    """A trade row that cannot become a fill (missing or malformed field); dead-letter the row."""


@dataclass(frozen=True)
class SkippedRow:
    """A row that is fine but is not an order fill (e.g. a REDEEM)."""

    reason: str
    type: str
    row: Mapping[str, Any] = field(repr=False)


@dataclass
class ParsedRows:
    fills: list[DecodedFill] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    errors: list[tuple[Any, RowDecodeError]] = field(default_factory=list)  # (row, error)


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    has_more: bool
    next_cursor: str | None


def _get(row: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = row.get(name)
        if value is not None and value != "":
            return value
    return None


def _where(row: Any) -> str:
    if not isinstance(row, Mapping):
        return "row"
    tx = _get(row, "transaction_hash", "transactionHash")
    return f"row tx {tx}" if isinstance(tx, str) else "row"


def to_decimal(value: Any, what: str = "value") -> Decimal:
    """A JSON number or string as an exact, finite Decimal (floats through ``repr``, never arithmetic)."""
    try:
        number = json_decimal(value)
    except AmountError as exc:
        raise RowDecodeError(f"{what} {exc}", "bad-field") from None
    if number and not -40 <= number.adjusted() <= 30:
        raise RowDecodeError(f"{what}={value!r:.60} is out of range", "bad-field")
    return number


def _ratio(number: Decimal) -> tuple[int, int]:
    return number.as_integer_ratio()


def to_e6_half_even(value: Any, what: str = "value") -> int:
    """``value`` in 1e-6 units, rounded half-even (exact when it has at most 6 decimals)."""
    numerator, denominator = _ratio(to_decimal(value, what))
    return div_half_even(numerator * E6, denominator)


def timestamp_seconds(value: Any, where: str = "row", *, now_s: int | None = None) -> int:
    """A row's ``timestamp`` (seconds, milliseconds or microseconds) in whole seconds. Raises
    :class:`RowDecodeError` unless it is a positive whole number of a known unit, dated at most the clock
    slack ahead of ``now_s`` (default: the wall clock)."""
    number = to_decimal(value, f"{where}: timestamp")
    if number != number.to_integral_value() or number <= 0:
        raise RowDecodeError(f"{where}: timestamp {value!r} is not a positive whole number", "bad-field")
    stamp = int(number)
    for below, per_second in _UNITS:
        if stamp < below:
            seconds = stamp // per_second
            break
    else:
        raise RowDecodeError(
            f"{where}: timestamp {value!r:.40} is not in seconds, milliseconds or microseconds", "bad-field"
        )
    at_us, now_us = seconds * 1_000_000, (int(time.time()) if now_s is None else now_s) * 1_000_000
    if in_future(at_us, now_us):
        raise RowDecodeError(f"{where}: timestamp {value!r:.40}: {future_detail(at_us, now_us)}", "future-timestamp")
    return seconds


def _row_type(row: Mapping[str, Any]) -> str:
    kind = row.get("type")
    return "TRADE" if kind in (None, "") else str(kind).strip().upper()


def parse_row(row: Mapping[str, Any], *, role: str | None = None, now_s: int | None = None) -> DecodedFill | SkippedRow:
    """One Data API row (v2 snake_case or classic camelCase) -> a fill, or a :class:`SkippedRow` for a
    non-trade activity row. ``role``: "MAKER"/"TAKER" when the caller knows it (rows do not say); ``now_s``:
    the clock future timestamps are judged by (default: the wall clock).
    Raises :class:`RowDecodeError` for a malformed trade row, or one dated in the future."""
    if not isinstance(row, Mapping):
        raise RowDecodeError(f"a Data API row must be a JSON object, got {type(row).__name__}", "bad-row")
    if role is not None and role.upper() not in ("MAKER", "TAKER"):
        raise ValueError(f"role must be MAKER, TAKER or None, got {role!r}")
    kind = _row_type(row)
    if kind != "TRADE":
        return SkippedRow(f"{kind} activity is not an order fill", kind, row)
    where = _where(row)
    leader = _leader(row, where)
    tx_hash = _tx_hash(row, where)
    token_id = _token_id(row, where)
    side = str(_required(row, where, "side")).strip().upper()
    if side not in ("BUY", "SELL"):
        raise RowDecodeError(f"{where}: side must be BUY or SELL, got {row.get('side')!r:.20}", "bad-field")
    shares, collateral, fee = _amounts(row, side, where)
    condition = _condition_id(row, where)
    return DecodedFill(
        source=SOURCE,
        tx_hash=tx_hash,
        leader=leader,
        token_id=token_id,
        side=side,
        shares_e6=shares,
        collateral_e6=collateral,
        fee_e6=fee,
        fee_raw_e6=fee,
        role=None if role is None else role.upper(),
        block_timestamp=timestamp_seconds(_required(row, where, "timestamp"), where, now_s=now_s),
        condition_id=condition,
    )


def _required(row: Mapping[str, Any], where: str, *names: str) -> Any:
    """The first of ``names`` the row has a value for (neither null nor empty)."""
    value = _get(row, *names)
    if value is None:
        raise RowDecodeError(f"{where}: {' / '.join(names)} is missing", "bad-field")
    return value


def _leader(row: Mapping[str, Any], where: str) -> str:
    wallet = _required(row, where, "proxy_wallet", "proxyWallet")
    try:
        return normalize_address(wallet)
    except AddressBookError:
        raise RowDecodeError(f"{where}: proxy wallet {wallet!r:.60} is not an address", "bad-field") from None


def _tx_hash(row: Mapping[str, Any], where: str) -> str:
    tx = _required(row, where, "transaction_hash", "transactionHash")
    tx_text = str(tx).strip().lower()
    if not (tx_text.startswith("0x") and len(tx_text) == 66 and all(c in "0123456789abcdef" for c in tx_text[2:])):
        raise RowDecodeError(f"{where}: transaction hash {tx!r:.80} is not 32-byte 0x hex", "bad-field")
    return tx_text


def _token_id(row: Mapping[str, Any], where: str) -> str:
    """The token id in the chain's form: decimal digits without leading zeros, a nonzero uint256."""
    token = _required(row, where, "token_id", "asset", "asset_id", "tokenId")
    token_text = str(token).strip() if not isinstance(token, bool) else ""
    if (
        not (token_text.isascii() and token_text.isdigit())
        or len(token_text) > 80
        or int(token_text) == 0
        or int(token_text) >= 2**256
    ):
        raise RowDecodeError(f"{where}: token id {token!r:.90} is not a decimal uint256", "bad-field")
    return str(int(token_text))


def _amounts(row: Mapping[str, Any], side: str, where: str) -> tuple[int, int, int]:
    """(shares, collateral, fee) in 1e-6 units, as the module docstring derives them from size, price and usdc size."""
    shares = to_e6_half_even(_required(row, where, "size"), f"{where}: size")
    if shares <= 0:
        raise RowDecodeError(f"{where}: size {row.get('size')!r} is not a positive amount", "bad-field")
    price = to_decimal(_required(row, where, "price"), f"{where}: price")
    if not 0 < price <= 1:
        raise RowDecodeError(f"{where}: price {row.get('price')!r} is outside (0, 1]", "bad-field")
    numerator, denominator = _ratio(price)
    collateral = div_half_even(shares * numerator, denominator)

    fee = 0
    usdc = _get(row, "usdc_size", "usdcSize")
    if usdc is not None:
        paid = to_e6_half_even(usdc, f"{where}: usdc size")
        if paid < 0:
            raise RowDecodeError(f"{where}: usdc size {usdc!r} is negative", "bad-field")
        fee = max(0, paid - collateral if side == "BUY" else collateral - paid)
    for name, value in (("size", shares), ("usdc size", fee)):
        if value > INT64_MAX:
            raise RowDecodeError(f"{where}: {name} is beyond any real fill (> 2^63-1 units)", "bad-field")
    return shares, collateral, fee


def _condition_id(row: Mapping[str, Any], where: str) -> str | None:
    """The row's condition id as lowercase 0x hex, or None when it has none."""
    condition: object = _get(row, "condition_id", "conditionId")  # object: the checks below narrow it to str
    if condition is not None:
        condition = str(condition).strip().lower() if isinstance(condition, str) else condition
        if not (
            isinstance(condition, str)
            and condition.startswith("0x")
            and 2 < len(condition) <= 66
            and all(c in "0123456789abcdef" for c in condition[2:])
        ):
            raise RowDecodeError(f"{where}: condition id {condition!r:.80} is not 0x hex", "bad-field")
    return condition


def parse_rows(rows: Iterable[Any], *, role: str | None = None, now_s: int | None = None) -> ParsedRows:
    """Parse many rows; nothing raises: fills, skipped rows and (row, error) pairs come back apart."""
    result = ParsedRows()
    now_s = int(time.time()) if now_s is None else now_s
    for row in rows:
        try:
            parsed = parse_row(row, role=role, now_s=now_s)
        except RowDecodeError as exc:
            result.errors.append((row, exc))
            continue
        if isinstance(parsed, SkippedRow):
            result.skipped.append(parsed)
        else:
            result.fills.append(parsed)
    return result


def page_rows(body: Any) -> Page:
    """The rows of one response: the v2 keyset envelope ``{"data": [...], "pagination": {"has_more",
    "next_cursor"}}`` or a classic bare list."""
    if isinstance(body, list):
        return Page(body, False, None)
    if isinstance(body, Mapping) and isinstance(body.get("data"), list):
        pagination = body.get("pagination") or {}
        if not isinstance(pagination, Mapping):
            raise RowDecodeError(f"pagination must be an object, got {type(pagination).__name__}", "bad-page")
        cursor = pagination.get("next_cursor")
        return Page(body["data"], bool(pagination.get("has_more")), None if cursor in (None, "") else str(cursor))
    raise RowDecodeError(f"a Data API page is a list or {{'data': [...]}}, got {str(body)[:80]!r}", "bad-page")
