"""Postgres: models (the schema), engines and migrations."""

from horus.db.engine import dispose_engines, downgrade, make_engine, upgrade
from horus.db.models import PROJECTION_TABLES, Base

__all__ = ["Base", "PROJECTION_TABLES", "dispose_engines", "downgrade", "make_engine", "upgrade"]
