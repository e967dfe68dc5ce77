"""`horus ingest ...`: leader-fill sources feeding leader.fills (exactly once by event id)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import typer

from horus.cli.common import LOOPBACK, METRICS_HOST_HELP, serve_metrics

app = typer.Typer(help="Leader-fill ingestion: sources -> leader.fills.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Leader-fill ingestion: sources -> leader.fills."""


@app.command("chain")
def chain(
    exchange: list[str] = typer.Option(
        [],
        "--exchange",
        help="extra exchange contract address (repeatable), on top of the mainnet ones and HORUS_EXCHANGES",
    ),
    confirmations: int | None = typer.Option(
        None, "--confirmations", min=0, help="blocks to wait before emitting (default: settings, 0)"
    ),
    from_block: int | None = typer.Option(
        None, "--from-block", min=0, help="cold start (no cursor yet): first block to read; default: the next block"
    ),
    metrics_port: int = typer.Option(0, "--metrics-port", min=0, help="serve Prometheus metrics here (0: off)"),
    metrics_host: str = typer.Option(LOOPBACK, "--metrics-host", help=METRICS_HOST_HELP),
) -> None:
    """Follow OrderFilled logs of the followed leaders over WebSocket and produce LeaderFill events.

    SIGTERM/SIGINT stop it cleanly; SIGUSR1 drops the WebSocket and SIGUSR2 silences the subscriptions
    (fault drills: it must reconnect and backfill)."""
    from horus.ingest.chain import ChainSource, LeaderSet
    from horus.logs import configure_logging
    from horus.settings import get_settings
    from horus.venue.polymarket.exchanges import ExchangeBook

    configure_logging()
    settings = get_settings()
    if metrics_port:
        serve_metrics(metrics_port, metrics_host)
    try:
        book = ExchangeBook.configured(settings.exchanges, exchange)
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


async def poll_data_api(
    source,
    leaders,
    emit,
    *,
    stop: asyncio.Event,
    once: bool = False,
    interval_s: float = 15.0,
    since_ts: int | None = None,
) -> dict[str, int]:
    """The ``data-api`` command's loop: rounds of ``source.poll_once(emit)`` over the leaders ``leaders()``
    returns at the start of each round (the followed set may change between rounds), one round when
    ``once``, else one every ``interval_s`` until ``stop`` is set. ``emit(records)`` returns the event ids
    it produced (e.g. :meth:`FillSink.emit`); the rest count as duplicates suppressed. A failed leader
    fetch is logged by the source and retried next round; a failed ``emit`` is logged and the round
    retried (raised when ``once``). Returns totals: rounds, records, produced, duplicates, failed_fetches
    (leader fetches that failed), failed_rounds."""
    from prometheus_client import REGISTRY

    log = logging.getLogger("horus.ingest.data_api")
    totals = {"rounds": 0, "records": 0, "produced": 0, "duplicates": 0, "failed_fetches": 0, "failed_rounds": 0}
    current: list[str] | None = None

    def failures() -> float:
        return sum(
            REGISTRY.get_sample_value("horus_data_api_errors_total", {"kind": kind}) or 0.0
            for kind in ("http", "bad-page", "unexpected")
        )

    def sink(records: list[dict]) -> None:
        produced = emit(records)
        totals["records"] += len(records)
        totals["produced"] += len(produced)
        totals["duplicates"] += len(records) - len(produced)
        log.info(
            "data api round: %d fills seen, %d produced, %d already produced",
            len(records),
            len(produced),
            len(records) - len(produced),
            extra={"records": len(records), "produced": len(produced), "duplicates": len(records) - len(produced)},
        )

    while not stop.is_set():
        started = time.monotonic()
        wanted = sorted(leaders())
        if wanted != current:
            log.info("data api: following %d -> %d leaders", len(current or ()), len(wanted), extra={"leaders": wanted})
            source.leaders = wanted
            current = wanted
        failed_before = failures()
        try:
            await source.poll_once(sink, since_ts)
        except Exception:
            totals["failed_rounds"] += 1
            if once:
                raise
            log.exception("data api: producing a round failed; retrying in %.1fs", interval_s)
        totals["failed_fetches"] += int(failures() - failed_before)
        totals["rounds"] += 1
        if once:
            break
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, interval_s - (time.monotonic() - started)))
        except TimeoutError:
            pass
    return totals


