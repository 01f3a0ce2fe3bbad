"""what the reads need, stored on each case when it is planned

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

The stored rules hash is forgotten, so the next `watchdog run` (daemon or --once) plans every
case again, closed ones included (a plan takes the cases whose standing is not stored); until
then the reads compute such cases on the fly, as they did before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("plan_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("plan_rank", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("plan_due_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("plan_due_soon_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("plan_waiting_since", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("plan_supplements", sa.SmallInteger(), nullable=True))
    op.create_index("ix_cases_board", "cases", ["plan_rank", "plan_due_at", "plan_due_soon_at"])
    op.create_index(
        "ix_cases_unit_board",
        "cases",
        ["unit_code", "plan_rank", "plan_due_at", "plan_due_soon_at"],
    )
    op.create_index("ix_cases_step_handler", "cases", ["step_handler"])
    unplanned = sa.text("plan_version IS NULL OR plan_version <> version")
    op.create_index(
        "ix_cases_unplanned",
        "cases",
        ["id"],
        sqlite_where=unplanned,
        postgresql_where=unplanned,
    )
    op.execute("DELETE FROM engine_state WHERE key = 'rules_hash'")


def downgrade() -> None:
    op.drop_index("ix_cases_unplanned", "cases")
    op.drop_index("ix_cases_step_handler", "cases")
    op.drop_index("ix_cases_unit_board", "cases")
    op.drop_index("ix_cases_board", "cases")
    with op.batch_alter_table("cases") as batch:
        for name in (
            "plan_supplements",
            "plan_waiting_since",
            "plan_due_soon_at",
            "plan_due_at",
            "plan_rank",
            "plan_version",
        ):
            batch.drop_column(name)
