"""`horus fills decode`: raw exchange logs -> LeaderFill JSON lines (the replay-file form)."""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import typer

app = typer.Typer(help="Leader fills: decode exchange logs into LeaderFill events.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Leader fills: decode exchange logs into LeaderFill events."""


class UnreadableInput(ValueError):
    pass


def _parse(text: str) -> list[Any]:
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


def _collect(values: list[Any]) -> tuple[list[Mapping], list[str]]:
    """Logs from logs, lists of logs, receipts (their ``logs``), lists of receipts and JSON-RPC responses."""
    logs: list[Mapping] = []
    problems: list[str] = []

    def visit(item: Any, where: str) -> None:
        if isinstance(item, list):
            for i, inner in enumerate(item):
                visit(inner, f"{where}[{i}]")
        elif isinstance(item, Mapping):
            if "result" in item and ("jsonrpc" in item or "id" in item) and "topics" not in item:
                visit(item["result"], f"{where}.result")
            elif "topics" in item:
                logs.append(item)
            elif isinstance(item.get("logs"), list):
                visit(item["logs"], f"{where}.logs")
            else:
                problems.append(f"{where}: neither a log (no 'topics') nor a receipt (no 'logs')")
        else:
            problems.append(f"{where}: expected a log or a receipt object, got {type(item).__name__}")

    for i, value in enumerate(values):
        visit(value, f"input[{i}]" if len(values) > 1 else "input")
    return logs, problems


def _read(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        with open(file, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UnreadableInput(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UnreadableInput(f"{file} is not UTF-8 text") from None


def _validate_addresses(values: list[str] | None) -> list[str]:
    from horus.venue.polymarket.exchanges import AddressBookError, normalize_address

    out = []
    for value in values or []:
        try:
            out.append(normalize_address(value))
        except AddressBookError as exc:
            raise typer.BadParameter(str(exc)) from None
    return out


@app.command()
def decode(
    file: str = typer.Argument("-", help="JSON file of logs or receipts; '-' or nothing reads stdin"),
    exchange: list[str] = typer.Option(None, "--exchange", metavar="ADDRESS",
                                       help="also accept OrderFilled logs from this contract (repeatable; "
                                            "layout recognised by topic0), e.g. anvil test exchanges"),
    leader: list[str] = typer.Option(None, "--leader", metavar="ADDRESS",
                                     help="only fills of this wallet (repeatable; default: every wallet)"),
) -> None:
    """Decode OrderFilled logs into LeaderFill JSON lines (one per tx, leader, token, side).

    Input: eth_getLogs log objects, transaction receipts (their logs), a single receipt, or JSON lines of those.

    Logs of the mainnet exchanges decode by default; add others with --exchange.

    Undecodable logs get one line each on stderr and the rest are still printed; other events are ignored.

    Exit 1 only when the input is not readable JSON.
    """
    from horus.domain.fill_json import leader_fill_to_json
    from horus.venue.polymarket.exchanges import ExchangeBook
    from horus.venue.polymarket.fills import LogDecodeError, NotOrderFilledError, aggregate, decode_log

    extra = _validate_addresses(exchange)
    leaders = _validate_addresses(leader) or None
    book = ExchangeBook.mainnet().with_addresses(extra, name="--exchange")
    try:
        logs, problems = _collect(_parse(_read(file)))
    except UnreadableInput as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    for problem in problems:
        typer.echo(f"skipped {problem}", err=True)
    fills, other, removed, bad = [], 0, 0, len(problems)
    for log in logs:
        if isinstance(log.get("topics"), list) and not log["topics"]:
            other += 1  # anonymous event: not OrderFilled
            continue
        try:
            fill = decode_log(log, book)
        except NotOrderFilledError:
            other += 1
            continue
        except LogDecodeError as exc:
            bad += 1
            typer.echo(f"skipped {exc} [{exc.reason}]", err=True)
            continue
        if fill.removed:
            removed += 1
            continue
        fills.append(fill)

    no_time: set[int] = set()

    def block_time(block_number: int) -> int:
        no_time.add(block_number)
        return 0

    records = aggregate(fills, leaders, source="chain", block_time=block_time)
    for record in records:
        sys.stdout.write(json.dumps(leader_fill_to_json(record)) + "\n")
    sys.stdout.flush()

    summary = (f"{len(records)} leader fill(s) from {len(fills)} OrderFilled log(s); {bad} undecodable, "
               f"{other} other event(s) ignored, {removed} removed log(s) skipped")
    if no_time:
        summary += (f"; {len(no_time)} block(s) without a timestamp in the input (receipts and eth_subscribe "
                    f"logs carry none): block_timestamp 0")
    typer.echo(summary, err=True)
