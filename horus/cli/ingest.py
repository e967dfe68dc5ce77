"""`horus ingest ...`: leader-fill sources feeding leader.fills (exactly once by event id)."""
from __future__ import annotations

import asyncio
import logging
import signal
from typing import Optional

import typer

app = typer.Typer(help="Leader-fill ingestion: sources -> leader.fills.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Leader-fill ingestion: sources -> leader.fills."""


@app.command("chain")
def chain(
    exchange: list[str] = typer.Option([], "--exchange", help="extra exchange contract address (repeatable), "
                                       "on top of the mainnet ones and HORUS_EXCHANGES"),
    confirmations: Optional[int] = typer.Option(None, "--confirmations", min=0,
                                                help="blocks to wait before emitting (default: settings, 0)"),
    from_block: Optional[int] = typer.Option(None, "--from-block", min=0,
                                             help="cold start (no cursor yet): first block to read; "
                                                  "default: the next block"),
    metrics_port: int = typer.Option(0, "--metrics-port", min=0, help="serve Prometheus metrics here (0: off)"),
) -> None:
    """Follow OrderFilled logs of the followed leaders over WebSocket and produce LeaderFill events.

    SIGTERM/SIGINT stop it cleanly; SIGUSR1 drops the WebSocket and SIGUSR2 silences the subscriptions
    (fault drills: it must reconnect and backfill)."""
    from horus.ingest.chain import ChainSource, LeaderSet, book_for
    from horus.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    try:
        book = book_for(settings, exchange)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--exchange") from None
    leaders = LeaderSet(settings)
    leaders.start()
    source = ChainSource(settings, book, leaders=leaders, confirmations=confirmations, from_block=from_block)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, source.drop_socket)
        loop.add_signal_handler(signal.SIGUSR2, source.silence)
        await source.run(stop)

    try:
        asyncio.run(main())
    finally:
        leaders.stop()
        logging.getLogger("horus.ingest.chain").info("chain source stopped: %d fills produced", source.emitted)
