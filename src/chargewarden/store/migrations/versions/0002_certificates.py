"""Certificates: every certificate the CSMS issued or imported, and its revocation.

Revision ID: 0002
Revises: 0001

Columns are spelled out here rather than taken from ``models`` (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chargewarden.store.coltypes import BigId, UTCDateTime

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "certificates",
        sa.Column("id", BigId, nullable=False),
        sa.Column("serial", sa.String(), nullable=False),
        sa.Column("issuer_ca", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("subject_cn", sa.String(), nullable=True),
        sa.Column("subject_o", sa.String(), nullable=True),
        sa.Column("station_identity", sa.String(), nullable=True),
        sa.Column("fingerprint_sha256", sa.String(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("not_after", UTCDateTime(), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("key_type", sa.String(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revocation_reason", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "role IN ('root', 'ca', 'server', 'station', 'firmware')",
            name=op.f("ck_certificates_role_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint(
            "fingerprint_sha256", name=op.f("uq_certificates_fingerprint_sha256")
        ),
        sa.UniqueConstraint("issuer_ca", "serial", name=op.f("uq_certificates_issuer_ca_serial")),
    )
    op.create_index(op.f("ix_certificates_serial"), "certificates", ["serial"])
    op.create_index(op.f("ix_certificates_station_identity"), "certificates", ["station_identity"])
    op.create_index(op.f("ix_certificates_not_after"), "certificates", ["not_after"])
    op.create_index(op.f("ix_certificates_revoked_at"), "certificates", ["revoked_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_certificates_revoked_at"), table_name="certificates")
    op.drop_index(op.f("ix_certificates_not_after"), table_name="certificates")
    op.drop_index(op.f("ix_certificates_station_identity"), table_name="certificates")
    op.drop_index(op.f("ix_certificates_serial"), table_name="certificates")
    op.drop_table("certificates")
