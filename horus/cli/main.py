"""`horus`: the command line. Each command group lives in its own module; this file wires them."""

from __future__ import annotations

import typer

from horus.cli import config as config_cli
from horus.cli import contracts, db, fills, ingest, projections, stack, topics
from horus.cli import control as control_cli
from horus.cli import credentials as credentials_cli
from horus.cli import decide as decide_cli
from horus.cli import orders as orders_cli
from horus.cli.chaos import chaos_command
from horus.cli.demo import demo_command
from horus.cli.ingest_replay import replay_command
from horus.cli.ledger import ledger_command, reconcile_command
from horus.cli.tap import tap_command
from horus.cli.venue import venue_command
from horus.cli.why import why_command
from horus.cli.worker import worker as worker_command

app = typer.Typer(
    help="Horus: copy-trading engine for Polymarket on Apache Kafka.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(topics.app, name="topics")
app.add_typer(db.app, name="db")
app.add_typer(projections.app, name="projections")
app.add_typer(projections.replay_app, name="replay")
app.add_typer(contracts.app, name="contracts")
app.add_typer(fills.app, name="fills")
app.add_typer(ingest.app, name="ingest")
app.add_typer(orders_cli.app, name="orders")
app.add_typer(credentials_cli.app, name="credentials")
ingest.app.command("replay")(replay_command)
app.command("tap")(tap_command)
app.command("demo")(demo_command)
app.command("chaos")(chaos_command)
app.command("worker")(worker_command)
app.command("ledger")(ledger_command)
app.command("reconcile")(reconcile_command)
app.command("venue")(venue_command)
app.add_typer(config_cli.follower_app, name="follower")
app.add_typer(config_cli.follow_app, name="follow")
app.add_typer(control_cli.app, name="control")
app.command("pause")(control_cli.pause_command)
app.command("resume")(control_cli.resume_command)
app.command("kill")(control_cli.kill_command)
app.command("why")(why_command)
app.add_typer(decide_cli.app, name="decide")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # `python -m horus.cli.main`
    app()
