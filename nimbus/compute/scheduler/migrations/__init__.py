"""Migrations of the scheduler's tables (alembic branch ``compute_hosts``)."""


def metadata() -> object:
    """Return the SQLAlchemy metadata these migrations build."""
    from nimbus.compute.scheduler import models

    return models.Base.metadata


def upgrade(database: object) -> None:
    """Bring this branch alone up to date on *database* (until a descriptor runs it).

    :param database: a :class:`nimbus.db.Database`.
    """
    import os

    from nimbus.db import migration

    here = os.path.dirname(os.path.abspath(__file__))
    installed = {os.path.dirname(os.path.abspath(str(m.__file__))) for m in migration.branches()}
    extra = [] if here in installed else [here]
    migration.upgrade(database, "compute_hosts@head", extra=extra)  # type: ignore[arg-type]
