"""Fixtures for tests against the real local stack.

Integration tests never mock Kafka or Postgres: the session starts (or reuses) the project's own
stack. A stack that cannot start is an error, never a skip. Each session gets its own topic prefix
and its own freshly migrated database, so runs do not see each other's data.
"""
from __future__ import annotations

import os
import uuid

import pytest

from horus.settings import Settings, load_settings


def _with_database(settings: Settings, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    """Settings of a running stack: the local one (started if needed) unless HORUS_EXTERNAL_STACK=1."""
    settings = load_settings()
    if os.environ.get("HORUS_EXTERNAL_STACK") != "1":
        from horus.stack import LocalStack

        LocalStack(settings).up()
        settings = load_settings()
    return settings


@pytest.fixture(scope="session")
def settings(stack_settings: Settings):
    """Stack settings with a private topic prefix and a private, migrated database."""
    import psycopg
    from sqlalchemy.engine import make_url

    run_id = uuid.uuid4().hex[:8]
    db_name = f"horus_t{run_id}"
    admin_url = make_url(stack_settings.database_url)
    conninfo = dict(host=admin_url.host, port=admin_url.port, user=admin_url.username, dbname="postgres")
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    test_settings = stack_settings.model_copy(update={
        "topic_prefix": f"t{run_id}.",
        "database_url": _with_database(stack_settings, db_name),
        "app_id": f"horus-t{run_id}",
    })
    from horus.db.engine import dispose_engines, upgrade

    upgrade(test_settings)
    yield test_settings
    dispose_engines()
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def topics(settings: Settings) -> Settings:
    """Every catalogue topic exists under the session's prefix."""
    from horus.kafka.admin import create_topics

    create_topics(settings)
    return settings
