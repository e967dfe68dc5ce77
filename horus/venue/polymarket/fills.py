"""Leader fills from Polymarket exchange logs: decode one `OrderFilled` log into a DecodedFill (the domain sums them
into LeaderFill records: horus/domain/fills.py).

Facts used (platform notes, section 7, and the exchange sources they cite):

- Two layouts, told apart by topic0 (see :mod:`.exchanges`). Topics are always
  ``[topic0, orderHash, maker, taker]``.
- V2/V3 data ``side, tokenId, makerAmountFilled, takerAmountFilled, fee, builder, metadata``; ``side`` and
  ``tokenId`` are the filled order's own (BUY = 0, SELL = 1). BUY: collateral = makerAmountFilled, shares =
  takerAmountFilled; SELL: shares = makerAmountFilled, collateral = takerAmountFilled. ``fee`` is collateral
  (BUY: paid on top, SELL: deducted from the proceeds).
- V1 data ``makerAssetId, takerAssetId, makerAmountFilled, takerAmountFilled, fee``; asset id 0 is collateral.
  makerAssetId 0: BUY of takerAssetId (collateral = makerAmountFilled, shares = takerAmountFilled); else SELL
  of makerAssetId (shares = makerAmountFilled, collateral = takerAmountFilled). The V1 fee is charged in the
  asset the order *receives* (V1 `Trading.sol`): shares for a BUY, collateral for a SELL. A V1 BUY fee is
  converted to collateral at the fill's own price (rounded half-even to 1e-6); the raw value is kept in
  :attr:`DecodedFill.fee_raw_e6`.
- One `OrderFilled` per maker order (maker = that order's wallet, taker = the taker's wallet) and one for the
  taker order itself with maker = the taker's wallet and taker = the exchange contract. So the wallet whose
  fill a log describes is always topic 2, and role = TAKER exactly when topic 3 is the log's own address.
  (V1 ``fillOrder`` logs taker = the operator: role MAKER, the order was filled against the operator.)

Amounts are integers in 1e-6 units throughout; the price is an exact decimal string (never a float).
Every failure is a :class:`LogDecodeError` with a ``reason`` code and a message naming the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, cast

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from horus.domain.fills import DecodedFill, div_half_even
from horus.venue.polymarket.exchanges import LAYOUT_BY_TOPIC, AddressBookError, ExchangeBook, Layout, normalize_address

__all__ = ["FillDecodeError", "LogDecodeError", "NotOrderFilledError", "decode_log", "is_order_filled", "topic0_of"]


INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
_V1_TYPES = ["uint256", "uint256", "uint256", "uint256", "uint256"]
_V2_TYPES = ["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"]
_DATA_LEN = {Layout.V1: 32 * len(_V1_TYPES), Layout.V2: 32 * len(_V2_TYPES)}


# --------------------------------------------------------------------------- errors


class FillDecodeError(ValueError):
    """A log or API row that cannot become a fill. ``reason`` is a short machine-readable code."""

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


class LogDecodeError(FillDecodeError):
    """An exchange log that cannot be decoded; the caller dead-letters the raw log.

    Reasons: ``not-order-filled`` (see :class:`NotOrderFilledError`), ``unknown-exchange``,
    ``layout-mismatch``, ``bad-log`` (missing/ill-typed fields), ``bad-topics``, ``bad-data``,
    ``invalid-value`` (decodes, but is not a fill: unknown side, no collateral leg, zero shares,
    amount out of range)."""


class NotOrderFilledError(LogDecodeError):
    """topic0 is not one of the `OrderFilled` events: some other event (ignore it, or dead-letter it)."""

    def __init__(self, message: str):
        super().__init__(message, "not-order-filled")


# --------------------------------------------------------------------------- log field access


def _get(log: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in log:
            return log[name]
    return None


def _hex_text(value: Any) -> str | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, str):
        return value
    return None


def _where(log: Any) -> str:
    """'log 0xabc...:5' for messages, tolerant of any garbage."""
    if not isinstance(log, Mapping):
        return "log"
    tx = _hex_text(_get(log, "transactionHash", "transaction_hash"))
    index = _get(log, "logIndex", "log_index")
    tx_part = tx if tx else "?"
    if index is None:
        return f"log tx {tx_part}"
    if isinstance(index, (bytes, bytearray)):
        index = "0x" + bytes(index).hex()
    return f"log tx {tx_part} index {index}"


def _bytes(value: Any, what: str, where: str, length: int | None = None, reason: str = "bad-log") -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text.startswith(("0x", "0X")):
            raise LogDecodeError(f"{where}: {what} must be 0x-prefixed hex, got {value[:80]!r}", reason)
        try:
            raw = bytes.fromhex(text[2:])
        except ValueError:
            raise LogDecodeError(f"{where}: {what} is not valid hex: {value[:80]!r}", reason) from None
    elif value is None:
        raise LogDecodeError(f"{where}: {what} is missing", reason)
    else:
        raise LogDecodeError(f"{where}: {what} must be hex or bytes, got {type(value).__name__}", reason)
    if length is not None and len(raw) != length:
        raise LogDecodeError(f"{where}: {what} must be {length} bytes, got {len(raw)}", reason)
    return raw


def _uint(value: Any, what: str, where: str, maximum: int, required: bool = True) -> int | None:
    if value is None:
        if required:
            raise LogDecodeError(f"{where}: {what} is missing", "bad-log")
        return None
    if isinstance(value, bool):
        raise LogDecodeError(f"{where}: {what} must be an integer, got {value!r}", "bad-log")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise LogDecodeError(f"{where}: {what} is not a number: {value[:80]!r}", "bad-log") from None
    elif isinstance(value, (bytes, bytearray)):
        number = int.from_bytes(bytes(value), "big")
    else:
        raise LogDecodeError(f"{where}: {what} must be an integer or hex, got {type(value).__name__}", "bad-log")
    if not 0 <= number <= maximum:
        raise LogDecodeError(f"{where}: {what}={number} is out of range", "bad-log")
    return number


def topic0_of(log: Any) -> str | None:
    """The log's topic0 as lowercase 0x hex, or None if the log has no readable topic0."""
    if not isinstance(log, Mapping):
        return None
    topics = log.get("topics")
    if not isinstance(topics, (list, tuple)) or not topics:
        return None
    text = _hex_text(topics[0])
    return text.lower() if text else None


