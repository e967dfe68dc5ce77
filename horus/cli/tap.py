"""`horus tap TOPIC`: decode a topic to JSON lines on stdout."""

from __future__ import annotations

import json
import sys

import typer

from horus.cli.common import fail, friendly_errors, settings


@friendly_errors
def tap_command(
    topic: str = typer.Argument(..., help="catalogue name (e.g. leader.fills) or a full topic name"),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="start at the oldest offset"),
    key: str = typer.Option(None, "--key", help="only records with this key"),
    grep: str = typer.Option(None, "--grep", help="only records whose JSON contains this text"),
    limit: int = typer.Option(None, "--limit", min=1, help="stop after N records"),
    follow: bool = typer.Option(False, "--follow", help="keep waiting for new records"),
) -> None:
    """Print records as JSON lines with partition, offset and timestamp; nothing is committed."""
    from horus.ops.tap import TapOptions, tap

    options = TapOptions(from_beginning=from_beginning, key=key, grep=grep, limit=limit, follow=follow)
    try:
        for line in tap(settings(), topic, options):
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
    except ValueError as exc:
        fail(str(exc))
