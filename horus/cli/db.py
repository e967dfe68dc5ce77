"""`horus db upgrade`."""

from __future__ import annotations

import typer

from horus.cli.common import console, friendly_errors, settings

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command()
@friendly_errors
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from horus.db.engine import upgrade as run_upgrade

    run_upgrade(settings(), revision)
    console.print(f"[green]database at {revision}[/]")
