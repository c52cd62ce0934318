"""Migrations of the compute service's tables (alembic branch ``compute``)."""


def metadata() -> object:
    """Return the SQLAlchemy metadata these migrations build."""
    from nimbus.compute import models

    return models.Base.metadata
