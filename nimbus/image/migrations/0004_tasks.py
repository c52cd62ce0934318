"""Images: Glance's tasks (asynchronous work and how it ended)."""

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import ID, TIMESTAMP

revision = "image_0004"
down_revision = "image_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("owner", ID, nullable=False),
        sa.Column("input", sa.JSON),
        sa.Column("result", sa.JSON),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("image_id", sa.String(36)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("user_id", ID),
        sa.Column("expires_at", TIMESTAMP),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_image_tasks_owner_created_at", "image_tasks", ["owner", "created_at"])
    op.create_index("ix_image_tasks_status_updated_at", "image_tasks", ["status", "updated_at"])
    op.create_index("ix_image_tasks_image_id", "image_tasks", ["image_id"])
    op.create_index("ix_image_tasks_expires_at", "image_tasks", ["expires_at"])


def downgrade() -> None:
    op.drop_table("image_tasks")
