"""`horus ingest replay FILE`: a replay file to leader.fills, exactly once by event id."""

from __future__ import annotations

import typer

from horus.cli.common import console, fail, friendly_errors, settings


@friendly_errors
def replay_command(
    file: str = typer.Argument(
        ..., help="JSON / JSON-lines file: logs, receipts, Data API rows or LeaderFill JSON; '-' reads stdin"
    ),
    exchange: list[str] = typer.Option(
        None, "--exchange", metavar="ADDRESS", help="also accept OrderFilled logs from this contract (repeatable)"
    ),
    leader: list[str] = typer.Option(None, "--leader", metavar="ADDRESS", help="only fills of these wallets"),
    rpc: str = typer.Option(
        None, "--rpc", help="JSON-RPC URL to look up block timestamps that logs lack (receipts carry none)"
    ),
) -> None:
    """Produce every leader fill in FILE to leader.fills; fills already produced by any source are skipped,
    undecodable inputs are parked in dead.letters with their raw JSON."""
    from horus.cli.fills import read_input, validate_addresses
    from horus.domain.fills import AggregationError
    from horus.ingest.replay import UnreadableInput, ingest_replay
    from horus.venue.polymarket.exchanges import ExchangeBook

    book = ExchangeBook.mainnet().with_addresses(validate_addresses(exchange), name="--exchange")

    def block_time_from_node(number: int) -> int:
        from horus.ops.stack.anvil import rpc as call

        return int(call(rpc, "eth_getBlockByNumber", [hex(number), False])["timestamp"], 16)

    try:
        report = ingest_replay(
            settings(),
            read_input(file),
            file,
            book,
            validate_addresses(leader) or None,
            block_time_from_node if rpc else None,
        )
    except UnreadableInput as exc:
        fail(str(exc))
    except AggregationError as exc:
        fail(f"{exc}. Logs need block timestamps: include `blockTimestamp`, or pass --rpc URL to look them up")
    console.print(
        f"{report.records} leader fill(s) in {file}: {report.produced} new, {report.duplicates} already "
        f"produced; {report.parked} undecodable or refused input(s) parked in dead.letters, "
        f"{report.other_events} other event(s) ignored, {report.skipped_rows} non-trade row(s) skipped"
    )