def is_order_filled(log: Any) -> bool:
    """True when topic0 is one of the `OrderFilled` events (whatever the address or the rest)."""
    return topic0_of(log) in LAYOUT_BY_TOPIC


# --------------------------------------------------------------------------- decoding


class _Position(NamedTuple):
    """Where a log sits on chain (the node's fields around the event itself)."""

    tx_hash: str
    block_number: int | None
    log_index: int | None
    block_timestamp: int | None
    block_hash: str | None
    removed: bool


class _Order(NamedTuple):
    """The filled order as the data words give it, in either layout."""

    side: str
    token: int
    maker_amount: int
    taker_amount: int
    fee: int
    builder: str | None
    metadata: str | None


def decode_log(log: Mapping[str, Any], book: ExchangeBook | None = None) -> DecodedFill:
    """Decode one `OrderFilled` log (an eth_getLogs / eth_subscribe / receipt log: a dict or web3
    AttributeDict with hex strings or bytes) from an exchange in ``book`` (default: mainnet).

    Raises :class:`NotOrderFilledError` for other events and :class:`LogDecodeError` for everything
    that is not a well-formed fill from a known exchange."""
    book = ExchangeBook.mainnet() if book is None else book
    if not isinstance(log, Mapping):
        raise LogDecodeError(f"a log must be a JSON object, got {type(log).__name__}", "bad-log")
    where = _where(log)
    topics, layout = _topics_and_layout(log, where)
    address = _exchange_address(log, layout, book, where)
    position = _position(log, where)
    order_hash, maker, taker = _topic_words(topics, where)
    order = _order(log, layout, where)
    shares, collateral = _shares_and_collateral(order, where)
    fee_asset = "shares" if layout is Layout.V1 and order.side == "BUY" else "collateral"
    # a V1 BUY's fee is in shares: converted to collateral at the fill's own price
    fee = div_half_even(order.fee * collateral, shares) if fee_asset == "shares" else order.fee
    return DecodedFill(
        source="chain",
        tx_hash=position.tx_hash,
        leader=maker.lower(),
        token_id=str(order.token),
        side=order.side,
        shares_e6=shares,
        collateral_e6=collateral,
        fee_e6=fee,
        role="TAKER" if taker.lower() == address else "MAKER",
        exchange=address,
        block_number=position.block_number,
        log_index=position.log_index,
        block_timestamp=position.block_timestamp,
        order_hash=order_hash,
        counterparty=taker.lower(),
        layout=layout.value,
        fee_raw_e6=order.fee,
        fee_asset=fee_asset,
        builder=order.builder,
        metadata=order.metadata,
        block_hash=position.block_hash,
        removed=position.removed,
    )


