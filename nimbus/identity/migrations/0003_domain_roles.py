"""Identity: domain-specific roles, a role's owning domain (NULL for a global role)."""

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import ID

revision = "identity_0003"
down_revision = "identity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("roles", sa.Column("domain_id", ID))
    op.create_index("ix_roles_domain_id", "roles", ["domain_id"])


def downgrade() -> None:
    op.drop_index("ix_roles_domain_id", "roles")
    with op.batch_alter_table("roles") as batch:
        batch.drop_column("domain_id")
