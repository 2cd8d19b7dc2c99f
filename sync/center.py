"""The reference center receiver (省级平台的接收端), first part: site enrolment and the journal
going up, verified record by record. Protocol: docs/sync-protocol.md.

The center keeps, per enrolled site, every record it accepted, the compact Merkle range of the
site's tree, and the receipts it gave: each accepted batch is answered with the site's signed
checkpoint cosigned by the center (a C2SP signed note with both signatures). Nothing that does
not verify is stored; a fork (the same sequence number with another hash, or an old checkpoint
that is not the tree held) or a request signed by an unknown or revoked key is refused and
raised as an alarm. A re-sent batch the center holds already is answered with its head; a site
reporting fewer records than the center holds (restored from an old image) is alarmed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding, NoEncryption, PrivateFormat, PublicFormat, load_pem_private_key, load_pem_public_key,
)
from flask import Flask, g, jsonify, request
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from sqlite_utils import Database, Migrations

from appliance import merkle
from appliance.canonical import CanonicalError, parse_canonical
from appliance.clock import Clock, utc_timestamp
from appliance.journal import RECORD_SIGNING_CONTEXT
from appliance.signednote import NoteError, open_checkpoint, sign_note
from appliance.store import Store
from sync import tus
from sync.requestbody import raw_body
from sync.statements import sign_media_held
from sync.feed import FORMAT as FEED_FORMAT
from sync.feed import KIND_LANES, LANES, PAGE_BYTES, PAGE_ITEMS, item_key, sign_item

CENTER_NAME = "provincial-center"
MAX_BATCH = 5000
SIGNATURE_MAX_AGE = timedelta(minutes=5)
schema = Migrations("center")


@schema()
def c001_center(db: Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE sites (id TEXT PRIMARY KEY, token_sha256 TEXT, public_key TEXT, enrolled TEXT, revoked TEXT,
               size INTEGER NOT NULL DEFAULT 0, head TEXT NOT NULL DEFAULT '', tree TEXT NOT NULL DEFAULT '[]',
               last_seen TEXT)"""
    )
    db.execute("CREATE TABLE records (site TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL, "
               "sig TEXT NOT NULL, received TEXT NOT NULL, PRIMARY KEY (site, seq))")
    db.execute("CREATE TABLE receipts (site TEXT NOT NULL, size INTEGER NOT NULL, note TEXT NOT NULL, issued TEXT NOT NULL, "
               "PRIMARY KEY (site, size))")
    db.execute("CREATE TABLE alarms (id INTEGER PRIMARY KEY, site TEXT, kind TEXT NOT NULL, detail TEXT NOT NULL, raised TEXT NOT NULL)")
    db.execute("CREATE TABLE nonces (site TEXT NOT NULL, nonce TEXT NOT NULL, seen TEXT NOT NULL, PRIMARY KEY (site, nonce))")


@schema()
def c002_feed_media_ui(db: Database) -> None:
    # The feed down: signed items per (site, lane), gapless seq; what each site confirmed having
    # and below which seq items were compacted away.
    db.execute("CREATE TABLE feed (site TEXT NOT NULL, lane TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, "
               "key TEXT NOT NULL, item TEXT NOT NULL, sig TEXT NOT NULL, issued TEXT NOT NULL, PRIMARY KEY (site, lane, seq))")
    db.execute("CREATE INDEX feed_key ON feed(site, lane, key, seq)")
    db.execute("CREATE TABLE feed_cursors (site TEXT NOT NULL, lane TEXT NOT NULL, confirmed INTEGER NOT NULL DEFAULT 0, "
               "floor INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (site, lane))")
    # Recordings: tus uploads under way, and segments received whole with the sealed hash.
    db.execute("CREATE TABLE uploads (id TEXT PRIMARY KEY, site TEXT NOT NULL, seq INTEGER NOT NULL, sha256 TEXT NOT NULL, "
               "length INTEGER NOT NULL, offset INTEGER NOT NULL, created TEXT NOT NULL, expires TEXT NOT NULL)")
    db.execute("CREATE TABLE media (site TEXT NOT NULL, seq INTEGER NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, "
               "path TEXT NOT NULL, received TEXT NOT NULL, PRIMARY KEY (site, seq))")
    # What kind each record is (for the UI's sessions and recordings), and the site's own count
    # as it last reported it (the lag).
    db.execute("ALTER TABLE records ADD COLUMN kind TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE records SET kind = json_extract(body, '$.kind')")
    # Partial: only the kinds the staff pages list, so ingest does not pay for indexing every record.
    db.execute("CREATE INDEX records_sessions ON records(site, seq) WHERE kind = 'session.state'")
    db.execute("CREATE INDEX records_segments ON records(site, seq) WHERE kind = 'recording.segment'")
    db.execute("ALTER TABLE sites ADD COLUMN reported_size INTEGER")
    db.execute("ALTER TABLE sites ADD COLUMN reported_at TEXT")
    db.execute("CREATE INDEX nonces_seen ON nonces(seen)")
    db.execute("CREATE TABLE staff (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created TEXT NOT NULL)")


