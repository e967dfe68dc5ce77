"""Polymarket: exchange address book, `OrderFilled` log decoding, Data API rows, aggregation into LeaderFill."""

from horus.venue.polymarket.data_api import (
    Page,
    ParsedRows,
    RowDecodeError,
    SkippedRow,
    page_rows,
    parse_row,
    parse_rows,
)
from horus.venue.polymarket.exchanges import (
    MAINNET_EXCHANGES,
    ORDER_FILLED_TOPICS,
    ORDER_FILLED_V1_TOPIC,
    ORDER_FILLED_V2_TOPIC,
    Exchange,
    ExchangeBook,
    Layout,
)
from horus.venue.polymarket.fills import (
    AggregationError,
    DecodedFill,
    FillDecodeError,
    LogDecodeError,
    MissingTimestampError,
    NotOrderFilledError,
    aggregate,
    decode_log,
    format_price,
    is_order_filled,
)

__all__ = [
    "MAINNET_EXCHANGES",
    "ORDER_FILLED_TOPICS",
    "ORDER_FILLED_V1_TOPIC",
    "ORDER_FILLED_V2_TOPIC",
    "Exchange",
    "ExchangeBook",
    "Layout",
    "AggregationError",
    "DecodedFill",
    "FillDecodeError",
    "LogDecodeError",
    "MissingTimestampError",
    "NotOrderFilledError",
    "aggregate",
    "decode_log",
    "format_price",
    "is_order_filled",
    "Page",
    "ParsedRows",
    "RowDecodeError",
    "SkippedRow",
    "page_rows",
    "parse_row",
    "parse_rows",
]
