"""Named migrations of the appliance database (sqlite-utils ``Migrations``).

Never edit an applied migration: add a new one. Each runs in its own transaction together
with the record that it ran.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("appliance")


@migrations()
def m001_meta(db: Database) -> None:
    # Facts fixed at init: site id and name, public key, schema notes.
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migrations()
def m002_journal(db: Database) -> None:
    # body is the canonical JSON the hash is computed over; seq/ts/kind are copies of its
    # fields, for queries. Rows are only ever inserted.
    db.execute(
        """CREATE TABLE journal (
            seq INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            hash TEXT NOT NULL,
            sig TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE checkpoints (
            size INTEGER PRIMARY KEY,
            root TEXT NOT NULL,
            note TEXT NOT NULL,
            created TEXT NOT NULL
        )"""
    )


@migrations()
def m003_people(db: Database) -> None:
    # Personal fields are AES-256-GCM sealed blobs; id_token is an HMAC lookup token.
    db.execute(
        """CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            id_token TEXT NOT NULL UNIQUE,
            id_masked TEXT NOT NULL,
            id_sealed BLOB NOT NULL,
            name_masked TEXT NOT NULL,
            name_sealed BLOB NOT NULL,
            photo_sealed BLOB,
            bank_card_masked TEXT,
            bank_card_sealed BLOB,
            created TEXT NOT NULL
        )"""
    )


@migrations()
def m004_service_status(db: Database) -> None:
    # Heartbeats of the long-running services, read by the console and the watchdog.
    db.execute(
        """CREATE TABLE service_status (
            name TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            started TEXT NOT NULL,
            heartbeat TEXT NOT NULL
        )"""
    )
