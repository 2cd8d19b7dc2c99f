"""The relay of remote evaluations (远程异地评标): which venues sit on each remote committee, every
message relayed between them (kept: the center's log of the committee's link), and when each
venue last asked for its messages (its presence).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE remote_sessions (
        session TEXT NOT NULL, site TEXT NOT NULL REFERENCES sites (id), main BOOLEAN NOT NULL, registered TEXT NOT NULL,
        ends TIMESTAMPTZ, PRIMARY KEY (session, site))""")
    op.execute("CREATE INDEX remote_sessions_site ON remote_sessions (site, registered)")
    op.execute("""CREATE TABLE relay (
        to_site TEXT NOT NULL, seq BIGINT NOT NULL, session TEXT NOT NULL, from_site TEXT NOT NULL, kind TEXT NOT NULL,
        body TEXT NOT NULL, sig TEXT NOT NULL, sha256 TEXT NOT NULL, relayed TEXT NOT NULL,
        PRIMARY KEY (to_site, seq), UNIQUE (to_site, from_site, sha256))""")
    op.execute("CREATE INDEX relay_session ON relay (session, relayed)")
    op.execute("CREATE TABLE relay_presence (site TEXT PRIMARY KEY, expires TIMESTAMPTZ NOT NULL)")


def downgrade() -> None:
    raise NotImplementedError("the center's evidence is never migrated backwards: restore a backup instead")