def park_bad_rows(sink):
    """``on_bad_row`` for a DataApiSource: park the row in dead.letters with its JSON (topic ``data-api``, the
    offset derived from the row, so the same row parked again keeps its dead-letter id), delivered at once."""
    import json

    from horus.domain.ids import make_id

    def park(row, error) -> None:
        original = json.dumps(row, sort_keys=True, default=str).encode("utf-8")
        wallet = (row.get("proxy_wallet") or row.get("proxyWallet")) if isinstance(row, dict) else None
        sink.dead_letters.park(
            topic="data-api",
            partition=0,
            offset=int(make_id("data-api-row", original)[:15], 16),
            key=wallet if isinstance(wallet, str) else None,
            original=original,
            error=error,
            stage="ingest-data-api",
        )
        sink.flush()  # bad rows are rare: each is on the broker before the round goes on

    return park


@app.command("data-api")
def data_api(
    endpoint: str = typer.Option(
        "activity",
        "--endpoint",
        help="Data API route: activity (/v2/activity), trades (/v2/trades), classic-activity or classic-trades",
    ),
    once: bool = typer.Option(False, "--once", help="one round, then exit (backfills); exit 1 if a fetch failed"),
    interval: float | None = typer.Option(
        None, "--interval", help="seconds between rounds (default: settings, HORUS_DATA_API_POLL_INTERVAL_S)"
    ),
    since: int | None = typer.Option(
        None,
        "--since",
        min=0,
        help="first round: only fills at or after this unix time (default: the leaders' whole history)",
    ),
    metrics_port: int = typer.Option(0, "--metrics-port", min=0, help="serve Prometheus metrics here (0: off)"),
    metrics_host: str = typer.Option(LOOPBACK, "--metrics-host", help=METRICS_HOST_HELP),
) -> None:
    """Poll the Data API for the followed leaders' fills and produce LeaderFill events (source data-api).

    Event ids equal the chain source's for the same fill, so fills both sources see are produced once.
    HTTP failures are logged and retried next round. SIGTERM/SIGINT stop it cleanly."""
    from horus.ingest.data_api import ENDPOINTS

    if endpoint not in ENDPOINTS:
        raise typer.BadParameter(f"{endpoint!r} is not one of {', '.join(ENDPOINTS)}", param_hint="--endpoint")
    if interval is not None and not interval > 0:
        raise typer.BadParameter("must be a positive number of seconds", param_hint="--interval")

    import httpx

    from horus.ingest.chain import LeaderSet
    from horus.ingest.data_api import DataApiSource
    from horus.ingest.sink import FillSink
    from horus.logs import configure_logging
    from horus.settings import get_settings

    configure_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request; failures are logged by the source
    log = logging.getLogger("horus.ingest.data_api")
    settings = get_settings()
    interval_s = settings.data_api_poll_interval_s if interval is None else interval
    if metrics_port:
        serve_metrics(metrics_port, metrics_host)
    sink = FillSink(settings, "data-api")
    sink.recover()
    leaders = LeaderSet(settings)
    leaders.start()
    totals: dict[str, int] = {}

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=10.0), headers={"User-Agent": "horus-ingest"}
        ) as client:
            source = DataApiSource(settings, client, [], endpoint=endpoint, on_bad_row=park_bad_rows(sink))
            totals.update(
                await poll_data_api(
                    source, leaders, sink.emit, stop=stop, once=once, interval_s=interval_s, since_ts=since
                )
            )

    try:
        asyncio.run(main())
    finally:
        leaders.stop()
        sink.flush()
        log.info(
            "data api source stopped: %d rounds, %d produced, %d already produced, %d failed fetches",
            totals.get("rounds", 0),
            totals.get("produced", 0),
            totals.get("duplicates", 0),
            totals.get("failed_fetches", 0),
            extra={"totals": totals},
        )
    if once and totals.get("failed_fetches"):
        typer.echo(
            f"data-api: {totals['failed_fetches']} leader fetch(es) failed (see the log); the round was incomplete",
            err=True,
        )
        raise typer.Exit(1)
