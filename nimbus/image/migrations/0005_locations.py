"""Images: their locations, one per store holding the data (Glance's multi-store).

The single ``images.location`` column moves to ``image_locations``, under
the store id its location's scheme names (``file://...`` -> ``file``):
the id the one store of ``[image] store`` has in a single-store cloud.
"""

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import TIMESTAMP

revision = "image_0005"
down_revision = "image_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_locations",
        sa.Column(
            "image_id",
            sa.String(36),
            sa.ForeignKey("images.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    images = sa.table(
        "images",
        sa.column("id", sa.String),
        sa.column("location", sa.Text),
        sa.column("updated_at", TIMESTAMP),
    )
    locations = sa.table(
        "image_locations",
        sa.column("image_id", sa.String),
        sa.column("store", sa.String),
        sa.column("location", sa.Text),
        sa.column("created_at", TIMESTAMP),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(images.c.id, images.c.location, images.c.updated_at).where(
            images.c.location.is_not(None)
        )
    ).all()
    moved = [
        {
            "image_id": image_id,
            "store": location.partition("://")[0] or "file",
            "location": location,
            "created_at": updated_at,
        }
        for image_id, location, updated_at in rows
        if location
    ]
    if moved:
        op.bulk_insert(locations, moved)
    with op.batch_alter_table("images") as batch:
        batch.drop_column("location")


def downgrade() -> None:
    op.add_column("images", sa.Column("location", sa.Text))
    images = sa.table("images", sa.column("id", sa.String), sa.column("location", sa.Text))
    locations = sa.table(
        "image_locations",
        sa.column("image_id", sa.String),
        sa.column("store", sa.String),
        sa.column("location", sa.Text),
    )
    bind = op.get_bind()
    # One location per image survives: the first store's by id.
    kept: dict[str, str] = {}
    for image_id, _store, location in bind.execute(
        sa.select(locations.c.image_id, locations.c.store, locations.c.location).order_by(
            locations.c.image_id, locations.c.store
        )
    ):
        kept.setdefault(image_id, location)
    for image_id, location in kept.items():
        bind.execute(sa.update(images).where(images.c.id == image_id).values(location=location))
    op.drop_table("image_locations")
