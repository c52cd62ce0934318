"""Images: metadata definitions (Glance's metadefs) and the resource types Glance ships."""

import datetime

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import ID, TIMESTAMP

revision = "image_0003"
down_revision = "image_0002"
branch_labels = None
depends_on = None

#: The resource types Glance's own definitions (``etc/metadefs``) apply to.
RESOURCE_TYPES = (
    "OS::Cinder::Volume",
    "OS::Glance::Image",
    "OS::Nova::Aggregate",
    "OS::Nova::Flavor",
    "OS::Nova::Server",
    "OS::Trove::Instance",
)


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    ]


def _namespace_fk() -> sa.Column:
    return sa.Column(
        "namespace_id",
        sa.Integer,
        sa.ForeignKey("metadef_namespaces.id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "metadef_namespaces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(80), nullable=False, unique=True),
        sa.Column("display_name", sa.String(80)),
        sa.Column("description", sa.Text),
        sa.Column("visibility", sa.String(32), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("owner", ID, nullable=False, index=True),
        *_timestamps(),
    )
    op.create_table(
        "metadef_objects",
        _namespace_fk(),
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("description", sa.Text),
        sa.Column("required", sa.JSON),
        sa.Column("properties", sa.JSON),
        *_timestamps(),
    )
    op.create_table(
        "metadef_properties",
        _namespace_fk(),
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("schema", sa.JSON, nullable=False),
        *_timestamps(),
    )
    op.create_table(
        "metadef_tags",
        _namespace_fk(),
        sa.Column("name", sa.String(80), primary_key=True),
        *_timestamps(),
    )
    types = op.create_table(
        "metadef_resource_types",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
        sa.Column("protected", sa.Boolean, nullable=False),
        *_timestamps(),
    )
    op.create_table(
        "metadef_namespace_resource_types",
        _namespace_fk(),
        sa.Column(
            "resource_type_id",
            sa.Integer,
            sa.ForeignKey("metadef_resource_types.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("prefix", sa.String(80)),
        sa.Column("properties_target", sa.String(80)),
        *_timestamps(),
    )
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    op.bulk_insert(
        types,
        [
            {"name": name, "protected": True, "created_at": now, "updated_at": now}
            for name in RESOURCE_TYPES
        ],
    )


def downgrade() -> None:
    for table in (
        "metadef_namespace_resource_types",
        "metadef_resource_types",
        "metadef_tags",
        "metadef_properties",
        "metadef_objects",
        "metadef_namespaces",
    ):
        op.drop_table(table)
