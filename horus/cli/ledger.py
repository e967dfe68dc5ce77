"""`horus ledger` (what the executor recorded) and `horus reconcile` (settle open rows now, or report).

Neither prints a signed body or an API key: rows show the order hash, status, fills and the error.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from horus.cli.common import console, fail, friendly_errors, settings
from horus.domain.events import LEDGER_STATUSES

STATUSES = LEDGER_STATUSES


def _rows(
    config,
    *,
    status: str | None,
    follower: str | None,
    intent: str | None,
    limit: int,
    stuck_after_s: float | None = None,
) -> list[dict]:
    from projections import queries

    try:
        with queries.connect(config) as conn:
            return queries.ledger_rows(
                conn, status=status, follower=follower, intent=intent, limit=limit, stuck_after_s=stuck_after_s
            )
    except queries.SchemaNotMigrated:
        fail("the database schema is older than the execution ledger: run `horus db upgrade`")
    except queries.DatabaseUnreachable as exc:
        fail(f"Postgres: {exc}. Is the stack up? Try `horus stack status`.")


def _print(rows: list[dict], as_json: bool, title: str) -> None:
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    from rich.table import Table

    table = Table(title=title)
    for column in ("intent", "follower", "status", "order hash", "side", "size", "filled", "attempts", "error"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["idempotency_key"][:12],
            r["follower"][:12],
            r["status"],
            (r["order_hash"] or "")[:14],
            r["side"],
            f"{r['size_e6'] / 1e6:g}",
            f"{r['filled_shares_e6'] / 1e6:g}",
            str(r["attempts"]),
            (r["last_error"] or "")[:60],
        )
    console.print(table)


@friendly_errors
def ledger_command(
    status: str = typer.Option(None, "--status", help=f"only rows in this status: {', '.join(STATUSES)}"),
    follower: str = typer.Option(None, "--follower", help="only this follower's rows (trading address)"),
    intent: str = typer.Option(None, "--intent", help="only this intent id"),
    limit: int = typer.Option(50, "--limit", min=1, max=100_000, help="newest rows first, at most this many"),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table"),
) -> None:
    """Show the execution ledger (copy_trades): one row per COPY, its order hash, status and fills."""
    if status and status.upper() not in STATUSES:
        fail(f"--status must be one of {', '.join(STATUSES)}, got {status!r}", code=2)
    rows = _rows(settings(), status=status.upper() if status else None, follower=follower, intent=intent, limit=limit)
    _print(rows, as_json, f"copy_trades ({len(rows)} rows)")


@friendly_errors
def reconcile_command(
    once: bool = typer.Option(False, "--once", help="one round, then exit (default: every reconcile_interval_s)"),
    report: bool = typer.Option(False, "--report", help="only list rows open past the alert bound; no venue calls"),
    accounts: Path = typer.Option(
        None,
        "--accounts",
        exists=True,
        dir_okay=False,
        help="JSON list of FollowerConfig objects (default: the followers on "
        "config.changes; ledger rows name the credentials of their orders)",
    ),
    as_json: bool = typer.Option(False, "--json", help="JSON output for --report"),
) -> None:
    """Settle PENDING / UNKNOWN / SUBMITTED ledger rows from the venue and the chain (and re-emit results
    a crash kept from the broker). With --report, list what is stuck instead."""
    config = settings()
    if report:
        stuck = _rows(
            config, status=None, follower=None, intent=None, limit=100_000, stuck_after_s=config.reconcile_alert_after_s
        )
        _print(stuck, as_json, f"open longer than {config.reconcile_alert_after_s:g}s: {len(stuck)} rows")
        if stuck:
            raise typer.Exit(3)  # scripts and alerting can key on it
        return
    import asyncio

    from horus.signals import stop_on_signals
    from streams.execute import accounts_from_file, build_service, until_stopped

    try:
        follower_account = accounts_from_file(accounts) if accounts is not None else None
    except ValueError as exc:
        fail(str(exc), code=2)
    stop = stop_on_signals()
    service = build_service(config, follower_account)

    for r in asyncio.run(until_stopped(lambda stopper: service.reconcile_only(stopper, once=once), stop)):
        console.print(
            f"looked at {r.looked_at} open rows, settled {r.settled}, confirmed {r.confirmed}, "
            f"re-emitted {r.reemitted}, {len(r.stuck or ())} open past {config.reconcile_alert_after_s:g}s"
        )
