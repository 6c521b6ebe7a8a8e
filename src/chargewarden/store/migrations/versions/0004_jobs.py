"""Durable jobs (password rotation, profile upgrades, fleet jobs) and their audit trail.

Revision ID: 0004
Revises: 0003

Columns are spelled out here rather than taken from ``models`` (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chargewarden.store.coltypes import BigId, UTCDateTime

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("station_identity", sa.String(), nullable=True),
        sa.Column("parent_id", BigId, nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("message", sa.String(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("wake_at", UTCDateTime(), nullable=True),
        sa.Column("deadline", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'running', 'waiting-for-station', 'succeeded', 'failed', "
            "'cancelled')",
            name=op.f("ck_jobs_state_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_index("ix_jobs_station_state", "jobs", ["station_identity", "state"])
    op.create_index("ix_jobs_parent_state", "jobs", ["parent_id", "state"])
    op.create_table(
        "job_steps",
        sa.Column("id", BigId, nullable=False),
        sa.Column("job_id", BigId, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_steps_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_steps")),
    )
    op.create_index("ix_job_steps_job_at", "job_steps", ["job_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_job_steps_job_at", table_name="job_steps")
    op.drop_table("job_steps")
    op.drop_index("ix_jobs_parent_state", table_name="jobs")
    op.drop_index("ix_jobs_station_state", table_name="jobs")
    op.drop_index("ix_jobs_state", table_name="jobs")
    op.drop_table("jobs")
