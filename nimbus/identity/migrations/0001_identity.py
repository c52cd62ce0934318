"""Identity: domains, projects, roles, assignments, catalog, revocation events.

The users and groups of the ``sql`` back-end are that driver's own branch.
"""

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import ID, TIMESTAMP, flag_column

revision = "identity_0001"
down_revision = None
branch_labels = ("identity",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.Text),
        flag_column("enabled", True),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "projects",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("domain_id", ID, sa.ForeignKey("domains.id"), nullable=False, index=True),
        sa.Column("parent_id", ID, sa.ForeignKey("projects.id")),
        sa.Column("description", sa.Text),
        flag_column("enabled", True),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("domain_id", "name", name="uq_projects_domain_name"),
    )
    op.create_table(
        "roles",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text),
        sa.Column("extra", sa.JSON, nullable=False),
    )
    op.create_table(
        "implied_roles",
        sa.Column(
            "prior_role_id", ID, sa.ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "implied_role_id", ID, sa.ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_table(
        "assignments",
        sa.Column("type", sa.String(16), primary_key=True),
        sa.Column("actor_id", ID, primary_key=True),
        sa.Column("target_id", ID, primary_key=True),
        sa.Column("role_id", ID, sa.ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("inherited", sa.Boolean, primary_key=True, server_default=sa.false()),
        sa.Index("ix_assignments_actor", "actor_id"),
        sa.Index("ix_assignments_target", "target_id"),
    )
    op.create_table(
        "regions",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("parent_region_id", sa.String(255), sa.ForeignKey("regions.id")),
        sa.Column("extra", sa.JSON, nullable=False),
    )
    op.create_table(
        "services",
        sa.Column("id", ID, primary_key=True),
        sa.Column("type", sa.String(255), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        flag_column("enabled", True),
        sa.Column("extra", sa.JSON, nullable=False),
    )
    op.create_table(
        "endpoints",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "service_id",
            ID,
            sa.ForeignKey("services.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("interface", sa.String(8), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("region_id", sa.String(255), sa.ForeignKey("regions.id")),
        flag_column("enabled", True),
        sa.Column("extra", sa.JSON, nullable=False),
    )
    op.create_table(
        "revocation_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("domain_id", ID),
        sa.Column("project_id", ID),
        sa.Column("user_id", ID),
        sa.Column("role_id", ID),
        sa.Column("audit_id", sa.String(32)),
        sa.Column("audit_chain_id", sa.String(32)),
        sa.Column("expires_at", TIMESTAMP),
        sa.Column("issued_before", TIMESTAMP, nullable=False, index=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=False, index=True),
    )


def downgrade() -> None:
    for table in (
        "revocation_events",
        "endpoints",
        "services",
        "regions",
        "assignments",
        "implied_roles",
        "roles",
        "projects",
        "domains",
    ):
        op.drop_table(table)
