"""Pure parts of the chain source: URLs, filters, block ranges, cursor arithmetic, log batches, watchdog.

No I/O here; :mod:`horus.ingest.chain` does the talking.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from horus.domain.fills import DecodedFill
from horus.venue.polymarket.exchanges import ExchangeBook
from horus.venue.polymarket.fills import LogDecodeError, decode_log

#: log_index stored for a block that had no followed fill (the block is still fully processed)
NO_LOG = -1


def ws_url(rpc_url: str) -> str:
    """ws:// (or wss://) on the same host and port as an http(s) JSON-RPC URL; ws URLs pass through."""
    parts = urlsplit(rpc_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"cannot derive a WebSocket URL from {rpc_url!r}")
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def logs_filter(
    book: ExchangeBook, leaders: Iterable[str], from_block: int | None = None, to_block: int | None = None
) -> dict[str, Any]:
    """eth_subscribe("logs") / eth_getLogs filter: the book's addresses, topic0 = either OrderFilled,
    topic2 (maker) one of ``leaders``. Never call it with no leaders: an empty topic list matches anything."""
    leaders = sorted(set(leaders))
    if not leaders:
        raise ValueError("a logs filter needs at least one leader (an empty topic list is a wildcard)")
    flt = book.log_filter(leaders)
    if from_block is not None:
        flt["fromBlock"] = hex(from_block)
    if to_block is not None:
        flt["toBlock"] = hex(to_block)
    return flt


def safe_head(head: int, confirmations: int) -> int:
    """The highest block a fill may come from to be emitted now."""
    return head - confirmations


def start_block(cursor_block: int | None, from_block: int | None, head: int, confirmations: int) -> int:
    """First block to process: after the cursor; on a cold start --from-block, else the next safe block."""
    if cursor_block is not None:
        return cursor_block + 1
    if from_block is not None:
        return max(0, from_block)
    return max(0, safe_head(head, confirmations) + 1)


def block_ranges(first: int, last: int, chunk: int) -> list[tuple[int, int]]:
    """[first, last] cut into inclusive ranges of at most ``chunk`` blocks."""
    if chunk < 1:
        raise ValueError("chunk must be >= 1")
    return [(lo, min(last, lo + chunk - 1)) for lo in range(first, last + 1, chunk)]


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def raw_log_json(log: Any) -> bytes:
    """The log as JSON (bytes as 0x hex), the dead letter's original."""
    return json.dumps(_plain(log), sort_keys=True, default=str).encode("utf-8")


def log_position(log: Mapping) -> tuple[int, int]:
    """(block number, log index) of a node log (ints or hex)."""

    def num(value: Any) -> int:
        return int(value, 16) if isinstance(value, str) else int(value)

    return num(log["blockNumber"]), num(log["logIndex"])


@dataclass
class Batch:
    """A range of logs, decoded: fills (per tx, complete), bad logs and removed (reorged) fills."""

    fills: list[DecodedFill] = field(default_factory=list)
    bad: list[tuple[Mapping, LogDecodeError]] = field(default_factory=list)
    removed: list[DecodedFill] = field(default_factory=list)
    last_position: tuple[int, int] | None = None

    def blocks_needing_time(self) -> set[int]:
        return {f.block_number for f in self.fills if f.block_timestamp is None and f.block_number is not None}


def decode_batch(logs: Iterable[Mapping], book: ExchangeBook) -> Batch:
    """Decode every log of a block range (all logs of a transaction must be in it)."""
    batch = Batch()
    for log in logs:
        try:
            fill = decode_log(log, book)
        except LogDecodeError as exc:
            batch.bad.append((log, exc))
        else:
            (batch.removed if fill.removed else batch.fills).append(fill)
        try:
            position = log_position(log)
        except (KeyError, TypeError, ValueError):
            continue
        if batch.last_position is None or position > batch.last_position:
            batch.last_position = position
    return batch


def cursor_after(range_end: int, batch: Batch) -> tuple[int, int]:
    """The cursor once a range ending at ``range_end`` is fully emitted."""
    if batch.last_position is not None and batch.last_position[0] == range_end:
        return batch.last_position
    return range_end, NO_LOG


def stall_reason(
    *,
    now: float,
    last_message_at: float,
    stall_seconds: float,
    seen_head: int | None,
    probed_head: int | None,
    last_head_at: float | None,
    max_head_age: float = 0.0,
) -> str | None:
    """Why the live socket should be dropped, or None.

    Silent for ``stall_seconds`` and the chain's head (``probed_head``, asked separately) is past the last
    head the socket announced: stall. A failed probe (None) after the silence: stall. With ``max_head_age``,
    no head at all for that long: stall (a quiet dev chain mines no blocks, so it is off by default)."""
    if max_head_age and last_head_at is not None and now - last_head_at >= max_head_age:
        return f"no new head for {now - last_head_at:.1f}s"
    if now - last_message_at < stall_seconds:
        return None
    if probed_head is None:
        return f"silent for {now - last_message_at:.1f}s and the head probe failed"
    if seen_head is None or probed_head > seen_head:
        return (
            f"silent for {now - last_message_at:.1f}s while the head moved to {probed_head} "
            f"(last announced {seen_head})"
        )
    return None
