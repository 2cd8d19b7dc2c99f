"""Evidence packages the center exported, kept in the footage store by their SHA-256.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE packages (
        sha256 TEXT PRIMARY KEY REFERENCES objects (sha256), site TEXT NOT NULL, session TEXT NOT NULL,
        size BIGINT NOT NULL, exported_by TEXT NOT NULL, exported TEXT NOT NULL)""")
    op.execute("CREATE INDEX packages_session ON packages (site, session)")


def downgrade() -> None:
    raise NotImplementedError("the center's evidence is never migrated backwards: restore a backup instead")
