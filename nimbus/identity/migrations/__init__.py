"""Migrations of the identity service's tables (alembic branch ``identity``)."""


def metadata() -> object:
    """Return the SQLAlchemy metadata these migrations build."""
    from nimbus.identity import models

    return models.Base.metadata
