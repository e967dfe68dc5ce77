"""Fixtures for tests against the real local stack.

Integration tests never mock Kafka or Postgres: the session starts (or reuses) the project's own
stack. A stack that cannot start is an error, never a skip. Each session gets its own topic prefix
and its own freshly migrated database, so runs do not see each other's data.
"""

from __future__ import annotations

import os
import uuid

import pytest
from hypothesis import settings as hypothesis_settings

from horus.settings import Settings, load_settings

# fixtures shared by several test modules, registered once instead of imported into each (ruff F811)
pytest_plugins = ["tests.integration.projection_helpers", "tests.integration.ingest_helpers"]

# .ci/run sets HYPOTHESIS_PROFILE=ci: the property tests run a fixed sequence of examples there, so a verdict is
# reproducible; elsewhere they explore new examples every run (a failure is saved in .hypothesis/ to replay)
hypothesis_settings.register_profile("ci", derandomize=True)
# `make mutation`: the same fixed examples for every mutant and no example database, so a failure Hypothesis saved
# in one run cannot be replayed in the next mutant's and count it as killed (docs/decisions.md, mutation testing)
hypothesis_settings.register_profile("mutation", derandomize=True, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    """Settings of a running stack: the local one (started if needed) unless HORUS_EXTERNAL_STACK=1."""
    settings = load_settings()
    if os.environ.get("HORUS_EXTERNAL_STACK") != "1":
        from horus.ops.stack import LocalStack

        LocalStack(settings).up()
        settings = load_settings()
    return settings


@pytest.fixture(scope="session")
def settings(stack_settings: Settings):
    """Stack settings with a private topic prefix and a private, migrated database."""
    from horus.db.engine import dispose_engines, scratch_database

    run_id = uuid.uuid4().hex[:8]
    private = stack_settings.model_copy(update={"topic_prefix": f"t{run_id}.", "app_id": f"horus-t{run_id}"})
    with scratch_database(private, f"horus_t{run_id}") as test_settings:
        yield test_settings
        dispose_engines()
    from horus.kafka.admin import delete_topics_with_prefix

    # every topic this session made (modules add their own sub-prefixes): a broker that keeps them all
    # across runs grows by thousands of partitions
    delete_topics_with_prefix(stack_settings, private.topic_prefix)


@pytest.fixture(scope="session")
def topics(settings: Settings) -> Settings:
    """Every catalogue topic exists under the session's prefix."""
    from horus.kafka.admin import create_topics

    create_topics(settings)
    return settings
