"""Alembic environment for Horus.

The URL comes from the caller when set programmatically (`config.attributes["url"]`, see
`horus.db.engine.upgrade`), else from `horus.settings.get_settings().database_url`. Online mode
only needs a URL; offline mode (`alembic upgrade head --sql`) renders SQL for the same URL's
dialect.
"""
from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from horus.db.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True) \
        and "url" not in config.attributes:
    # command-line use: log like the ini says; programmatic callers keep their own logging
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("url")
    if url:
        return url
    from horus.settings import get_settings

    return get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
