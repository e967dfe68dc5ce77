"""`horus stack up | status | down`."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from horus.cli.common import console, friendly_errors, settings
from horus.ops.stack import PARTS, LocalStack

app = typer.Typer(
    help="Run the local stack: Apache Kafka (KRaft), PostgreSQL, anvil and the paper venue (the CLOB simulator).",
    no_args_is_help=True,
)


@app.command()
@friendly_errors
def up(only: list[str] = typer.Option(list(PARTS), "--only", help="start just these parts")) -> None:
    """Start (or keep) the local stack and write its connection settings to <state_dir>/stack.env."""
    started = time.monotonic()
    stack = LocalStack(settings())
    env = stack.up(tuple(only), progress=lambda line: console.print(f"  {line}"))
    console.print(
        f"[green]stack up[/] in {time.monotonic() - started:.1f}s; settings written to {stack.settings.stack_env_path}"
    )
    for key, value in env.items():
        console.print(f"  {key}={value}")


@app.command()
@friendly_errors
def status() -> None:
    """Health of each part; exit code 1 if any part is down."""
    rows = LocalStack(settings()).status()
    table = Table("part", "pid", "address", "health", "detail")
    for row in rows:
        table.add_row(
            row.name, str(row.pid or "-"), row.address, "[green]ok[/]" if row.healthy else "[red]down[/]", row.detail
        )
    console.print(table)
    if not all(row.healthy for row in rows):
        raise typer.Exit(1)


@app.command()
@friendly_errors
def down() -> None:
    """Stop exactly the processes `up` started."""
    stopped = LocalStack(settings()).down(progress=lambda line: console.print(f"  {line}"))
    console.print(f"[green]stack down[/] ({', '.join(stopped) or 'nothing was running'})")
