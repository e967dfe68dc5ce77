"""Shared by the CLI-over-projections tests (config commands, `horus why`): private topics, empty
projection tables, and Rich output wide enough that no cell wraps."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from pydantic import SecretStr

from horus.credentials import generate_key
from horus.db.engine import psycopg_conninfo
from horus.kafka.admin import create_topics
from horus.kafka.client import make_admin
from horus.settings import Settings
from projections.replay import truncate_projections


@pytest.fixture
def s(settings: Settings):
    """Topics of its own, empty projection tables and a credentials key."""
    run = uuid.uuid4().hex[:6]
    test_settings = settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}c{run}.",
            "app_id": f"{settings.app_id}-c{run}",
            "credentials_key": SecretStr(generate_key()),
        }
    )
    created = create_topics(test_settings)
    with psycopg.connect(psycopg_conninfo(test_settings.database_url), autocommit=True) as conn:
        truncate_projections(conn)
    yield test_settings
    admin = make_admin(test_settings)
    for future in admin.delete_topics(list(created), request_timeout=30).values():
        try:
            future.result()
        except Exception:  # noqa: BLE001 - cleanup only
            pass


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich tables as a terminal of 250 columns would show them (no wrapped cells to match across)."""
    from horus.cli.common import console

    monkeypatch.setattr(console, "width", 250)
