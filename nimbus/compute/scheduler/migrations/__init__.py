"""Migrations of the scheduler's tables (alembic branch ``compute_hosts``)."""


def metadata() -> object:
    """Return the SQLAlchemy metadata these migrations build."""
    from nimbus.compute.scheduler import models

    return models.Base.metadata


def _extra() -> list[str]:
    import os

    from nimbus.db import migration

    here = os.path.dirname(os.path.abspath(__file__))
    installed = {os.path.dirname(os.path.abspath(str(m.__file__))) for m in migration.branches()}
    return [] if here in installed else [here]


def upgrade(database: object) -> None:
    """Bring this branch alone up to date on *database* (until a descriptor runs it).

    :param database: a :class:`nimbus.db.Database`.
    """
    from nimbus.db import migration

    migration.upgrade(database, "compute_hosts@head", extra=_extra())  # type: ignore[arg-type]


def downgrade(database: object) -> None:
    """Drop this branch's tables from *database*.

    :param database: a :class:`nimbus.db.Database`.
    """
    from nimbus.db import migration

    migration.downgrade(database, "compute_hosts@base", extra=_extra())  # type: ignore[arg-type]
