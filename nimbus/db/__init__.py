"""The SQL database: engine and sessions, models, and alembic migrations."""

from nimbus.db.api import Database

__all__ = ["Database"]
