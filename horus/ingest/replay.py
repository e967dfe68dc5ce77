"""Replay files -> LeaderFill records: the input side shared by `horus fills decode` and `horus ingest replay`.

A replay file holds JSON values (one document, or JSON lines): eth_getLogs log objects, transaction
receipts (their `logs`), JSON-RPC responses wrapping either, Data API trade rows (v2 snake_case or
classic camelCase), or LeaderFill JSON (the form `horus fills decode` prints). Every kind maps to the
same deterministic event ids as the live sources, so replaying what a source already produced adds
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from horus.domain.fill_json import FillJsonError, leader_fill_from_json
from horus.domain.fills import DecodedFill, aggregate
from horus.venue.polymarket.data_api import SkippedRow, parse_row
from horus.venue.polymarket.exchanges import ExchangeBook
from horus.venue.polymarket.fills import FillDecodeError, LogDecodeError, NotOrderFilledError, decode_log


class UnreadableInput(ValueError):
    pass


def parse_json_values(text: str) -> list[Any]:
    """The input as JSON values: one JSON document, or JSON lines (one value per non-empty line)."""
    if not text.strip():
        return []
    try:
        return [json.loads(text)]
    except (ValueError, RecursionError) as whole_error:  # JSONDecodeError, too-long int, too deep
        values = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                values.append(json.loads(line))
            except (ValueError, RecursionError):
                if number == 1:  # not JSON lines either: report the whole-document error
                    raise UnreadableInput(f"input is not JSON: {whole_error}") from None
                raise UnreadableInput(f"line {number} is not JSON (input read as JSON lines)") from None
        return values


@dataclass
class Inputs:
    logs: list[Mapping] = field(default_factory=list)
    rows: list[Mapping] = field(default_factory=list)  # Data API rows
    fills: list[Mapping] = field(default_factory=list)  # LeaderFill JSON
    problems: list[tuple[str, Any]] = field(default_factory=list)  # (what is wrong, the raw value)


def _is_data_api_row(item: Mapping) -> bool:
    return ("proxy_wallet" in item or "proxyWallet" in item) and (
        "transaction_hash" in item or "transactionHash" in item
    )


def collect(values: list[Any], accept_rows: bool = True) -> Inputs:
    """Sort JSON values into logs, Data API rows and LeaderFill JSON (lists, receipts and JSON-RPC
    responses are opened); anything else is a problem, kept with its raw value."""
    found = Inputs()

    def visit(item: Any, where: str) -> None:
        if isinstance(item, list):
            for i, inner in enumerate(item):
                visit(inner, f"{where}[{i}]")
        elif isinstance(item, Mapping):
            if "result" in item and ("jsonrpc" in item or "id" in item) and "topics" not in item:
                visit(item["result"], f"{where}.result")
            elif "topics" in item:
                found.logs.append(item)
            elif isinstance(item.get("logs"), list):
                visit(item["logs"], f"{where}.logs")
            elif accept_rows and _is_data_api_row(item):
                found.rows.append(item)
            elif accept_rows and "event_id" in item and "shares" in item:
                found.fills.append(item)
            else:
                kinds = "a log (no 'topics') nor a receipt (no 'logs')" + (
                    ", a Data API row or a LeaderFill" if accept_rows else ""
                )
                found.problems.append((f"{where}: neither {kinds}", item))
        else:
            found.problems.append((f"{where}: expected a log or a receipt object, got {type(item).__name__}", item))

    for i, value in enumerate(values):
        visit(value, f"input[{i}]" if len(values) > 1 else "input")
    return found


@dataclass
class Decoded:
    fills: list[DecodedFill] = field(default_factory=list)
    other: int = 0  # other events (not OrderFilled): ignored
    removed: int = 0  # logs marked removed (reorged away)
    bad: list[tuple[str, Any]] = field(default_factory=list)  # (why, raw log)


def decode_logs(logs: Iterable[Mapping], book: ExchangeBook) -> Decoded:
    out = Decoded()
    for log in logs:
        if isinstance(log.get("topics"), list) and not log["topics"]:
            out.other += 1  # anonymous event: not OrderFilled
            continue
        try:
            fill = decode_log(log, book)
        except NotOrderFilledError:
            out.other += 1
            continue
        except LogDecodeError as exc:
            out.bad.append((f"{exc} [{exc.reason}]", log))
            continue
        if fill.removed:
            out.removed += 1
        else:
            out.fills.append(fill)
    return out


@dataclass
class Replay:
    records: list[dict]
    decoded: Decoded
    skipped_rows: int
    problems: list[tuple[str, Any]]  # undecodable inputs: (why, raw value), to park as dead letters


def replay_records(
    inputs: Inputs,
    book: ExchangeBook,
    leaders: Iterable[str] | None = None,
    block_time: Callable[[int], int | None] | None = None,
) -> Replay:
    """LeaderFill records from everything in `inputs`: logs and Data API rows are aggregated per source
    (one record per tx, leader, token, side); LeaderFill JSON is taken as it is."""
    decoded = decode_logs(inputs.logs, book)
    problems = list(inputs.problems) + decoded.bad
    records = aggregate(decoded.fills, leaders, source="replay", block_time=block_time) if decoded.fills else []
    row_fills, skipped = [], 0
    for row in inputs.rows:
        try:
            parsed = parse_row(row)
        except FillDecodeError as exc:
            problems.append((f"Data API row: {exc}", row))
            continue
        if isinstance(parsed, SkippedRow):
            skipped += 1
        else:
            row_fills.append(parsed)
    if row_fills:
        records += aggregate(row_fills, leaders, source="replay")
    for obj in inputs.fills:
        try:
            records.append(leader_fill_from_json(obj, source="replay"))
        except (FillJsonError, ValueError) as exc:
            problems.append((f"LeaderFill JSON: {exc}", obj))
    return Replay(records, decoded, skipped, problems)


@dataclass
class ReplayReport:
    records: int
    produced: int
    duplicates: int
    parked: int
    other_events: int
    skipped_rows: int


def ingest_replay(
    settings,
    text: str,
    name: str,
    book: ExchangeBook,
    leaders: Iterable[str] | None = None,
    block_time: Callable[[int], int | None] | None = None,
    batch: int = 1000,
) -> ReplayReport:
    """Everything in a replay file to leader.fills through the exactly-once sink; undecodable inputs
    are parked in dead.letters with their raw JSON (topic `replay:<name>`, offset = their index); fills the sink
    refuses (dated in the future, values beyond the schema) are parked by the sink (topic `ingest:replay`)."""
    from horus.ingest.sink import FillSink  # Kafka and Postgres: only when actually ingesting

    replay = replay_records(collect(parse_json_values(text)), book, leaders, block_time)
    sink = FillSink(settings, "replay")
    sink.recover()
    for index, (why, raw) in enumerate(replay.problems):
        sink.dead_letters.park(
            topic=f"replay:{name}",
            partition=0,
            offset=index,
            key=None,
            original=json.dumps(raw, default=str).encode(),
            error=why,
            stage="ingest-replay",
        )
    produced = []
    for start in range(0, len(replay.records), batch):
        produced += sink.emit(replay.records[start : start + batch])
    sink.flush()
    # refused: dated in the future or beyond the schema, parked by the sink like the undecodable inputs
    return ReplayReport(
        len(replay.records),
        len(produced),
        len(replay.records) - len(produced) - sink.refused,
        len(replay.problems) + sink.refused,
        replay.decoded.other,
        replay.skipped_rows,
    )
