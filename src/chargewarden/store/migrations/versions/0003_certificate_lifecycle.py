"""Certificate lifecycle: signing flows, installed-certificate snapshots, operator alerts.

Revision ID: 0003
Revises: 0002

Columns are spelled out here rather than taken from ``models`` (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chargewarden.store.coltypes import BigId, UTCDateTime

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "certificate_requests",
        sa.Column("id", BigId, nullable=False),
        sa.Column("station_identity", sa.String(), nullable=False),
        sa.Column("certificate_type", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("certificate_id", BigId, nullable=True),
        sa.Column("replaces_certificate_id", BigId, nullable=True),
        sa.Column("chain_pem", sa.Text(), nullable=True),
        sa.Column("csr_received_at", UTCDateTime(), nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('triggered', 'rejected', 'issued', 'accepted', 'refused_by_station', "
            "'failed')",
            name=op.f("ck_certificate_requests_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["station_identity"],
            ["stations.identity"],
            name=op.f("fk_certificate_requests_station_identity_stations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_certificate_requests_certificate_id_certificates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_requests")),
    )
    op.create_index(
        "ix_certificate_requests_station_state",
        "certificate_requests",
        ["station_identity", "state"],
    )
    op.create_index(
        op.f("ix_certificate_requests_csr_received_at"),
        "certificate_requests",
        ["csr_received_at"],
    )
    op.create_table(
        "installed_certificate_snapshots",
        sa.Column("id", BigId, nullable=False),
        sa.Column("station_identity", sa.String(), nullable=False),
        sa.Column("taken_at", UTCDateTime(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_identity"],
            ["stations.identity"],
            name=op.f("fk_installed_certificate_snapshots_station_identity_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installed_certificate_snapshots")),
    )
    op.create_index(
        op.f("ix_installed_certificate_snapshots_station_identity"),
        "installed_certificate_snapshots",
        ["station_identity"],
    )
    op.create_table(
        "alerts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("station_identity", sa.String(), nullable=True),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_at"), "alerts", ["at"])
    op.create_index(op.f("ix_alerts_station_identity"), "alerts", ["station_identity"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alerts_station_identity"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_at"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(
        op.f("ix_installed_certificate_snapshots_station_identity"),
        table_name="installed_certificate_snapshots",
    )
    op.drop_table("installed_certificate_snapshots")
    op.drop_index(
        op.f("ix_certificate_requests_csr_received_at"), table_name="certificate_requests"
    )
    op.drop_index("ix_certificate_requests_station_state", table_name="certificate_requests")
    op.drop_table("certificate_requests")
