"""Compute service: server groups and their members."""

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import ID, TIMESTAMP

revision = "compute_0003"
down_revision = "compute_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_groups",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("policy", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_instance_groups_project_id", "instance_groups", ["project_id"])
    op.create_table(
        "instance_group_members",
        sa.Column(
            "group_uuid",
            sa.String(36),
            sa.ForeignKey("instance_groups.uuid", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("instance_uuid", sa.String(36), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("instance_group_members")
    op.drop_table("instance_groups")
