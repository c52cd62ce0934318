"""alembic environment: runs migrations on the connection of a nimbus Database."""

from alembic import context

from nimbus.db import models
from nimbus.drivers.identity.sql import models as identity_sql_models

target_metadata = [models.Base.metadata, identity_sql_models.Base.metadata]


def run_migrations() -> None:
    database = context.config.attributes["database"]
    with database.engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
