"""Signed firmware (releases, updates), security/diagnostics log requests, transfer tokens.

Revision ID: 0005
Revises: 0004

Columns are spelled out here rather than taken from ``models`` (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chargewarden.store.coltypes import BigId, UTCDateTime

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "firmware_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("size", BigId, nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("signing_certificate_pem", sa.Text(), nullable=False),
        sa.Column("signer_subject", sa.String(), nullable=False),
        sa.Column("algorithm", sa.String(), nullable=False),
        sa.Column("signer_not_after", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_releases")),
        sa.UniqueConstraint("name", name=op.f("uq_firmware_releases_name")),
    )
    op.create_index("ix_firmware_releases_sha256", "firmware_releases", ["sha256"])
    op.create_table(
        "firmware_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_identity", sa.String(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("retrieve_at", UTCDateTime(), nullable=False),
        sa.Column("install_at", UTCDateTime(), nullable=True),
        sa.Column("retries", sa.Integer(), nullable=True),
        sa.Column("retry_interval", sa.Integer(), nullable=True),
        sa.Column("job_id", BigId, nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("response_status", sa.String(), nullable=True),
        sa.Column("station_status", sa.String(), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'accepted', 'refused', 'installed', 'failed', "
            "'cancelled')",
            name=op.f("ck_firmware_updates_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["firmware_releases.id"],
            name=op.f("fk_firmware_updates_release_id_firmware_releases"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_updates")),
    )
    op.create_index("ix_firmware_updates_release_id", "firmware_updates", ["release_id"])
    op.create_index(
        "ix_firmware_updates_station_created",
        "firmware_updates",
        ["station_identity", "created_at"],
    )
    op.create_table(
        "log_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_identity", sa.String(), nullable=False),
        sa.Column("log_type", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=True),
        sa.Column("until", UTCDateTime(), nullable=True),
        sa.Column("job_id", BigId, nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("response_status", sa.String(), nullable=True),
        sa.Column("station_filename", sa.String(), nullable=True),
        sa.Column("station_status", sa.String(), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("stored_path", sa.String(), nullable=True),
        sa.Column("size", BigId, nullable=True),
        sa.Column("sha256", sa.String(), nullable=True),
        sa.Column("uploaded_at", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'accepted', 'refused', 'uploaded', 'failed', "
            "'cancelled')",
            name=op.f("ck_log_requests_state_known"),
        ),
        sa.CheckConstraint(
            "log_type IN ('SecurityLog', 'DiagnosticsLog')",
            name=op.f("ck_log_requests_log_type_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_requests")),
    )
    op.create_index(
        "ix_log_requests_station_created", "log_requests", ["station_identity", "created_at"]
    )
    op.create_table(
        "file_tokens",
        sa.Column("id", BigId, nullable=False),
        sa.Column("token_sha256", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("station_identity", sa.String(), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "purpose IN ('firmware-download', 'log-upload')",
            name=op.f("ck_file_tokens_purpose_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_file_tokens_token_sha256")),
    )
    op.create_index("ix_file_tokens_expires_at", "file_tokens", ["expires_at"])
    op.create_index("ix_file_tokens_purpose_ref", "file_tokens", ["purpose", "ref_id"])


def downgrade() -> None:
    op.drop_index("ix_file_tokens_purpose_ref", table_name="file_tokens")
    op.drop_index("ix_file_tokens_expires_at", table_name="file_tokens")
    op.drop_table("file_tokens")
    op.drop_index("ix_log_requests_station_created", table_name="log_requests")
    op.drop_table("log_requests")
    op.drop_index("ix_firmware_updates_station_created", table_name="firmware_updates")
    op.drop_index("ix_firmware_updates_release_id", table_name="firmware_updates")
    op.drop_table("firmware_updates")
    op.drop_index("ix_firmware_releases_sha256", table_name="firmware_releases")
    op.drop_table("firmware_releases")
