"""Initial schema: stations, security events, audit log, operators, connector status.

Revision ID: 0001
Revises:

Columns are spelled out here rather than taken from ``models``: a migration must keep producing
the schema of its own time when the models move on. Only the column types in ``coltypes`` are
shared, because they are the storage format (naive UTC on SQLite), not a model detail.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chargewarden.store.coltypes import BigId, UTCDateTime

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(), nullable=False),
        sa.Column("ocpp_version", sa.String(), nullable=False),
        sa.Column("security_profile", sa.Integer(), nullable=False),
        sa.Column("pending_profile", sa.Integer(), nullable=True),
        sa.Column("credential_hash", sa.String(), nullable=True),
        sa.Column("pending_credential_hash", sa.String(), nullable=True),
        sa.Column("strict_password", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("serial_number", sa.String(), nullable=True),
        sa.Column("cpo_name", sa.String(), nullable=True),
        sa.Column("registration_status", sa.String(), nullable=False),
        sa.Column(
            "needs_credential_update", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
        sa.Column("last_boot_status", sa.String(), nullable=True),
        sa.Column("vendor", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("firmware_version", sa.String(), nullable=True),
        sa.Column("last_seen", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "length(identity) BETWEEN 1 AND 48", name=op.f("ck_stations_identity_length")
        ),
        sa.CheckConstraint(
            "security_profile BETWEEN 0 AND 3", name=op.f("ck_stations_security_profile_range")
        ),
        sa.CheckConstraint(
            "pending_profile IS NULL OR pending_profile BETWEEN 0 AND 3",
            name=op.f("ck_stations_pending_profile_range"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("identity", name=op.f("uq_stations_identity")),
    )

    op.create_table(
        "security_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("station_identity", sa.String(), nullable=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("tech_info", sa.Text(), nullable=True),
        sa.Column("peer_address", sa.String(), nullable=True),
        sa.Column("ocpp_version", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
    )
    op.create_index(
        "ix_security_events_station_received",
        "security_events",
        ["station_identity", "received_at"],
    )
    op.create_index(op.f("ix_security_events_received_at"), "security_events", ["received_at"])

    op.create_table(
        "audit_log",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index("ix_audit_log_target_at", "audit_log", ["target", "at"])

    op.create_table(
        "operators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("token_lookup", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("name", name=op.f("uq_operators_name")),
        sa.UniqueConstraint("token_lookup", name=op.f("uq_operators_token_lookup")),
    )

    op.create_table(
        "connector_status",
        sa.Column("station_identity", sa.String(), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error_code", sa.String(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_identity"],
            ["stations.identity"],
            name=op.f("fk_connector_status_station_identity_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "station_identity", "evse_id", "connector_id", name=op.f("pk_connector_status")
        ),
    )


def downgrade() -> None:
    op.drop_table("connector_status")
    op.drop_table("operators")
    op.drop_index("ix_audit_log_target_at", table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_security_events_received_at"), table_name="security_events")
    op.drop_index("ix_security_events_station_received", table_name="security_events")
    op.drop_table("security_events")
    op.drop_table("stations")
