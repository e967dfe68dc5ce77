"""`horus topics create | list`."""

from __future__ import annotations

import typer
from rich.table import Table

from horus.cli.common import console, friendly_errors, settings
from horus.kafka.admin import create_topics, describe_topics

app = typer.Typer(help="Create and inspect Horus's topics.", no_args_is_help=True)


@app.command()
@friendly_errors
def create(partitions: int = typer.Option(None, help="partitions per topic (default: HORUS_PARTITIONS, 12)")) -> None:
    """Create every topic of the pipeline plus the dead-letter topic (existing ones are left as they are)."""
    for name, outcome in create_topics(settings(), partitions).items():
        console.print(f"  {name}: {outcome}")


@app.command("list")
@friendly_errors
def list_() -> None:
    """Topics with partition counts, end offsets and cleanup policy."""
    table = Table("topic", "partitions", "end offsets", "policy")
    for info in describe_topics(settings()):
        table.add_row(info.name, str(info.partitions), str(info.end_offsets), info.cleanup_policy)
    console.print(table)
