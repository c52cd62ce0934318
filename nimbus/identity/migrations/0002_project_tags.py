"""Identity: the tags of a project (Keystone's project tags), a JSON list; NULL is none."""

import sqlalchemy as sa
from alembic import op

revision = "identity_0002"
down_revision = "identity_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("tags", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("tags")
