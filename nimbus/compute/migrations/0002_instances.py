"""Compute service: servers (instances), their metadata, faults and actions."""

import sqlalchemy as sa
from alembic import op

from nimbus.db.migration import ID, TIMESTAMP

revision = "compute_0002"
down_revision = "compute_0001"
branch_labels = None
depends_on = None


def _instance_fk() -> sa.Column:
    return sa.Column(
        "instance_uuid",
        sa.String(36),
        sa.ForeignKey("instances.uuid", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("image_ref", sa.String(36)),
        sa.Column("flavor_id", sa.String(255), nullable=False),
        sa.Column("flavor", sa.JSON, nullable=False),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("key_name", sa.String(255)),
        sa.Column("key_data", sa.Text),
        sa.Column("user_data", sa.Text),
        sa.Column("availability_zone", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("node", sa.String(255)),
        sa.Column("vm_state", sa.String(255), nullable=False),
        sa.Column("task_state", sa.String(255)),
        sa.Column("power_state", sa.Integer, nullable=False),
        sa.Column("task_started_at", TIMESTAMP),
        sa.Column("launched_at", TIMESTAMP),
        sa.Column("terminated_at", TIMESTAMP),
        sa.Column("locked", sa.Boolean, nullable=False),
        sa.Column("locked_by", sa.String(255)),
        sa.Column("description", sa.Text),
        sa.Column("access_ip_v4", sa.String(39)),
        sa.Column("access_ip_v6", sa.String(39)),
        sa.Column("config_drive", sa.String(255), nullable=False),
        sa.Column("reservation_id", sa.String(255), nullable=False),
        sa.Column("launch_index", sa.Integer, nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP),
    )
    op.create_index("ix_instances_project_id_created_at", "instances", ["project_id", "created_at"])
    op.create_index("ix_instances_host", "instances", ["host"])
    op.create_index("ix_instances_task_state", "instances", ["task_state"])
    op.create_table(
        "instance_metadata",
        sa.Column(
            "instance_uuid",
            sa.String(36),
            sa.ForeignKey("instances.uuid", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
    )
    op.create_table(
        "instance_faults",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _instance_fk(),
        sa.Column("code", sa.Integer, nullable=False),
        sa.Column("message", sa.String(255), nullable=False),
        sa.Column("details", sa.Text),
        sa.Column("host", sa.String(255)),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_instance_faults_instance_uuid", "instance_faults", ["instance_uuid"])
    op.create_table(
        "instance_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("instance_uuid", sa.String(36), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("user_id", ID),
        sa.Column("project_id", ID),
        sa.Column("message", sa.String(255)),
        sa.Column("start_time", TIMESTAMP, nullable=False),
        sa.Column("finish_time", TIMESTAMP),
    )
    op.create_index("ix_instance_actions_instance_uuid", "instance_actions", ["instance_uuid"])
    op.create_table(
        "instance_action_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "action_id",
            sa.Integer,
            sa.ForeignKey("instance_actions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("result", sa.String(255)),
        sa.Column("traceback", sa.Text),
        sa.Column("start_time", TIMESTAMP, nullable=False),
        sa.Column("finish_time", TIMESTAMP),
    )
    op.create_index("ix_instance_action_events_action_id", "instance_action_events", ["action_id"])


def downgrade() -> None:
    for table in (
        "instance_action_events",
        "instance_actions",
        "instance_faults",
        "instance_metadata",
        "instances",
    ):
        op.drop_table(table)
