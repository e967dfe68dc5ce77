"""`horus fills decode`: raw exchange logs -> LeaderFill JSON lines (the replay-file form)."""

from __future__ import annotations

import json
import sys

import typer

from horus.ingest.replay import UnreadableInput

app = typer.Typer(help="Leader fills: decode exchange logs into LeaderFill events.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Leader fills: decode exchange logs into LeaderFill events."""


def read_input(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        with open(file, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UnreadableInput(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UnreadableInput(f"{file} is not UTF-8 text") from None


def validate_addresses(values: list[str] | None) -> list[str]:
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
    exchange: list[str] = typer.Option(
        None,
        "--exchange",
        metavar="ADDRESS",
        help="also accept OrderFilled logs from this contract (repeatable; "
        "layout recognised by topic0), e.g. anvil test exchanges",
    ),
    leader: list[str] = typer.Option(
        None, "--leader", metavar="ADDRESS", help="only fills of this wallet (repeatable; default: every wallet)"
    ),
) -> None:
    """Decode OrderFilled logs into LeaderFill JSON lines (one per tx, leader, token, side).

    Input: eth_getLogs log objects, transaction receipts (their logs), a single receipt, or JSON lines of those.

    Logs of the mainnet exchanges decode by default; add others with --exchange.

    Undecodable logs get one line each on stderr and the rest are still printed; other events are ignored.

    Exit 1 only when the input is not readable JSON.
    """
    from horus.domain.fill_json import leader_fill_to_json
    from horus.domain.fills import aggregate
    from horus.ingest.replay import collect, decode_logs, parse_json_values
    from horus.venue.polymarket.exchanges import ExchangeBook

    extra = validate_addresses(exchange)
    leaders = validate_addresses(leader) or None
    book = ExchangeBook.mainnet().with_addresses(extra, name="--exchange")
    try:
        inputs = collect(parse_json_values(read_input(file)), accept_rows=False)
    except UnreadableInput as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    decoded = decode_logs(inputs.logs, book)
    for problem, _raw in inputs.problems + decoded.bad:
        typer.echo(f"skipped {problem}", err=True)
    fills, other, removed, bad = decoded.fills, decoded.other, decoded.removed, len(inputs.problems) + len(decoded.bad)

    no_time: set[int] = set()

    def block_time(block_number: int) -> int:
        no_time.add(block_number)
        return 0

    records = aggregate(fills, leaders, source="chain", block_time=block_time)
    for record in records:
        sys.stdout.write(json.dumps(leader_fill_to_json(record)) + "\n")
    sys.stdout.flush()

    summary = (
        f"{len(records)} leader fill(s) from {len(fills)} OrderFilled log(s); {bad} undecodable, "
        f"{other} other event(s) ignored, {removed} removed log(s) skipped"
    )
    if no_time:
        summary += (
            f"; {len(no_time)} block(s) without a timestamp in the input (receipts and eth_subscribe "
            f"logs carry none): block_timestamp 0"
        )
    typer.echo(summary, err=True)
