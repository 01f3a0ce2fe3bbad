"""row versions; submission channel; drop tables nothing uses

`cases.version` is the guard of optimistic concurrency: +1 on every change, and the engine
writes a plan only while the version it read is still there. `channel` becomes
`submission_channel` ("channel" means a delivery channel everywhere else). `due_version`
(computed from events, never stored), `step_instances` (steps are derived from events),
`notifications` and `notification_cases` (the outbox will replace them) held nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_table("notification_cases")
    op.drop_index("ix_notifications_status_not_before", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("step_instances")
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.alter_column("channel", new_column_name="submission_channel")
        batch.drop_column("due_version")


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("due_version", sa.Integer(), nullable=False, server_default="0"))
        batch.alter_column("submission_channel", new_column_name="channel")
        batch.drop_column("version")
    op.create_table(
        "step_instances",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("step_code", sa.String(length=64), nullable=False),
        sa.Column("handler", sa.String(length=64), nullable=True),
        sa.Column("unit_code", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name="fk_step_instances_case_id_cases",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_step_instances"),
        sa.UniqueConstraint("case_id", "seq", name="uq_step_instances_case_id_seq"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("recipient", sa.String(length=160), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
    )
    op.create_index("ix_notifications_status_not_before", "notifications", ["status", "not_before"])
    op.create_table(
        "notification_cases",
        sa.Column("notification_id", Id, nullable=False),
        sa.Column("case_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name="fk_notification_cases_case_id_cases",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name="fk_notification_cases_notification_id_notifications",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("notification_id", "case_id", name="pk_notification_cases"),
    )
