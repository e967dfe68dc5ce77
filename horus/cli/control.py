"""`horus pause | resume | kill` and `horus control status`: operator switches on `control.commands`.

Every decide instance folds the whole compacted topic, so a command is honoured as soon as it is read.
`control status` folds the topic itself (with the same fold the stages use), so it shows what the
stages see even when the projections are not running.
"""

from __future__ import annotations

import getpass
import json
from typing import cast

import typer
from rich.table import Table

from horus.cli.common import console, fail, friendly_errors, settings

app = typer.Typer(help="Operator switches: pauses and the kill switch (control.commands).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Operator switches: pauses and the kill switch (control.commands)."""


def send(scope: str, verb: str, target: str | None, reason: str | None, issued_by: str | None) -> tuple[dict, int, int]:
    """Produce one ControlCommand keyed by its switch; returns it and its (partition, offset)."""
    from horus import commands
    from horus.domain.control import ControlError

    try:
        command, (partition, offset) = commands.send_control(settings(), scope, verb, target, reason, issued_by)
    except ControlError as exc:
        fail(str(exc), 2)
    except commands.NotAccepted as exc:
        fail(str(exc))
    return command, partition, offset


def _scope(global_: bool, follower: str | None, market: str | None) -> tuple[str, str | None]:
    chosen = [name for name, given in (("--global", global_), ("--follower", follower), ("--market", market)) if given]
    if len(chosen) != 1:
        fail("give exactly one of --global, --follower ADDRESS, --market CONDITION_OR_TOKEN_ID", 2)
    if global_:
        return "GLOBAL", None
    if follower is not None:
        from horus.domain.config import ConfigInvalid, normalize_address

        try:
            return "FOLLOWER", normalize_address(follower, "--follower")
        except ConfigInvalid as exc:
            fail(str(exc), 2)
    return "MARKET", cast(str, market).strip().lower()  # exactly one option was given, and it is --market


def _report(command: dict, partition: int, offset: int) -> None:
    where = "everything" if command["scope"] == "GLOBAL" else f"{command['scope'].lower()} {command['target']}"
    console.print(
        f"{command['command']} {where}"
        + (f": {command['reason']}" if command["reason"] else "")
        + f" (control.commands partition {partition}, offset {offset})",
        highlight=False,
    )


GLOBAL = typer.Option(False, "--global", help="every follower and market")
FOLLOWER = typer.Option(None, "--follower", help="one follower (trading address)")
MARKET = typer.Option(None, "--market", help="one market (condition id) or outcome token id")
BY = typer.Option(None, "--by", help="who issues it (default: the OS user)")


def _issuer(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "operator"


@friendly_errors
def pause_command(
    global_: bool = GLOBAL,
    follower: str | None = FOLLOWER,
    market: str | None = MARKET,
    reason: str | None = typer.Option(None, "--reason"),
    by: str | None = BY,
) -> None:
    """Pause copying globally, for one follower, or for one market (new candidates are SKIPped)."""
    scope, target = _scope(global_, follower, market)
    _report(*send(scope, "PAUSE", target, reason, _issuer(by)))


@friendly_errors
def resume_command(
    global_: bool = GLOBAL,
    follower: str | None = FOLLOWER,
    market: str | None = MARKET,
    reason: str | None = typer.Option(None, "--reason"),
    by: str | None = BY,
) -> None:
    """Lift a pause (or, with --global, the kill switch)."""
    scope, target = _scope(global_, follower, market)
    _report(*send(scope, "RESUME", target, reason, _issuer(by)))


@friendly_errors
def kill_command(
    reason: str = typer.Option(..., "--reason", help="why (shown in every SKIP)"), by: str | None = BY
) -> None:
    """The global kill switch: nothing is copied until `horus resume --global`."""
    _report(*send("GLOBAL", "KILL", None, reason, _issuer(by)))


@app.command("status")
@friendly_errors
def status(as_json: bool = typer.Option(False, "--json", help="one JSON object")) -> None:
    """The switches that are on now (read from control.commands)."""
    from projections import queries

    try:
        active = queries.active_switches(settings())
    except queries.TopicNotRead as exc:
        fail(str(exc))
    if as_json:
        typer.echo(
            json.dumps(
                {key: {"command": verb, "reason": why} for key, (verb, why) in sorted(active.items())}, sort_keys=True
            )
        )
        return
    if not active:
        console.print("no active switches: copying runs normally")
        return
    table = Table("switch", "command", "reason")
    for key, (verb, why) in sorted(active.items()):
        table.add_row(key, verb, why or "-")
    console.print(table)
