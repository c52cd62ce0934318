"""Scheduler: services, compute nodes, allocations and host aggregates."""

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import TIMESTAMP, flag_column

revision = "compute_hosts_0001"
down_revision = None
branch_labels = ("compute_hosts",)
depends_on = None


def _int(name: str, *, nullable: bool = False, default: int | None = 0) -> sa.Column:
    server_default = None if default is None else sa.text(str(default))
    return sa.Column(name, sa.Integer, nullable=nullable, server_default=server_default)


def upgrade() -> None:
    op.create_table(
        # "services" is the identity catalog's.
        "compute_services",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("binary", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        flag_column("disabled", False),
        sa.Column("disabled_reason", sa.String(255)),
        flag_column("forced_down", False),
        sa.Column("last_seen_up", TIMESTAMP),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("host", "binary", name="uq_compute_services_host_binary"),
    )
    op.create_index("ix_compute_services_last_seen_up", "compute_services", ["last_seen_up"])
    op.create_index("ix_compute_services_updated_at", "compute_services", ["updated_at"])
    op.create_table(
        "compute_nodes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("hypervisor_hostname", sa.String(255), nullable=False),
        sa.Column("hypervisor_type", sa.String(255), nullable=False),
        sa.Column("hypervisor_version", sa.BigInteger, nullable=False, server_default="0"),
        _int("vcpus", default=None),
        _int("memory_mb", default=None),
        _int("local_gb", default=None),
        _int("vcpus_used"),
        _int("memory_mb_used"),
        _int("local_gb_used"),
        _int("running_vms"),
        sa.Column("cpu_info", sa.Text, nullable=False),
        sa.Column("supported_instances", sa.Text, nullable=False),
        sa.Column("cpu_allocation_ratio", sa.Float),
        sa.Column("ram_allocation_ratio", sa.Float),
        sa.Column("disk_allocation_ratio", sa.Float),
        _int("reserved_host_memory_mb", nullable=True, default=None),
        _int("reserved_host_disk_mb", nullable=True, default=None),
        _int("reserved_host_cpus", nullable=True, default=None),
        _int("disk_available_least", nullable=True, default=None),
        sa.Column("generation", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_by", sa.String(36)),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("host", "hypervisor_hostname", name="uq_compute_nodes_host_node"),
    )
    op.create_index("ix_compute_nodes_host", "compute_nodes", ["host"])
    op.create_index("ix_compute_nodes_updated_at", "compute_nodes", ["updated_at"])
    op.create_table(
        "allocations",
        sa.Column("instance_uuid", sa.String(36), primary_key=True),
        sa.Column(
            "node_id",
            sa.Integer,
            sa.ForeignKey("compute_nodes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("host", sa.String(255), nullable=False),
        _int("vcpus", default=None),
        _int("memory_mb", default=None),
        _int("disk_gb", default=None),
        sa.Column("project_id", sa.String(64)),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_allocations_node_id", "allocations", ["node_id"])
    op.create_table(
        "aggregates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_aggregates_updated_at", "aggregates", ["updated_at"])
    op.create_table(
        "aggregate_hosts",
        sa.Column(
            "aggregate_id",
            sa.Integer,
            sa.ForeignKey("aggregates.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("host", sa.String(255), primary_key=True),
    )
    op.create_table(
        "aggregate_metadata",
        sa.Column(
            "aggregate_id",
            sa.Integer,
            sa.ForeignKey("aggregates.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "aggregate_metadata",
        "aggregate_hosts",
        "aggregates",
        "allocations",
        "compute_nodes",
        "compute_services",
    ):
        op.drop_table(table)
