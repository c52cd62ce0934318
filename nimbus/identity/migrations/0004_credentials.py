"""Identity: credentials (blobs encrypted with the credential keys)."""

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import ID

revision = "identity_0004"
down_revision = "identity_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", ID, primary_key=True),
        sa.Column("user_id", ID, nullable=False, index=True),
        sa.Column("project_id", ID, index=True),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("encrypted_blob", sa.Text, nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("credentials")
