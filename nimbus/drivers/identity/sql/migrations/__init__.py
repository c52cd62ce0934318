"""Migrations of the ``sql`` identity back-end's tables (alembic branch ``identity_sql``).

The driver owns its tables: nimbus finds this branch through the
``nimbus.db.migrations`` entry point, and ``nimbus db sync`` runs it with
every other installed branch.
"""


def metadata() -> object:
    """Return the SQLAlchemy metadata these migrations build."""
    from nimbus.drivers.identity.sql import models

    return models.Base.metadata
