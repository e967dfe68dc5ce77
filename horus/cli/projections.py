"""`horus projections run | lag` and `horus replay projections`."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from horus.cli.common import LOOPBACK, METRICS_HOST_HELP, console, friendly_errors, serve_metrics, settings
from horus.signals import stop_on_signals

app = typer.Typer(help="Fold the topics into Postgres tables.", no_args_is_help=True)
replay_app = typer.Typer(help="Rebuild state from the topics.", no_args_is_help=True)


@app.command()
@friendly_errors
def run(
    until_caught_up: bool = typer.Option(
        False, "--until-caught-up", help="stop once the end offsets at start are folded"
    ),
    batch_size: int = typer.Option(1000, min=1, help="messages per transaction"),
    metrics_port: int = typer.Option(0, "--metrics-port", min=0, help="serve Prometheus metrics here (0: off)"),
    metrics_host: str = typer.Option(LOOPBACK, "--metrics-host", help=METRICS_HOST_HELP),
) -> None:
    """Fold every topic into its table, offsets stored in the same transaction (SIGTERM stops cleanly)."""
    from prometheus_client import Counter

    from horus.logs import configure_logging
    from projections import run_projections

    configure_logging()
    rows_total = Counter("horus_projection_rows_total", "Rows written by the projections", ["table"])
    batches_total = Counter("horus_projection_batches_total", "Batches committed by the projections")
    if metrics_port:
        serve_metrics(metrics_port, metrics_host)

    stop = stop_on_signals()
    started = time.monotonic()
    last_report = [started]

    def report(result) -> None:
        batches_total.inc()
        for table, rows in result.written.items():
            rows_total.labels(table).inc(rows)
        now = time.monotonic()
        if now - last_report[0] >= 5.0:
            last_report[0] = now
            stats = result.stats
            console.print(
                f"projections: {stats.messages:,} messages, {sum(stats.rows_written.values()):,} rows, "
                f"{stats.dead_letters:,} dead letters, {stats.rows_per_second:,.0f} rows/s"
            )

    stats = run_projections(settings(), stop, until_caught_up=until_caught_up, on_batch=report, batch_size=batch_size)
    console.print(f"projections stopped after {time.monotonic() - started:.1f}s: {stats.as_dict()}")


@app.command()
@friendly_errors
def lag() -> None:
    """Stored next offset, end offset and lag per partition."""
    from projections import projection_lag

    table = Table("projection", "topic", "partition", "next offset", "end offset", "lag")
    for row in projection_lag(settings()):
        table.add_row(
            row["projection"],
            row["topic"],
            str(row["partition"]),
            str(row["next_offset"]),
            str(row["end_offset"]),
            str(row["lag"]),
        )
    console.print(table)


@replay_app.command("projections")
@friendly_errors
def replay_projections() -> None:
    """Truncate the projection tables, fold every topic from offset 0, print a checksum per table."""
    from projections import replay_all
    from projections.replay import ReplayBlocked

    started = time.monotonic()
    try:
        checksums = replay_all(settings())
    except ReplayBlocked as exc:
        console.print(f"[red]error:[/] {exc}. Stop `horus projections run` (and the demo) first.")
        raise typer.Exit(1) from exc
    table = Table("table", "rows", "md5")
    for name, checksum in checksums.items():
        table.add_row(name, str(checksum.rows), checksum.md5)
    console.print(table)
    console.print(f"replayed in {time.monotonic() - started:.1f}s")