@schema()
def c003_uploads_kept(db: Database) -> None:
    # A finished upload stays known (HEAD answers its full offset, as tus requires) until it
    # expires; its Upload-Metadata is kept to be returned on HEAD.
    db.execute("ALTER TABLE uploads ADD COLUMN metadata TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE uploads ADD COLUMN finished TEXT")


class CenterError(ValueError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class Center:
    def __init__(self, data: Path, clock: Clock | None = None) -> None:
        data.mkdir(parents=True, exist_ok=True)
        self.data, self.clock = data, clock or Clock()
        self.store = Store(data / "center.db", create=True, schema=schema)
        self.store.migrate()
        key_file = data / "center.key"
        if not key_file.exists():
            key_file.write_bytes(Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
            key_file.chmod(0o600)
        key = load_pem_private_key(key_file.read_bytes(), None)
        assert isinstance(key, Ed25519PrivateKey)
        self.key = key
        self._pruned: Any = None
        self._swept = -1e9
        self.public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()

    # -- enrolment --------------------------------------------------------------------------

    def add_site(self, site_id: str, *, replace_key: bool = False) -> str:
        """A one-time enrolment token for the site (shown once; only its hash is kept). A site
        enrolled already keeps its key unless ``replace_key`` (the box was replaced, or its key
        revoked): then the token lets a new key in, and that is raised as an alarm."""
        token = secrets.token_urlsafe(24)
        with self.store.transaction() as conn:
            row = conn.execute("SELECT public_key, revoked FROM sites WHERE id = ?", (site_id,)).fetchone()
            if row and row[0] and not replace_key:
                raise CenterError(409, "enrolled", f"site {site_id!r} is enrolled already: a new token would replace its "
                                  "key (say so with replace_key / --replace-key)")
            if row and row[0]:
                self._alarm(conn, site_id, "key_replacement_issued", {"revoked": bool(row[1])})
            conn.execute("""INSERT INTO sites (id, token_sha256) VALUES (?, ?)
                            ON CONFLICT(id) DO UPDATE SET token_sha256 = excluded.token_sha256""",
                         (site_id, hashlib.sha256(token.encode()).hexdigest()))
        return token

    def enroll(self, site_id: str, token: str, public_pem: str) -> dict[str, str]:
        digest = hashlib.sha256(token.encode()).hexdigest()
        try:
            key = load_pem_public_key(public_pem.encode())
        except ValueError as exc:
            raise CenterError(400, "bad_key", "public_key is not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise CenterError(400, "bad_key", "public_key is not an Ed25519 key")
        with self.store.transaction() as conn:
            row = conn.execute("SELECT token_sha256, public_key FROM sites WHERE id = ?", (site_id,)).fetchone()
            refused = row is None or row[0] is None or not secrets.compare_digest(row[0], digest)
            if not refused:
                # A replacement key starts clean: the revocation was of the old key.
                conn.execute("UPDATE sites SET token_sha256 = NULL, public_key = ?, enrolled = ?, revoked = NULL WHERE id = ?",
                             (public_pem, utc_timestamp(self.clock.now()), site_id))
                if row[1]:
                    self._alarm(conn, site_id, "key_replaced", {"old_key_sha256": hashlib.sha256(row[1].encode()).hexdigest()})
        if refused:
            self.alarm(site_id, "enrolment_refused", {"reason": "unknown site or token"})
            raise CenterError(403, "bad_token", "unknown site or enrolment token (tokens work once)")
        return {"center_name": CENTER_NAME, "center_public_key": self.public_pem}

    def revoke(self, site_id: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE sites SET revoked = ? WHERE id = ?", (utc_timestamp(self.clock.now()), site_id))

    def site_key(self, site_id: str) -> Ed25519PublicKey:
        row = self.store.reader().execute("SELECT public_key, revoked FROM sites WHERE id = ?", (site_id,)).fetchone()
        if row is None or row[0] is None:
            raise CenterError(401, "unknown_key", f"site {site_id!r} is not enrolled")
        if row[1]:
            raise CenterError(401, "revoked_key", f"site {site_id!r} is revoked")
        key = load_pem_public_key(row[0].encode())
        assert isinstance(key, Ed25519PublicKey)
        return key

    # -- the journal going up ---------------------------------------------------------------

    def head(self, site_id: str, reported_size: Any = None) -> dict[str, Any]:
        if isinstance(reported_size, int) and reported_size >= 0:
            with self.store.transaction() as conn:
                before = conn.execute("SELECT size, reported_size FROM sites WHERE id = ?", (site_id,)).fetchone()
                conn.execute("UPDATE sites SET reported_size = ?, reported_at = ?, last_seen = ? WHERE id = ?",
                             (reported_size, utc_timestamp(self.clock.now()), utc_timestamp(self.clock.now()), site_id))
                # A site that has fewer records than the center holds was restored from an old
                # image (or lost its disk): it must not go on writing a journal that forks this
                # one. Raised when it falls behind, not at every round while it stays there.
                if before and reported_size < before[0] and (before[1] is None or before[1] >= before[0]):
                    self._alarm(conn, site_id, "site_behind_center", {"center_size": before[0], "site_size": reported_size})
        row = self.store.reader().execute("SELECT size, head FROM sites WHERE id = ?", (site_id,)).fetchone()
        receipt = self.store.reader().execute(
            "SELECT note FROM receipts WHERE site = ? ORDER BY size DESC LIMIT 1", (site_id,)).fetchone()
        return {"site": site_id, "size": row[0] if row else 0, "head": row[1] if row else "",
                "receipt": receipt[0] if receipt else None}

    def accept(self, site_id: str, batch: dict[str, Any]) -> dict[str, Any]:
        """Verify a batch (records from the center's head on, the site's signed checkpoint at its
        end, a consistency proof from the center's size) and commit it, or refuse it whole."""
        key = self.site_key(site_id)
        records = batch.get("records")
        if not isinstance(records, list) or len(records) > MAX_BATCH:
            raise CenterError(400, "bad_batch", f"records: a list of at most {MAX_BATCH}")
        try:
            cp = open_checkpoint(str(batch.get("checkpoint", "")), site_id, key)
        except NoteError as exc:
            raise CenterError(400, "bad_checkpoint", f"checkpoint: {exc}") from exc
        alarms: list[tuple[str, dict[str, Any]]] = []
        try:
            return self._accept(site_id, key, cp, batch, records, alarms)
        finally:
            for kind, detail in alarms:  # kept even though the batch was refused (rolled back)
                self.alarm(site_id, kind, detail)

    def _accept(self, site_id: str, key: Ed25519PublicKey, cp: Any, batch: dict[str, Any], records: list[Any],
                alarms: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        with self.store.transaction() as conn:
            size, head, tree_json = conn.execute("SELECT size, head, tree FROM sites WHERE id = ?", (site_id,)).fetchone()
            if cp.size < size:
                return self._resent(conn, site_id, key, cp, records, size, head, alarms)
            tree = merkle.CompactRange.from_json(tree_json)
            prev, new = head, []
            for item in records:
                seq, digest, body, obj = self._check_record(site_id, key, item)
                if seq <= size:  # a re-send: harmless if identical, a fork if not
                    have = conn.execute("SELECT hash FROM records WHERE site = ? AND seq = ?", (site_id, seq)).fetchone()
                    if have and have[0] != digest.hex():
                        alarms.append(("fork", {"seq": seq, "center_hash": have[0], "site_hash": digest.hex()}))
                        raise CenterError(409, "fork", f"record {seq} differs from the one the center holds")
                    continue
                if seq != size + len(new) + 1:
                    raise CenterError(409, "gap", f"record {seq} does not follow {size + len(new)}")
                if obj.get("prev") != (prev or "0" * 64):
                    raise CenterError(400, "bad_chain", f"record {seq} does not chain to record {seq - 1}")
                new.append((seq, digest.hex(), body, item["sig"], str(obj.get("kind", ""))))
                prev = digest.hex()
                tree.append(merkle.leaf_hash(digest))
            new_size = size + len(new)
            if cp.size != new_size:
                raise CenterError(400, "bad_checkpoint", f"the checkpoint's size {cp.size} is not the batch's end {new_size}")
            if tree.root() != cp.root:
                alarms.append(("root_mismatch", {"size": cp.size}))
                raise CenterError(409, "root_mismatch", "the records do not give the checkpoint's root")
            if size:
                try:
                    proof = [base64.b64decode(p) for p in batch.get("consistency", [])]
                    old_root = merkle.CompactRange.from_json(tree_json).root()
                    merkle.verify_consistency(size, cp.size, old_root, cp.root, proof)
                except (ValueError, merkle.ProofError) as exc:
                    raise CenterError(400, "bad_consistency", f"consistency proof: {exc}") from exc
            now = utc_timestamp(self.clock.now())
            conn.executemany("INSERT INTO records (site, seq, hash, body, sig, received, kind) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [(site_id, s, h, b, g, now, k) for s, h, b, g, k in new])
            receipt = self._cosign(str(batch["checkpoint"]), cp.text())
            conn.execute("UPDATE sites SET size = ?, head = ?, tree = ?, last_seen = ? WHERE id = ?",
                         (new_size, prev, tree.to_json(), now, site_id))
            conn.execute("INSERT OR REPLACE INTO receipts (site, size, note, issued) VALUES (?, ?, ?, ?)",
                         (site_id, new_size, receipt, now))
        return {"site": site_id, "size": new_size, "head": prev, "accepted": len(new), "receipt": receipt}

    def _resent(self, conn: Any, site_id: str, key: Ed25519PublicKey, cp: Any, records: list[Any], size: int, head: str,
                alarms: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """A batch ending below the center's size: a re-send (its answer was lost, or a round
        prepared it before the center moved on). Harmless when its records are the ones held and
        its checkpoint's root is the center's root at that size: answered with the center's
        head, nothing stored. Anything else is a fork of what the center holds."""
        for item in records:
            seq, digest, _, _ = self._check_record(site_id, key, item)
            have = conn.execute("SELECT hash FROM records WHERE site = ? AND seq = ?", (site_id, seq)).fetchone()
            if have is None or seq > cp.size:
                raise CenterError(400, "bad_checkpoint", f"record {seq} is not within the checkpoint's size {cp.size}")
            if have[0] != digest.hex():
                alarms.append(("fork", {"seq": seq, "center_hash": have[0], "site_hash": digest.hex()}))
                raise CenterError(409, "fork", f"record {seq} differs from the one the center holds")
        if self._root_at(conn, site_id, cp.size) != cp.root:
            alarms.append(("fork", {"checkpoint_size": cp.size, "center_size": size}))
            raise CenterError(409, "fork", f"the site's checkpoint of size {cp.size} is not the tree the center holds")
        receipt = conn.execute("SELECT note FROM receipts WHERE site = ? ORDER BY size DESC LIMIT 1", (site_id,)).fetchone()
        return {"site": site_id, "size": size, "head": head, "accepted": 0, "receipt": receipt[0] if receipt else None}

    def _root_at(self, conn: Any, site_id: str, size: int) -> bytes:
        """The root of the site's tree at ``size``: from the receipt the center gave at that size
        (every accepted batch has one), else recomputed from the records held."""
        row = conn.execute("SELECT note FROM receipts WHERE site = ? AND size = ?", (site_id, size)).fetchone()
        if row:
            return base64.b64decode(row[0].split("\n")[2])
        leaves = [merkle.leaf_hash(bytes.fromhex(h)) for (h,) in conn.execute(
            "SELECT hash FROM records WHERE site = ? AND seq <= ? ORDER BY seq", (site_id, size))]
        return merkle.root(leaves)

    def _check_record(self, site_id: str, key: Ed25519PublicKey, item: Any) -> tuple[int, bytes, str, dict[str, Any]]:
        try:
            body, seq, sig = str(item["body"]), int(item["seq"]), str(item["sig"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CenterError(400, "bad_record", f"a record needs seq, body, hash, sig ({exc})") from exc
        where = f"record {seq}"
        try:
            obj = parse_canonical(body)
        except ValueError as exc:  # CanonicalError included
            raise CenterError(400, "bad_record", f"{where}: body is not canonical JSON ({exc})") from exc
        if not isinstance(obj, dict) or obj.get("seq") != seq or obj.get("site") != site_id:
            raise CenterError(400, "bad_record", f"{where}: sequence or site does not match its body")
        digest = hashlib.sha256(body.encode()).digest()
        if digest.hex() != item.get("hash"):
            raise CenterError(400, "bad_record", f"{where}: hash does not match the body")
        try:
            key.verify(base64.b64decode(sig), RECORD_SIGNING_CONTEXT + digest)
        except (InvalidSignature, ValueError) as exc:
            raise CenterError(400, "bad_record", f"{where}: signature does not verify") from exc
        return seq, digest, body, obj

    def _cosign(self, site_note: str, text: str) -> str:
        """The site's note with the center's signature line added (C2SP signed note: one text,
        several signatures)."""
        center = sign_note(text, CENTER_NAME, self.key)
        return site_note.rstrip("\n") + "\n" + center.split("\n\n", 1)[1].rstrip("\n") + "\n"

    def _alarm(self, conn: Any, site_id: str | None, kind: str, detail: dict[str, Any]) -> None:
        conn.execute("INSERT INTO alarms (site, kind, detail, raised) VALUES (?, ?, ?, ?)",
                     (site_id, kind, json.dumps(detail), utc_timestamp(self.clock.now())))

    def alarm(self, site_id: str | None, kind: str, detail: dict[str, Any]) -> None:
        with self.store.transaction() as conn:
            self._alarm(conn, site_id, kind, detail)

    def seen_nonce(self, site_id: str, nonce: str) -> bool:
        """Replay defence: a (site, nonce) pair is accepted once. Nonces older than twice the
        signature window are forgotten (at most once a minute): a request that old is refused
        by its ``created`` time anyway."""
        now = self.clock.now()
        with self.store.transaction() as conn:
            if self._pruned is None or now - self._pruned > timedelta(minutes=1):
                conn.execute("DELETE FROM nonces WHERE seen < ?", (utc_timestamp(now - 2 * SIGNATURE_MAX_AGE),))
                self._pruned = now
            if conn.execute("SELECT 1 FROM nonces WHERE site = ? AND nonce = ?", (site_id, nonce)).fetchone():
                return True
            conn.execute("INSERT INTO nonces (site, nonce, seen) VALUES (?, ?, ?)", (site_id, nonce, utc_timestamp(now)))
            return False

    def set_staff(self, name: str, password: str) -> None:
        from argon2 import PasswordHasher

        if not name.strip() or len(password) < 10:
            raise CenterError(400, "bad_staff", "a name, and a password of at least 10 characters")
        with self.store.transaction() as conn:
            conn.execute("""INSERT INTO staff (name, password_hash, created) VALUES (?, ?, ?)
                            ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash""",
                         (name.strip(), PasswordHasher().hash(password), utc_timestamp(self.clock.now())))

    # -- the feed down ----------------------------------------------------------------------

    def add_item(self, site_id: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Queue a signed item for the site: the lane comes from the kind, seq is the lane's next."""
        if kind not in KIND_LANES:
            raise CenterError(400, "bad_kind", f"unknown feed kind {kind!r} (known: {', '.join(KIND_LANES)})")
        if not isinstance(body, dict):
            raise CenterError(400, "bad_body", "an item's body is a JSON object")
        lane, key = KIND_LANES[kind], item_key(kind, body)
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone() is None:
                raise CenterError(404, "unknown_site", f"site {site_id!r} is not known here")
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM feed WHERE site = ? AND lane = ?", (site_id, lane)).fetchone()[0]
            floor = conn.execute("SELECT floor FROM feed_cursors WHERE site = ? AND lane = ?", (site_id, lane)).fetchone()
            seq = max(seq, (floor[0] if floor else 0) + 1)
            item = {"format": FEED_FORMAT, "site": site_id, "lane": lane, "seq": seq, "kind": kind, "key": key,
                    "issued": utc_timestamp(self.clock.now()), "body": body}
            try:
                signed = sign_item(self.key, item)
            except CanonicalError as exc:
                raise CenterError(400, "bad_body", f"the body cannot be signed canonically: {exc}") from exc
            conn.execute("INSERT INTO feed (site, lane, seq, kind, key, item, sig, issued) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (site_id, lane, seq, kind, key, signed["item"], signed["sig"], item["issued"]))
        return {"site": site_id, "lane": lane, "seq": seq, "kind": kind}

    def _lane(self, site_id: str, lane: str) -> tuple[int, int, int]:
        if lane not in LANES:
            raise CenterError(404, "bad_lane", f"lanes are {', '.join(LANES)}")
        conn = self.store.reader()
        head = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM feed WHERE site = ? AND lane = ?", (site_id, lane)).fetchone()[0]
        row = conn.execute("SELECT confirmed, floor FROM feed_cursors WHERE site = ? AND lane = ?", (site_id, lane)).fetchone()
        confirmed, floor = row if row else (0, 0)
        return max(head, floor), confirmed, floor

    def feed_page(self, site_id: str, lane: str, after: int, limit: int = PAGE_ITEMS) -> dict[str, Any]:
        """Items after the site's cursor, a bounded page. A cursor the center cannot continue
        from (below the compacted floor, past the lane's head, or behind what the site already
        confirmed: a site restored from an old image) is answered with ``refetch``."""
        head, confirmed, floor = self._lane(site_id, lane)
        if after < floor or after > head or after < confirmed:
            why = ("compacted away" if after < floor else "past the lane's head" if after > head
                   else f"behind the {confirmed} this site already confirmed (restored from an old image?)")
            self.alarm(site_id, "feed_refetch", {"lane": lane, "cursor": after, "why": why})
            raise CenterError(409, "refetch", f"cursor {after} in lane {lane!r} cannot be continued: {why}; "
                              "fetch the lane's snapshot")
        with self.store.transaction() as conn:
            conn.execute("""INSERT INTO feed_cursors (site, lane, confirmed) VALUES (?, ?, ?)
                            ON CONFLICT(site, lane) DO UPDATE SET confirmed = MAX(confirmed, excluded.confirmed)""",
                         (site_id, lane, after))
        rows = self.store.reader().execute(
            "SELECT item, sig FROM feed WHERE site = ? AND lane = ? AND seq > ? ORDER BY seq LIMIT ?",
            (site_id, lane, after, max(1, min(limit, PAGE_ITEMS)))).fetchall()
        items, size = [], 0
        for item, sig in rows:
            if items and size + len(item) > PAGE_BYTES:
                break
            items.append({"item": item, "sig": sig})
            size += len(item)
        return {"lane": lane, "head": head, "items": items}

    def feed_snapshot(self, site_id: str, lane: str) -> dict[str, Any]:
        """The lane as it stands: the latest item of every key, in seq order, and the head the
        site's cursor moves to once it has applied them."""
        head, _, _ = self._lane(site_id, lane)
        rows = self.store.reader().execute(
            """SELECT item, sig FROM feed f WHERE site = ? AND lane = ?
                 AND seq = (SELECT MAX(seq) FROM feed g WHERE g.site = f.site AND g.lane = f.lane AND g.key = f.key)
               ORDER BY seq""", (site_id, lane)).fetchall()
        return {"lane": lane, "head": head, "items": [{"item": i, "sig": s} for i, s in rows]}

    def compact(self, site_id: str) -> dict[str, int]:
        """Drop superseded items (an older item of a key with a newer one); the floor rises to
        the highest dropped seq, and a site whose cursor is below it is told to refetch."""
        out = {}
        with self.store.transaction() as conn:
            for lane in LANES:
                rows = conn.execute(
                    """SELECT seq FROM feed f WHERE site = ? AND lane = ? AND EXISTS (SELECT 1 FROM feed g
                       WHERE g.site = f.site AND g.lane = f.lane AND g.key = f.key AND g.seq > f.seq)""",
                    (site_id, lane)).fetchall()
                if not rows:
                    continue
                top = max(r[0] for r in rows)
                conn.executemany("DELETE FROM feed WHERE site = ? AND lane = ? AND seq = ?", [(site_id, lane, r[0]) for r in rows])
                conn.execute("""INSERT INTO feed_cursors (site, lane, floor) VALUES (?, ?, ?)
                                ON CONFLICT(site, lane) DO UPDATE SET floor = MAX(floor, excluded.floor)""", (site_id, lane, top))
                out[lane] = len(rows)
        return out

    # -- recordings -------------------------------------------------------------------------

    def sealed_segment(self, site_id: str, seq: int) -> dict[str, Any] | None:
        """What the site's journal record ``seq`` sealed, when it is a recording segment the
        center holds."""
        row = self.store.reader().execute("SELECT body FROM records WHERE site = ? AND seq = ? AND kind = 'recording.segment'",
                                          (site_id, seq)).fetchone()
        if row is None:
            return None
        payload = json.loads(row[0])["payload"]
        return {"sha256": payload["sha256"], "size": payload["size"], "file": payload["file"], "camera": payload["camera"],
                "room": payload["room"], "start": payload["start"], "end": payload["end"], "sessions": payload["sessions"]}

    def finish_upload(self, site_id: str, upload_id: str, path: Path) -> bool:
        """All bytes are in: keep the file only if its SHA-256 is the sealed record's."""
        row = self.store.reader().execute("SELECT seq, sha256, length, offset, finished FROM uploads WHERE id = ?",
                                          (upload_id,)).fetchone()
        if row is None or row[3] != row[2]:
            return False
        if row[4]:
            return True
        seq, wanted, length = row[0], row[1], row[2]
        final = self.data / "media" / site_id / f"{seq}.mp4"
        if not path.exists() and final.exists():
            path = final  # killed between moving the checked file and recording it: check it where it is
        if not path.exists():  # the bytes are gone (a disk replaced?): the site sends the segment again
            with self.store.transaction() as conn:
                conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
            return False
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != wanted or path.stat().st_size != length:
            with self.store.transaction() as conn:
                conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
                self._alarm(conn, site_id, "media_mismatch", {"seq": seq, "sealed_sha256": wanted, "received_sha256": digest.hexdigest()})
            path.unlink(missing_ok=True)
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        if path != final:
            os.replace(path, final)
        with self.store.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO media (site, seq, sha256, size, path, received) VALUES (?, ?, ?, ?, ?, ?)",
                         (site_id, seq, wanted, length, str(final.relative_to(self.data)), utc_timestamp(self.clock.now())))
            conn.execute("UPDATE uploads SET finished = ? WHERE id = ?", (utc_timestamp(self.clock.now()), upload_id))
        return True

    def sweep_uploads(self) -> int:
        """Remove expired uploads and their bytes (tus expiration); at most once a minute unless
        forced by a new upload. A finished upload's file has moved to the media folder already."""
        now = self.clock.now().isoformat()
        self._swept = self.clock.monotonic()
        rows = self.store.reader().execute("SELECT id FROM uploads WHERE expires <= ?", (now,)).fetchall()
        with self.store.transaction() as conn:
            conn.executemany("DELETE FROM uploads WHERE id = ?", [(r[0],) for r in rows])
        for (upload_id,) in rows:
            (self.data / "uploads" / f"{upload_id}.part").unlink(missing_ok=True)
        return len(rows)

    def media_status(self, site_id: str, seqs: list[int]) -> dict[str, str]:
        """Which of these segments (by sealing record) the center holds whole: seq → SHA-256.
        An upload whose last byte was committed but not yet checked (the center was killed in
        between) is checked here."""
        for upload_id, in self.store.reader().execute(
                "SELECT id FROM uploads WHERE site = ? AND offset = length AND finished IS NULL", (site_id,)).fetchall():
            self.finish_upload(site_id, upload_id, self.data / "uploads" / f"{upload_id}.part")
        if self.clock.monotonic() - self._swept > 60:  # every site's round asks: expired uploads go soon enough
            self.sweep_uploads()
        out = {}
        for chunk in range(0, len(seqs), 500):
            part = seqs[chunk:chunk + 500]
            rows = self.store.reader().execute(
                f"SELECT seq, sha256 FROM media WHERE site = ? AND seq IN ({','.join('?' * len(part))})", (site_id, *part))
            out.update({str(s): h for s, h in rows})
        return out

    # -- proofs -----------------------------------------------------------------------------

    def prove(self, site_id: str, seq: int) -> dict[str, Any]:
        """An inclusion proof of record ``seq`` in the site's tree at the center's latest
        receipt, checked here before it is handed out."""
        receipt = self.store.reader().execute(
            "SELECT size, note FROM receipts WHERE site = ? ORDER BY size DESC LIMIT 1", (site_id,)).fetchone()
        if receipt is None or not 1 <= seq <= receipt[0]:
            raise CenterError(404, "no_record", f"record {seq} is not under a receipt of site {site_id!r}")
        size, note = receipt
        nodes = merkle.TreeNodes()
        for (digest,) in self.store.reader().execute(
                "SELECT hash FROM records WHERE site = ? AND seq <= ? ORDER BY seq", (site_id, size)):
            nodes.append(merkle.leaf_hash(bytes.fromhex(digest)))
        proof = nodes.inclusion_proof(seq - 1, size)
        body, digest = self.store.reader().execute("SELECT body, hash FROM records WHERE site = ? AND seq = ?", (site_id, seq)).fetchone()
        leaf = merkle.leaf_hash(bytes.fromhex(digest))
        root = nodes.root(size)
        merkle.verify_inclusion(seq - 1, size, leaf, proof, root)
        return {"site": site_id, "seq": seq, "record": json.loads(body), "hash": digest, "size": size,
                "root": base64.b64encode(root).decode(), "proof": [base64.b64encode(p).decode() for p in proof], "receipt": note}


def signed_sha256(header: str) -> bytes:
    """The sha-256 member of a Content-Digest field (RFC 9530: a structured dictionary of
    byte sequences, ``sha-256=:<base64>:``); refused when there is none."""
    match = re.search(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/]*={0,2}):", header)
    if not match:
        raise CenterError(401, "bad_signature", "a Content-Digest with sha-256 is required")
    return base64.b64decode(match.group(1))


class _SiteKeys(HTTPSignatureKeyResolver):
    def __init__(self, center: Center) -> None:
        self.center = center

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        return self.center.site_key(key_id)

    def resolve_private_key(self, key_id: str) -> Any:  # pragma: no cover - the center never signs requests
        raise NotImplementedError


def create_center_app(center: Center) -> Flask:
    from sync.center_ui import init_ui

    app = Flask("center", static_folder=str(Path(__file__).resolve().parent.parent / "kiosk_ui" / "static"),
                static_url_path="/center/static")
    app.config["MAX_CONTENT_LENGTH"] = 64 << 20  # a journal batch or a tus chunk, with room
    init_ui(app, center)
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=_SiteKeys(center))

    def authenticated(site_id: str, *, streamed_body: bool = False) -> None:
        """RFC 9421: the request is signed by the site's key (keyid = site id), covering the
        method, authority, target URI, content digest and a nonce, created within 5 minutes.
        ``streamed_body``: the caller reads the body itself (a tus PATCH of any length) and
        checks it against the signed Content-Digest (``g.signed_sha256``) as it goes."""
        try:
            center.site_key(site_id)  # unknown or revoked: refused and alarmed before anything else
        except CenterError as exc:
            center.alarm(site_id, exc.code, {"path": request.path})
            raise
        try:
            results = verifier.verify(request, max_age=SIGNATURE_MAX_AGE,
                                      require_components=("@method", "@authority", "@target-uri", "content-digest"),
                                      body=None if streamed_body else raw_body())
        except (HTTPMessageSignaturesException, InvalidSignature, KeyError, ValueError) as exc:
            raise CenterError(401, "bad_signature", f"request signature: {exc}") from exc
        params = results[0].parameters
        if streamed_body:
            g.signed_sha256 = signed_sha256(request.headers.get("Content-Digest", ""))
        if params.get("keyid") != site_id:
            raise CenterError(401, "bad_signature", "signed by another site's key")
        nonce = params.get("nonce")
        if not nonce or center.seen_nonce(site_id, str(nonce)):
            raise CenterError(401, "replay", "a nonce is required and must be new")

    @app.errorhandler(CenterError)
    def refused(exc: CenterError) -> Any:
        return jsonify({"error": exc.code, "message": str(exc)}), exc.status

    @app.post("/center/v1/enroll")
    def enroll() -> Any:
        data = request.get_json(silent=True) or {}
        if not all(isinstance(data.get(k), str) for k in ("site_id", "token", "public_key")):
            raise CenterError(400, "bad_request", "site_id, token and public_key are required")
        return jsonify(center.enroll(data["site_id"], data["token"], data["public_key"]))

    def body() -> dict[str, Any]:
        try:
            data = json.loads(raw_body())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise CenterError(400, "bad_request", "a JSON object is expected")
        return data

    @app.post("/center/v1/sites/<site_id>/head")
    def head(site_id: str) -> Any:
        authenticated(site_id)
        return jsonify(center.head(site_id, body().get("local_size")))

    @app.post("/center/v1/sites/<site_id>/feed/<lane>")
    def feed(site_id: str, lane: str) -> Any:
        """A page of the lane after the site's cursor (POST: the request is signed with its body)."""
        authenticated(site_id)
        data = body()
        after, limit = data.get("after"), data.get("limit", PAGE_ITEMS)
        if not isinstance(after, int) or not isinstance(limit, int) or after < 0:
            raise CenterError(400, "bad_request", "after (the site's cursor, an integer >= 0) is required")
        return jsonify(center.feed_page(site_id, lane, after, limit))

    @app.post("/center/v1/sites/<site_id>/feed/<lane>/snapshot")
    def feed_snapshot(site_id: str, lane: str) -> Any:
        authenticated(site_id)
        return jsonify(center.feed_snapshot(site_id, lane))

    @app.post("/center/v1/sites/<site_id>/media/status")
    def media_status(site_id: str) -> Any:
        authenticated(site_id)
        data = body()
        seqs, challenge = data.get("seqs"), data.get("challenge")
        if not isinstance(seqs, list) or len(seqs) > 5000 or not all(isinstance(s, int) for s in seqs):
            raise CenterError(400, "bad_request", "seqs: a list of at most 5000 record numbers")
        if not isinstance(challenge, str) or not 16 <= len(challenge) <= 128:
            raise CenterError(400, "bad_request", "challenge: the site's random string (16 to 128 characters)")
        held = center.media_status(site_id, seqs)
        # Signed: the site frees footage on this answer (sync/statements.py).
        return jsonify({"held": held, **sign_media_held(center.key, site_id, challenge, held, utc_timestamp(center.clock.now()))})

    tus.register(app, center, authenticated)

    @app.post("/center/v1/sites/<site_id>/journal")
    def journal(site_id: str) -> Any:
        authenticated(site_id)
        return jsonify(center.accept(site_id, body()))

    @app.get("/center/v1/key")
    def key() -> Any:
        return jsonify({"center_name": CENTER_NAME, "center_public_key": center.public_pem})

    return app
