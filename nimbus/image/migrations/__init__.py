"""Migrations of the image service's tables (alembic branch ``image``)."""


def metadata() -> object:
    """Return the SQLAlchemy metadata these migrations build."""
    from nimbus.image import models

    return models.Base.metadata
