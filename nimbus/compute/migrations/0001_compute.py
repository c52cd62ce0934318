"""Compute service: flavors with extra specs and access lists, key pairs, quotas."""

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import ID, TIMESTAMP

revision = "compute_0001"
down_revision = None
branch_labels = ("compute",)
depends_on = None


def _flavor_fk() -> sa.Column:
    return sa.Column(
        "flavor_id",
        sa.Integer,
        sa.ForeignKey("flavors.id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "flavors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flavorid", sa.String(255), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("root_gb", sa.Integer, nullable=False),
        sa.Column("ephemeral_gb", sa.Integer, nullable=False),
        sa.Column("swap", sa.Integer, nullable=False),
        sa.Column("rxtx_factor", sa.Float, nullable=False),
        sa.Column("is_public", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP),
    )
    op.create_table(
        "flavor_extra_specs",
        _flavor_fk(),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
    )
    op.create_table(
        "flavor_projects",
        _flavor_fk(),
        sa.Column("project_id", ID, primary_key=True),
    )
    op.create_table(
        "key_pairs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("fingerprint", sa.String(255), nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("type", sa.String(10), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("user_id", "name", name="uq_key_pairs_user_id_name"),
    )
    op.create_table(
        "compute_quotas",
        sa.Column("project_id", ID, primary_key=True),
        sa.Column("resource", sa.String(255), primary_key=True),
        sa.Column("hard_limit", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("compute_quotas", "key_pairs", "flavor_projects", "flavor_extra_specs"):
        op.drop_table(table)
    op.drop_table("flavors")
