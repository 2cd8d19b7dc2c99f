"""The center's schema on PostgreSQL: enrolled sites and their key generations, the records and
receipts of their journals, the feed down, tus uploads, footage held (by content address),
alarms, staff logins and sessions, request nonces.

Timestamps are ISO 8601 UTC text as the protocol writes them (they compare in time order).
A record's body is kept as the exact text the site signed (never jsonb, which would reorder it).

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE sites (
    id TEXT PRIMARY KEY, token_sha256 TEXT, public_key TEXT, enrolled TEXT, revoked TEXT,
    size BIGINT NOT NULL DEFAULT 0, head TEXT NOT NULL DEFAULT '', tree TEXT NOT NULL DEFAULT '[]',
    last_seen TEXT, reported_size BIGINT, reported_at TEXT, generation INTEGER NOT NULL DEFAULT 1);

CREATE TABLE site_keys (
    site TEXT NOT NULL, generation INTEGER NOT NULL, public_key TEXT NOT NULL, fingerprint TEXT NOT NULL,
    enrolled TEXT, retired TEXT, size BIGINT, head TEXT, PRIMARY KEY (site, generation));

CREATE TABLE records (
    site TEXT NOT NULL, seq BIGINT NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL, sig TEXT NOT NULL,
    received TEXT NOT NULL, kind TEXT NOT NULL, ts TEXT NOT NULL, PRIMARY KEY (site, seq));
-- Partial: only the kinds the pages list, so ingest does not pay for indexing every record.
CREATE INDEX records_sessions ON records (site, seq) WHERE kind = 'session.state';
CREATE INDEX records_segments ON records (site, seq) WHERE kind = 'recording.segment';
CREATE INDEX records_kinds ON records (kind, site, seq)
    WHERE kind IN ('site.initialised', 'plan.loaded', 'alarm.raised', 'alarm.acknowledged');

CREATE TABLE receipts (site TEXT NOT NULL, size BIGINT NOT NULL, note TEXT NOT NULL, issued TEXT NOT NULL,
                       PRIMARY KEY (site, size));

CREATE TABLE records_retired (
    site TEXT NOT NULL, generation INTEGER NOT NULL, seq BIGINT NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL,
    sig TEXT NOT NULL, received TEXT NOT NULL, kind TEXT NOT NULL, ts TEXT NOT NULL,
    PRIMARY KEY (site, generation, seq));
CREATE TABLE receipts_retired (site TEXT NOT NULL, generation INTEGER NOT NULL, size BIGINT NOT NULL,
                               note TEXT NOT NULL, issued TEXT NOT NULL, PRIMARY KEY (site, generation, size));

CREATE TABLE alarms (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, site TEXT, kind TEXT NOT NULL, detail TEXT NOT NULL,
    raised TEXT NOT NULL, source TEXT, count INTEGER NOT NULL DEFAULT 1, last_raised TEXT NOT NULL,
    acknowledged TEXT, acknowledged_by TEXT, ack_note TEXT);
CREATE INDEX alarms_recent ON alarms (kind, last_raised);

CREATE TABLE nonces (site TEXT NOT NULL, nonce TEXT NOT NULL, seen TEXT NOT NULL, PRIMARY KEY (site, nonce));
CREATE INDEX nonces_seen ON nonces (seen);

CREATE TABLE feed (
    site TEXT NOT NULL, lane TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    item TEXT NOT NULL, sig TEXT NOT NULL, issued TEXT NOT NULL, PRIMARY KEY (site, lane, seq));
CREATE INDEX feed_key ON feed (site, lane, key, seq);
CREATE TABLE feed_cursors (site TEXT NOT NULL, lane TEXT NOT NULL, confirmed BIGINT NOT NULL DEFAULT 0,
                           floor BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (site, lane));

-- tus uploads under way (and finished ones, until they expire: HEAD answers their offset).
CREATE TABLE uploads (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, seq BIGINT NOT NULL, sha256 TEXT NOT NULL, length BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL DEFAULT 0, created TEXT NOT NULL, expires TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '', finished TEXT);
CREATE INDEX uploads_expires ON uploads (expires);

-- The footage store's objects, by content address, with what keeps them: the retention date
-- (15 years from receipt) and any legal hold, and the last scrub's outcome.
CREATE TABLE objects (
    sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, stored TEXT NOT NULL, retain_until TEXT NOT NULL,
    legal_hold TEXT, last_scrub TEXT, scrub_ok BOOLEAN);
-- Segments received whole: the sealing record of the site's journal → the object.
CREATE TABLE media (site TEXT NOT NULL, seq BIGINT NOT NULL, sha256 TEXT NOT NULL REFERENCES objects (sha256),
                    size BIGINT NOT NULL, received TEXT NOT NULL, PRIMARY KEY (site, seq));
CREATE TABLE media_retired (
    site TEXT NOT NULL, generation INTEGER NOT NULL, seq BIGINT NOT NULL, sha256 TEXT NOT NULL, size BIGINT NOT NULL,
    received TEXT NOT NULL, PRIMARY KEY (site, generation, seq));

CREATE TABLE staff (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created TEXT NOT NULL,
                    failed_count INTEGER NOT NULL DEFAULT 0, locked_until TEXT, disabled BOOLEAN NOT NULL DEFAULT FALSE);
CREATE TABLE staff_sessions (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL REFERENCES staff (name),
                             created TEXT NOT NULL, last_seen TEXT NOT NULL, revoked TEXT, revoked_reason TEXT);
"""


def upgrade() -> None:
    for statement in filter(None, (s.strip() for s in SCHEMA.split(";"))):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the center's evidence is never migrated backwards: restore a backup instead")
