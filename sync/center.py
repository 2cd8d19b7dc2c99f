"""The reference center receiver (省级平台的接收端), first part: site enrolment and the journal
going up, verified record by record. Protocol: docs/sync-protocol.md.

The center keeps, per enrolled site, every record it accepted, the compact Merkle range of the
site's tree, and the receipts it gave: each accepted batch is answered with the site's signed
checkpoint cosigned by the center (a C2SP signed note with both signatures). Nothing that does
not verify is stored; a fork (the same sequence number with another hash), a shrink, or a
request signed by an unknown or revoked key is refused and raised as an alarm.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding, NoEncryption, PrivateFormat, PublicFormat, load_pem_private_key, load_pem_public_key,
)
from flask import Flask, jsonify, request
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from sqlite_utils import Database, Migrations

from appliance import merkle
from appliance.canonical import canonical_bytes
from appliance.clock import Clock, utc_timestamp
from appliance.journal import RECORD_SIGNING_CONTEXT
from appliance.signednote import NoteError, open_checkpoint, sign_note
from appliance.store import Store

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
        self.public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()

    # -- enrolment --------------------------------------------------------------------------

    def add_site(self, site_id: str) -> str:
        """A one-time enrolment token for the site (shown once; only its hash is kept)."""
        token = secrets.token_urlsafe(24)
        with self.store.transaction() as conn:
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
                conn.execute("UPDATE sites SET token_sha256 = NULL, public_key = ?, enrolled = ? WHERE id = ?",
                             (public_pem, utc_timestamp(self.clock.now()), site_id))
        if refused:
            self.alarm(site_id, "enrolment_refused", {"reason": "unknown site or token"})
            raise CenterError(403, "bad_token", "unknown site or enrolment token (tokens work once)")
            conn.execute("UPDATE sites SET token_sha256 = NULL, public_key = ?, enrolled = ? WHERE id = ?",
                         (public_pem, utc_timestamp(self.clock.now()), site_id))
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

    def head(self, site_id: str) -> dict[str, Any]:
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
                alarms.append(("shrink", {"center_size": size, "checkpoint_size": cp.size}))
                raise CenterError(409, "shrink", f"checkpoint of size {cp.size} is behind the center's {size}")
            tree = merkle.CompactRange.from_json(tree_json)
            prev, new = head, []
            for item in records:
                seq, digest, body = self._check_record(site_id, key, item)
                if seq <= size:  # a re-send: harmless if identical, a fork if not
                    have = conn.execute("SELECT hash FROM records WHERE site = ? AND seq = ?", (site_id, seq)).fetchone()
                    if have and have[0] != digest.hex():
                        alarms.append(("fork", {"seq": seq, "center_hash": have[0], "site_hash": digest.hex()}))
                        raise CenterError(409, "fork", f"record {seq} differs from the one the center holds")
                    continue
                if seq != size + len(new) + 1:
                    raise CenterError(409, "gap", f"record {seq} does not follow {size + len(new)}")
                if json.loads(body)["prev"] != (prev or "0" * 64):
                    raise CenterError(400, "bad_chain", f"record {seq} does not chain to record {seq - 1}")
                new.append((seq, digest.hex(), body, item["sig"]))
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
            conn.executemany("INSERT INTO records (site, seq, hash, body, sig, received) VALUES (?, ?, ?, ?, ?, ?)",
                             [(site_id, s, h, b, g, now) for s, h, b, g in new])
            receipt = self._cosign(str(batch["checkpoint"]), cp.text())
            conn.execute("UPDATE sites SET size = ?, head = ?, tree = ?, last_seen = ? WHERE id = ?",
                         (new_size, prev, tree.to_json(), now, site_id))
            conn.execute("INSERT OR REPLACE INTO receipts (site, size, note, issued) VALUES (?, ?, ?, ?)",
                         (site_id, new_size, receipt, now))
        return {"site": site_id, "size": new_size, "head": prev, "accepted": len(new), "receipt": receipt}

    def _check_record(self, site_id: str, key: Ed25519PublicKey, item: Any) -> tuple[int, bytes, str]:
        try:
            body, seq, sig = str(item["body"]), int(item["seq"]), str(item["sig"])
            obj = json.loads(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise CenterError(400, "bad_record", f"a record needs seq, body, hash, sig ({exc})") from exc
        where = f"record {seq}"
        if obj.get("seq") != seq or obj.get("site") != site_id:
            raise CenterError(400, "bad_record", f"{where}: sequence or site does not match its body")
        if canonical_bytes(obj) != body.encode():
            raise CenterError(400, "bad_record", f"{where}: body is not canonical")
        digest = hashlib.sha256(body.encode()).digest()
        if digest.hex() != item.get("hash"):
            raise CenterError(400, "bad_record", f"{where}: hash does not match the body")
        try:
            key.verify(base64.b64decode(sig), RECORD_SIGNING_CONTEXT + digest)
        except (InvalidSignature, ValueError) as exc:
            raise CenterError(400, "bad_record", f"{where}: signature does not verify") from exc
        return seq, digest, body

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
        """Replay defence: a (site, nonce) pair is accepted once."""
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM nonces WHERE site = ? AND nonce = ?", (site_id, nonce)).fetchone():
                return True
            conn.execute("INSERT INTO nonces (site, nonce, seen) VALUES (?, ?, ?)", (site_id, nonce, utc_timestamp(self.clock.now())))
            return False


class _SiteKeys(HTTPSignatureKeyResolver):
    def __init__(self, center: Center) -> None:
        self.center = center

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        return self.center.site_key(key_id)

    def resolve_private_key(self, key_id: str) -> Any:  # pragma: no cover - the center never signs requests
        raise NotImplementedError


def create_center_app(center: Center) -> Flask:
    app = Flask("center")
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=_SiteKeys(center))

    def authenticated(site_id: str) -> None:
        """RFC 9421: the request is signed by the site's key (keyid = site id), covering the
        method, authority, target URI, content digest and a nonce, created within 5 minutes."""
        try:
            center.site_key(site_id)  # unknown or revoked: refused and alarmed before anything else
        except CenterError as exc:
            center.alarm(site_id, exc.code, {"path": request.path})
            raise
        try:
            results = verifier.verify(request, max_age=SIGNATURE_MAX_AGE,
                                      require_components=("@method", "@authority", "@target-uri", "content-digest"),
                                      body=request.get_data())
        except (HTTPMessageSignaturesException, InvalidSignature, KeyError, ValueError) as exc:
            raise CenterError(401, "bad_signature", f"request signature: {exc}") from exc
        params = results[0].parameters
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

    @app.post("/center/v1/sites/<site_id>/head")
    def head(site_id: str) -> Any:
        authenticated(site_id)
        return jsonify(center.head(site_id))

    @app.post("/center/v1/sites/<site_id>/journal")
    def journal(site_id: str) -> Any:
        authenticated(site_id)
        batch = request.get_json(silent=True)
        if not isinstance(batch, dict):
            raise CenterError(400, "bad_request", "a JSON object is expected")
        return jsonify(center.accept(site_id, batch))

    @app.get("/center/v1/key")
    def key() -> Any:
        return jsonify({"center_name": CENTER_NAME, "center_public_key": center.public_pem})

    return app
