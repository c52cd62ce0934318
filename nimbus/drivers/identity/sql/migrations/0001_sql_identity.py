"""The sql identity back-end: users, groups and memberships."""

import sqlalchemy as sa
from alembic import op

from nimbus.drivers.identity.sql.models import ID, TIMESTAMP

revision = "identity_sql_0001"
down_revision = None
branch_labels = ("identity_sql",)
depends_on = None


def _bool(name: str, default: bool) -> sa.Column:
    return sa.Column(
        name, sa.Boolean, nullable=False, server_default=sa.true() if default else sa.false()
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("domain_id", ID, nullable=False, index=True),
        _bool("enabled", True),
        sa.Column("default_project_id", ID),
        sa.Column("description", sa.Text),
        sa.Column("email", sa.String(255)),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("password_hash", sa.String(255)),
        sa.Column("password_created_at", TIMESTAMP),
        sa.Column("failed_auth_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed_auth_at", TIMESTAMP),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("domain_id", "name", name="uq_users_domain_name"),
    )
    op.create_table(
        "groups",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("domain_id", ID, nullable=False, index=True),
        sa.Column("description", sa.Text),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.UniqueConstraint("domain_id", "name", name="uq_groups_domain_name"),
    )
    op.create_table(
        "user_group_membership",
        sa.Column("user_id", ID, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "group_id",
            ID,
            sa.ForeignKey("groups.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
    )


def downgrade() -> None:
    for table in ("user_group_membership", "groups", "users"):
        op.drop_table(table)