def _topics_and_layout(log: Mapping[str, Any], where: str) -> tuple[list[Any] | tuple[Any, ...], Layout]:
    """The log's four topics and the `OrderFilled` layout its topic0 names."""
    topics = log.get("topics")
    if not isinstance(topics, (list, tuple)) or not topics:
        raise LogDecodeError(f"{where}: topics must be a non-empty list", "bad-topics")
    topic0 = "0x" + _bytes(topics[0], "topic0", where, 32, "bad-topics").hex()
    layout = LAYOUT_BY_TOPIC.get(topic0)
    if layout is None:
        raise NotOrderFilledError(f"{where}: topic0 {topic0} is not OrderFilled")
    if len(topics) != 4:
        raise LogDecodeError(
            f"{where}: OrderFilled has 4 topics (topic0, orderHash, maker, taker), got {len(topics)}", "bad-topics"
        )
    return topics, layout


def _exchange_address(log: Mapping[str, Any], layout: Layout, book: ExchangeBook, where: str) -> str:
    """The emitting contract's address, once it is a known exchange that emits this layout."""
    try:
        address = normalize_address(_hex_text(log.get("address")) or "")
    except AddressBookError:
        raise LogDecodeError(
            f"{where}: address {log.get('address')!r:.60} is not a 20-byte address", "bad-log"
        ) from None
    exchange = book.get(address)
    if exchange is None:
        raise LogDecodeError(
            f"{where}: OrderFilled from {address}, which is not a known exchange "
            f"(pass it with --exchange / ExchangeBook.with_exchange if it is one)",
            "unknown-exchange",
        )
    if not exchange.accepts(layout):
        emitted = cast(Layout, exchange.layout)  # an exchange refuses a layout only when it names its own
        raise LogDecodeError(
            f"{where}: {exchange.name} ({address}) emits the {emitted.value} "
            f"OrderFilled, this log has the {layout.value} one",
            "layout-mismatch",
        )
    return address


def _position(log: Mapping[str, Any], where: str) -> _Position:
    """The transaction, block and log index of the log (the timestamp and block hash when the node gave them)."""
    tx_hash = "0x" + _bytes(_get(log, "transactionHash", "transaction_hash"), "transactionHash", where, 32).hex()
    block_number = _uint(_get(log, "blockNumber", "block_number"), "blockNumber", where, INT64_MAX)
    log_index = _uint(_get(log, "logIndex", "log_index"), "logIndex", where, INT32_MAX)
    block_timestamp = _uint(
        _get(log, "blockTimestamp", "block_timestamp"), "blockTimestamp", where, INT64_MAX // 1_000_000, required=False
    )
    block_hash_raw = _get(log, "blockHash", "block_hash")
    block_hash = None if block_hash_raw is None else "0x" + _bytes(block_hash_raw, "blockHash", where, 32).hex()
    removed = log.get("removed", False)
    if not isinstance(removed, bool):
        raise LogDecodeError(f"{where}: removed must be true or false, got {removed!r:.40}", "bad-log")
    return _Position(tx_hash, block_number, log_index, block_timestamp, block_hash, removed)


