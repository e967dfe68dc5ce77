"""`horus demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from horus.cli.common import console, fail, friendly_errors, settings


@friendly_errors
def demo_command(
    follow: bool = typer.Option(False, "--follow", help="keep running after the replay is consumed"),
    fills: Path = typer.Option(None, help="JSON-lines leader fills (default: the bundled replay)"),
    follows: Path = typer.Option(None, help="JSON list of follows (default: the bundled one)"),
    rate: float = typer.Option(40.0, help="leader fills per second to send (0 = all at once)"),
    timeout: float = typer.Option(180.0, help="give up after this many seconds"),
    keep_stack: bool = typer.Option(False, "--keep-stack", help="leave the stack running afterwards"),
    source: str = typer.Option(
        "replay",
        "--source",
        help="replay: fills straight onto leader.fills; chain: a simulated leader trades "
        "on a test exchange on anvil and `horus ingest chain` picks the fills up",
    ),
) -> None:
    """Run the pipeline on a bundled replay of leader fills and watch it live."""
    from horus.ops.demo import DemoOptions, run_demo

    if source not in ("replay", "chain"):
        fail(f"unknown source {source!r}; choose replay or chain", code=2)
    options = DemoOptions(follow=follow, rate=rate, timeout=timeout, keep_stack=keep_stack, source=source)
    if fills:
        options.fills = fills
    if follows:
        options.follows = follows
    raise typer.Exit(run_demo(settings(), options, console))
