"""Images: the bytes an upload in progress holds against its owner's storage quota."""

import sqlalchemy as sa
from alembic import op

revision = "image_0002"
down_revision = "image_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("reserved_size", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("reserved_size")