def _topic_words(topics: list[Any] | tuple[Any, ...], where: str) -> tuple[str, str, str]:
    """(order hash as 0x hex, maker, taker) from topics 1-3."""
    topic_words = b"".join(_bytes(t, f"topic{i}", where, 32, "bad-topics") for i, t in enumerate(topics[1:], 1))
    try:
        order_hash_raw, maker, taker = abi_decode(["bytes32", "address", "address"], topic_words)
    except DecodingError as exc:
        raise LogDecodeError(
            f"{where}: topics do not decode as (bytes32, address, address): {exc}", "bad-topics"
        ) from None
    return "0x" + order_hash_raw.hex(), maker, taker


def _order(log: Mapping[str, Any], layout: Layout, where: str) -> _Order:
    """The data words of the layout, read as the filled order."""
    data = _bytes(log.get("data"), "data", where, reason="bad-data")
    if len(data) != _DATA_LEN[layout]:
        raise LogDecodeError(
            f"{where}: {layout.value} OrderFilled data must be {_DATA_LEN[layout]} bytes, got {len(data)}", "bad-data"
        )
    try:
        words = abi_decode(_V1_TYPES if layout is Layout.V1 else _V2_TYPES, data)
    except DecodingError as exc:
        raise LogDecodeError(
            f"{where}: data does not decode as the {layout.value} OrderFilled: {exc}", "bad-data"
        ) from None
    return _v1_order(words, where) if layout is Layout.V1 else _v2_order(words, where)


def _v2_order(words: tuple[Any, ...], where: str) -> _Order:
    """V2/V3: the order's own side code (0 BUY, 1 SELL) and token id, then amounts, builder and metadata."""
    side_code, token, maker_amount, taker_amount, fee, builder_raw, metadata_raw = words
    if side_code not in (0, 1):
        raise LogDecodeError(f"{where}: side must be 0 (BUY) or 1 (SELL), got {side_code}", "invalid-value")
    if token == 0:
        raise LogDecodeError(f"{where}: tokenId is 0", "invalid-value")
    side = "BUY" if side_code == 0 else "SELL"
    return _Order(side, token, maker_amount, taker_amount, fee, "0x" + builder_raw.hex(), "0x" + metadata_raw.hex())


def _v1_order(words: tuple[Any, ...], where: str) -> _Order:
    """V1: the side is which asset id is collateral (0): a maker asset 0 BUYs the taker asset, and the reverse."""
    maker_asset, taker_asset, maker_amount, taker_amount, fee = words
    if maker_asset == 0 and taker_asset != 0:
        side, token = "BUY", taker_asset
    elif taker_asset == 0 and maker_asset != 0:
        side, token = "SELL", maker_asset
    else:
        raise LogDecodeError(
            f"{where}: exactly one of makerAssetId/takerAssetId must be 0 (collateral), "
            f"got {maker_asset} and {taker_asset}",
            "invalid-value",
        )
    return _Order(side, token, maker_amount, taker_amount, fee, None, None)


def _shares_and_collateral(order: _Order, where: str) -> tuple[int, int]:
    """(shares, collateral) of the fill: a BUY gives collateral (maker amount) for shares, a SELL the reverse.
    Refuses amounts beyond int64 and a fill of zero shares."""
    if order.side == "BUY":
        collateral, shares = order.maker_amount, order.taker_amount
    else:
        shares, collateral = order.maker_amount, order.taker_amount
    for name, value in (
        ("makerAmountFilled", order.maker_amount),
        ("takerAmountFilled", order.taker_amount),
        ("fee", order.fee),
    ):
        if value > INT64_MAX:
            raise LogDecodeError(f"{where}: {name}={value} is beyond any real fill (> 2^63-1 units)", "invalid-value")
    if shares == 0:
        raise LogDecodeError(f"{where}: zero shares filled", "invalid-value")
    return shares, collateral
