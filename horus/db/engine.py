"""Engines (one per database URL) and schema migrations run from Python.

`upgrade(settings)` is what `horus db upgrade` and the tests call: it runs the Alembic revisions in
`migrations/` to head against `settings.database_url`, whatever the current directory is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url

from horus.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = REPO_ROOT / "alembic.ini"
MIGRATIONS_DIR = REPO_ROOT / "migrations"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def make_engine(settings: Settings) -> Engine:
    """The process-wide engine for `settings.database_url` (created once per URL)."""
    url = settings.database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, forks, shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def psycopg_conninfo(database_url: str) -> str:
    """The libpq conninfo string for a `postgresql+psycopg://` URL (for tools that want raw psycopg)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def refuses_a_value(exc: Exception) -> bool:
    """True when the database refused a statement for a value in it, so the same rows would be refused again:
    a data error, or SQLSTATE class 54 (program_limit_exceeded: e.g. a 50 KB value for an index entry of at most
    ~8 KB), which psycopg files under OperationalError beside the connection failures a caller retries."""
    import psycopg

    if isinstance(exc, psycopg.OperationalError):
        return (exc.sqlstate or "").startswith("54")
    return isinstance(exc, psycopg.DatabaseError)


def alembic_config(settings: Settings):
    """An Alembic Config pointing at this repo's migrations and at `settings.database_url`."""
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.exists() else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py prefers this over get_settings(), so tests can point at any database
    config.attributes["url"] = settings.database_url
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate the database to `revision` (default: the newest)."""
    from alembic import command

    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    """Migrate the database down to `revision` (default: nothing left)."""
    from alembic import command

    command.downgrade(alembic_config(settings), revision)


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with make_engine(settings).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def scratch_database(settings: Settings, name: str, migrate: bool = True) -> Iterator[Settings]:
    """A freshly created (and, with `migrate`, migrated) database `name` on the same server, dropped
    afterwards (test sessions, benchmarks). Yields settings pointing at it."""
    import psycopg

    admin = psycopg_conninfo(make_url(settings.database_url).set(database="postgres").render_as_string(False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    scratch = settings.model_copy(
        update={
            "database_url": make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
        }
    )
    try:
        if migrate:
            upgrade(scratch)
        yield scratch
    finally:
        with _lock:  # close pooled connections to it, or DROP waits for them
            engine = _engines.pop(scratch.database_url, None)
        if engine is not None:
            engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
