"""Image service: images, their custom properties, tags and members."""

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import ID, TIMESTAMP

revision = "image_0001"
down_revision = None
branch_labels = ("image",)
depends_on = None

IMAGE_ID = sa.String(36)


def _image_fk() -> sa.Column:
    return sa.Column(
        "image_id",
        IMAGE_ID,
        sa.ForeignKey("images.id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", IMAGE_ID, primary_key=True),
        sa.Column("name", sa.String(255), index=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("visibility", sa.String(20), nullable=False, index=True),
        sa.Column("owner", ID),
        sa.Column("size", sa.BigInteger),
        sa.Column("virtual_size", sa.BigInteger),
        sa.Column("disk_format", sa.String(20)),
        sa.Column("container_format", sa.String(20)),
        sa.Column("checksum", sa.String(32)),
        sa.Column("os_hash_algo", sa.String(64)),
        sa.Column("os_hash_value", sa.String(128)),
        sa.Column("min_disk", sa.Integer, nullable=False),
        sa.Column("min_ram", sa.Integer, nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("os_hidden", sa.Boolean, nullable=False),
        sa.Column("location", sa.Text),
        sa.Column("upload_id", sa.String(36)),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False, index=True),
    )
    op.create_index("ix_images_created_at_id", "images", ["created_at", "id"])
    op.create_index("ix_images_owner_status", "images", ["owner", "status"])
    op.create_table(
        "image_properties",
        _image_fk(),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "image_tags",
        _image_fk(),
        sa.Column("value", sa.String(255), primary_key=True),
    )
    op.create_table(
        "image_members",
        _image_fk(),
        sa.Column("member", ID, primary_key=True, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    for table in ("image_members", "image_tags", "image_properties", "images"):
        op.drop_table(table)
