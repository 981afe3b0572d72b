"""Security: terminal enrolment and kiosk PINs, personal data encrypted with a search hash,
the clerks of a case's call, signed revocations, and the least-privilege database role.

Revision ID: 0005_security
Revises: 0002_approval, 0003_media
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0005_security"
down_revision = ("0002_approval", "0003_media")
branch_labels = ("security",)
depends_on = None

APP_ROLE = "vwindow_app"


def _encrypt_existing() -> None:
    """Rows written before this revision carry plaintext: encrypt them once."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT case_no, id_number, phone FROM cases")).all()
    if not rows:
        return
    from core.pii import keys_for
    from core.settings import Settings

    settings = Settings.from_env()
    keys = keys_for(settings.pii_key_file, settings.run_mode == "local")
    for case_no, id_number, phone in rows:
        bind.execute(sa.text(
            "UPDATE cases SET id_number = :i, phone = :p, id_number_hash = :h "
            "WHERE case_no = :c"), {
            "i": keys.encrypt(id_number, f"cases.id_number:{case_no}"),
            "p": keys.encrypt(phone, f"cases.phone:{case_no}"),
            "h": keys.search_hash("id_number", id_number), "c": case_no})


def upgrade() -> None:
    op.add_column("terminals", sa.Column("enrol_code_hash", sa.String(64), nullable=True))
    op.add_column("terminals", sa.Column("enrol_expires_at", sa.DateTime(timezone=True),
                                         nullable=True))
    op.add_column("terminals", sa.Column("rotate_pending", sa.Boolean, nullable=False,
                                         server_default="false"))
    op.add_column("terminals", sa.Column("staff_pin_hash", sa.Text, nullable=True))
    op.add_column("terminals", sa.Column("handling_regions", ARRAY(sa.String(12)),
                                         nullable=False, server_default="{}"))
    op.add_column("terminals", sa.Column("priority_allowed", sa.Boolean, nullable=False,
                                         server_default="true"))
    op.alter_column("cases", "id_number", type_=sa.Text)
    op.alter_column("cases", "phone", type_=sa.Text)
    op.add_column("cases", sa.Column("id_number_hash", sa.String(64), nullable=False,
                                     server_default=""))
    op.add_column("cases", sa.Column("call_clerks", ARRAY(sa.String(64)), nullable=False,
                                     server_default="{}"))
    op.create_index("cases_id_number_hash", "cases", ["id_number_hash"])
    op.create_index("cases_call_clerks", "cases", ["call_clerks"], postgresql_using="gin")
    op.add_column("certificates", sa.Column("revocation_signature", sa.Text, nullable=True))
    op.add_column("certificates", sa.Column("revoked_by", sa.String(64), nullable=True))
    _encrypt_existing()
    # The processes connect as this role: they may add to the audit log, never change it.
    op.execute(f"""DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} NOLOGIN;
      END IF; END $$""")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
               f"TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, "
               f"DELETE ON TABLES TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES "
               f"TO {APP_ROLE}")
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"GRANT UPDATE, DELETE ON audit_log TO {APP_ROLE}")
    for col in ("revoked_by", "revocation_signature"):
        op.drop_column("certificates", col)
    op.drop_index("cases_call_clerks", "cases")
    op.drop_index("cases_id_number_hash", "cases")
    op.drop_column("cases", "call_clerks")
    op.drop_column("cases", "id_number_hash")
    for col in ("priority_allowed", "handling_regions", "staff_pin_hash", "rotate_pending",
                "enrol_expires_at", "enrol_code_hash"):
        op.drop_column("terminals", col)
