"""The province's pages: the center's own signed log of staff actions, alarms acknowledged with
a note and delivered to a webhook, records searchable by session and time, legal holds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE center_log (
    seq BIGINT PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, body TEXT NOT NULL,
    hash TEXT NOT NULL, sig TEXT NOT NULL);

ALTER TABLE alarms ADD COLUMN webhook_state TEXT;
ALTER TABLE alarms ADD COLUMN webhook_at TEXT;
ALTER TABLE alarms ADD COLUMN webhook_tries INTEGER NOT NULL DEFAULT 0;
CREATE INDEX alarms_webhook ON alarms (id) WHERE webhook_state IS NULL OR webhook_state = 'claimed';
CREATE INDEX alarms_last ON alarms (last_raised);
CREATE INDEX alarms_site ON alarms (site) WHERE acknowledged IS NULL;

ALTER TABLE records ADD COLUMN session TEXT;
CREATE INDEX records_session ON records (session, ts) WHERE session IS NOT NULL;
-- The search's order (newest first, a page at a time) and its date range.
CREATE INDEX records_ts ON records (ts, site, seq);

CREATE TABLE legal_holds (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, site TEXT NOT NULL, session TEXT NOT NULL,
    reason TEXT NOT NULL, placed_by TEXT NOT NULL, placed TEXT NOT NULL, lifted TEXT, lifted_by TEXT)
"""


def upgrade() -> None:
    for statement in filter(None, (s.strip() for s in SCHEMA.split(";"))):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the center's evidence is never migrated backwards: restore a backup instead")
