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
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from appliance import merkle
from appliance.canonical import parse_canonical
from appliance.clock import Clock, utc_timestamp
from appliance.signing import record_message
from appliance.keys import fingerprint
from appliance.signednote import NoteError, open_checkpoint, sign_note
from center.base import (  # noqa: F401
    CENTER_NAME,
    FUTURE_SKEW_S,
    MAX_BATCH,
    SIGNATURE_MAX_AGE,
    CenterError,
)
from center.config import CenterConfig, load
from center.db import Database, migrate
from psycopg.errors import LockNotAvailable
from center.feed import CenterFeed
from center.footage import open_store
from center.media import CenterMedia
from center.relay import CenterRelay

ALARM_WINDOW = timedelta(hours=1)  # the same alarm again within this adds to its count
ALARM_DETAIL_MAX = 1000  # characters of an alarm's detail kept
UNTRUSTED_ROWS_PER_10_MIN = 50  # alarms from unauthenticated sources beyond this fold into one


class Center(CenterFeed, CenterMedia, CenterRelay):
    def __init__(self, data: Path, clock: Clock | None = None, *, config: CenterConfig | None = None,
                 pool_size: int = 20, migrate_schema: bool = True) -> None:
        """The center of ``data/center.toml``. ``migrate_schema``: bring the database's schema
        up to date first (the process that starts the workers does; the workers do not)."""
        self.config = config or load(data)
        data = self.config.data
        self.data, self.clock = data, clock or Clock()
        if migrate_schema:
            migrate(self.config.database)
        self.db = Database(self.config.database, max_size=pool_size)
        self.footage = open_store(self.config.footage)
        self.staging = self.config.footage.staging
        self.staging.mkdir(parents=True, exist_ok=True)
        key_file = data / "center.key"
        create_once(key_file, lambda: Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
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
        with self.db.transaction() as conn:
            row = conn.execute("SELECT public_key, revoked FROM sites WHERE id = %s", (site_id,)).fetchone()
            if row and row[0] and not replace_key:
                raise CenterError(409, "enrolled", f"site {site_id!r} is enrolled already: a new token would replace its "
                                  "key (say so with replace_key / --replace-key)")
            if row and row[0]:
                self._alarm(conn, site_id, "key_replacement_issued", {"revoked": bool(row[1])})
            conn.execute("""INSERT INTO sites (id, token_sha256) VALUES (%s, %s)
                            ON CONFLICT(id) DO UPDATE SET token_sha256 = excluded.token_sha256""",
                         (site_id, hashlib.sha256(token.encode()).hexdigest()))
        return token

    def _known_site(self, site_id: str) -> bool:
        return self.db.one("SELECT 1 FROM sites WHERE id = %s", (site_id,)) is not None

    def _retire_key(self, conn: Any, site_id: str) -> int:
        """A replaced box's journal, under its old key, is retired whole: its records, receipts
        and footage move to the retired tables (nothing is dropped), and the site's journal starts
        again from record 1 under the new key, as a new generation. Returns the retired one."""
        gen, size, head = conn.execute("SELECT generation, size, head FROM sites WHERE id = %s FOR UPDATE", (site_id,)).fetchone()
        now = utc_timestamp(self.clock.now())
        conn.execute("UPDATE site_keys SET retired = %s, size = %s, head = %s WHERE site = %s AND generation = %s",
                     (now, size, head, site_id, gen))
        conn.execute("""INSERT INTO records_retired (site, generation, seq, hash, body, sig, received, kind, ts)
                        SELECT site, %s, seq, hash, body, sig, received, kind, ts FROM records WHERE site = %s""", (gen, site_id))
        conn.execute("DELETE FROM records WHERE site = %s", (site_id,))
        conn.execute("""INSERT INTO receipts_retired (site, generation, size, note, issued)
                        SELECT site, %s, size, note, issued FROM receipts WHERE site = %s""", (gen, site_id))
        conn.execute("DELETE FROM receipts WHERE site = %s", (site_id,))
        conn.execute("""INSERT INTO media_retired (site, generation, seq, sha256, size, received)
                        SELECT site, %s, seq, sha256, size, received FROM media WHERE site = %s""", (gen, site_id))
        conn.execute("DELETE FROM media WHERE site = %s", (site_id,))
        conn.execute("DELETE FROM uploads WHERE site = %s", (site_id,))
        conn.execute("UPDATE feed_cursors SET confirmed = 0 WHERE site = %s", (site_id,))  # the new box starts afresh
        conn.execute("""UPDATE sites SET generation = generation + 1, size = 0, head = '', tree = '[]', reported_size = NULL,
                        reported_at = NULL WHERE id = %s""", (site_id,))
        return int(gen)

    def key_generations(self, site_id: str) -> list[dict[str, Any]]:
        """Every key the site has had, oldest first: its fingerprint (what staff compare with the
        one written down at the box), when it was enrolled and retired, its journal's size then."""
        rows = self.db.all(
            "SELECT generation, fingerprint, enrolled, retired, size, head FROM site_keys WHERE site = %s ORDER BY generation",
            (site_id,))
        return [dict(zip(("generation", "fingerprint", "enrolled", "retired", "size", "head"), r, strict=True)) for r in rows]

    def enroll(self, site_id: str, token: str, public_pem: str, *, source: str | None = None) -> dict[str, str]:
        digest = hashlib.sha256(token.encode()).hexdigest()
        try:
            key = load_pem_public_key(public_pem.encode())
        except ValueError as exc:
            raise CenterError(400, "bad_key", "public_key is not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise CenterError(400, "bad_key", "public_key is not an Ed25519 key")
        with self.db.transaction() as conn:
            row = conn.execute("SELECT token_sha256, public_key FROM sites WHERE id = %s FOR UPDATE", (site_id,)).fetchone()
            refused = row is None or row[0] is None or not secrets.compare_digest(row[0], digest)
            if not refused:
                now = utc_timestamp(self.clock.now())
                generation = self._retire_key(conn, site_id) if row[1] and row[1] != public_pem else None
                # A replacement key starts clean: the revocation was of the old key.
                conn.execute("UPDATE sites SET token_sha256 = NULL, public_key = %s, enrolled = %s, revoked = NULL WHERE id = %s",
                             (public_pem, now, site_id))
                gen = conn.execute("SELECT generation FROM sites WHERE id = %s", (site_id,)).fetchone()[0]
                conn.execute("""INSERT INTO site_keys (site, generation, public_key, fingerprint, enrolled) VALUES (%s, %s, %s, %s, %s)
                                ON CONFLICT(site, generation) DO UPDATE SET public_key = excluded.public_key,
                                fingerprint = excluded.fingerprint, enrolled = excluded.enrolled""",
                             (site_id, gen, public_pem, fingerprint(key), now))
                if generation is not None:
                    self._alarm(conn, site_id, "key_replaced", {"old_key_sha256": hashlib.sha256(row[1].encode()).hexdigest(),
                                                                "retired_generation": generation, "new_fingerprint": fingerprint(key)})
                elif row[1]:  # the same key enrolled again (its revocation lifted): its journal goes on
                    self._alarm(conn, site_id, "key_reenrolled", {"fingerprint": fingerprint(key)})
        if refused:
            self.alarm(site_id if self._known_site(site_id) else None, "enrolment_refused",
                       {"reason": "unknown site or token", "site_tried": site_id[:64]}, source=source)
            raise CenterError(403, "bad_token", "unknown site or enrolment token (tokens work once)")
        return {"center_name": CENTER_NAME, "center_public_key": self.public_pem}

    def revoke(self, site_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE sites SET revoked = %s WHERE id = %s", (utc_timestamp(self.clock.now()), site_id))

    def site_key(self, site_id: str) -> Ed25519PublicKey:
        row = self.db.one("SELECT public_key, revoked FROM sites WHERE id = %s", (site_id,))
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
            with self.db.transaction() as conn:
                before = conn.execute("SELECT size, reported_size FROM sites WHERE id = %s FOR UPDATE", (site_id,)).fetchone()
                conn.execute("UPDATE sites SET reported_size = %s, reported_at = %s, last_seen = %s WHERE id = %s",
                             (reported_size, utc_timestamp(self.clock.now()), utc_timestamp(self.clock.now()), site_id))
                # A site that has fewer records than the center holds was restored from an old
                # image (or lost its disk): it must not go on writing a journal that forks this
                # one. Raised when it falls behind, not at every round while it stays there.
                if before and reported_size < before[0] and (before[1] is None or before[1] >= before[0]):
                    self._alarm(conn, site_id, "site_behind_center", {"center_size": before[0], "site_size": reported_size})
        row = self.db.one("SELECT size, head FROM sites WHERE id = %s", (site_id,))
        receipt = self.db.one("SELECT note FROM receipts WHERE site = %s ORDER BY size DESC LIMIT 1", (site_id,))
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
        # The expensive part, every record's signature, before any lock is taken: batches of
        # different sites (and of one site) verify in parallel in as many workers as there are.
        # A record the center holds already (a re-send: its answer timed out) is only compared
        # by hash under the lock, not verified again: a busy center does not pay twice for it.
        held = self.db.value("SELECT size FROM sites WHERE id = %s", (site_id,)) or 0
        checked = [self._check_record(site_id, key, item, verify=not _seq_at_most(item, held)) for item in records]
        alarms: list[tuple[str, dict[str, Any]]] = []
        try:
            return self._accept(site_id, fingerprint(key), cp, batch, checked, alarms)
        finally:
            for kind, detail in alarms:  # kept even though the batch was refused (rolled back)
                self.alarm(site_id, kind, detail)

    def _accept(self, site_id: str, key_print: str, cp: Any, batch: dict[str, Any], checked: list[tuple[int, bytes, str, dict[str, Any], str]],
                alarms: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        with self.db.transaction() as conn:
            # The site's row lock: one site's batches apply one after the other whichever worker
            # took them (two agents of one site, an old image and a new box, never interleave).
            size, head, tree_json, pem, revoked = conn.execute(
                "SELECT size, head, tree, public_key, revoked FROM sites WHERE id = %s FOR UPDATE", (site_id,)).fetchone()
            # The key may have changed while the batch was being verified (a new box enrolled and
            # the old journal retired, or the key revoked): a batch signed by the old key is refused.
            if revoked or pem is None or fingerprint(load_pem_public_key(pem.encode())) != key_print:
                raise CenterError(401, "revoked_key" if revoked else "unknown_key",
                                  "the site's key changed while this batch was checked: send again")
            if cp.size < size:
                return self._resent(conn, site_id, cp, checked, size, head, alarms)
            tree = merkle.CompactRange.from_json(tree_json)
            prev, new = head, []
            for seq, digest, body, obj, sig in checked:
                if seq <= size:  # a re-send: harmless if identical, a fork if not
                    have = conn.execute("SELECT hash FROM records WHERE site = %s AND seq = %s", (site_id, seq)).fetchone()
                    if have and have[0] != digest.hex():
                        self._check_signature(site_id, seq, digest, sig)  # (a fork is alarmed only when signed)
                        alarms.append(("fork", {"seq": seq, "center_hash": have[0], "site_hash": digest.hex()}))
                        raise CenterError(409, "fork", f"record {seq} differs from the one the center holds")
                    continue
                if obj is None:  # not verified (the center held it when the batch came) and no longer held
                    raise CenterError(409, "gap", f"record {seq} is no longer held by the center: send again")
                if seq != size + len(new) + 1:
                    raise CenterError(409, "gap", f"record {seq} does not follow {size + len(new)}")
                if obj.get("prev") != (prev or "0" * 64):
                    raise CenterError(400, "bad_chain", f"record {seq} does not chain to record {seq - 1}")
                payload = obj.get("payload")
                session = payload.get("session") if isinstance(payload, dict) else None
                new.append((seq, digest.hex(), body, sig, str(obj.get("kind", "")), str(obj.get("ts", "")),
                            session if isinstance(session, str) and session else None))
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
            with conn.cursor().copy("COPY records (site, seq, hash, body, sig, received, kind, ts, session) FROM STDIN") as copy:
                for seq, digest_hex, body, sig, kind, ts, session in new:
                    copy.write_row((site_id, seq, digest_hex, body, sig, now, kind, ts, session))
            receipt = self._cosign(str(batch["checkpoint"]), cp.text())
            # The site evidently holds at least what it just sent (its own sync records come
            # after the size it reported at the round's start): not "behind the center".
            conn.execute("UPDATE sites SET size = %s, head = %s, tree = %s, last_seen = %s, "
                         "reported_size = GREATEST(reported_size, %s) WHERE id = %s",
                         (new_size, prev, tree.to_json(), now, new_size, site_id))
            conn.execute("INSERT INTO receipts (site, size, note, issued) VALUES (%s, %s, %s, %s) "
                         "ON CONFLICT (site, size) DO UPDATE SET note = excluded.note, issued = excluded.issued",
                         (site_id, new_size, receipt, now))
        return {"site": site_id, "size": new_size, "head": prev, "accepted": len(new), "receipt": receipt}

    def _resent(self, conn: Any, site_id: str, cp: Any, checked: list[tuple[int, bytes, str, dict[str, Any], str]], size: int,
                head: str, alarms: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """A batch ending below the center's size: a re-send (its answer was lost, or a round
        prepared it before the center moved on). Harmless when its records are the ones held and
        its checkpoint's root is the center's root at that size: answered with the center's
        head, nothing stored. Anything else is a fork of what the center holds."""
        for seq, digest, _, _, sig in checked:
            have = conn.execute("SELECT hash FROM records WHERE site = %s AND seq = %s", (site_id, seq)).fetchone()
            if have is None or seq > cp.size:
                raise CenterError(400, "bad_checkpoint", f"record {seq} is not within the checkpoint's size {cp.size}")
            if have[0] != digest.hex():
                self._check_signature(site_id, seq, digest, sig)
                alarms.append(("fork", {"seq": seq, "center_hash": have[0], "site_hash": digest.hex()}))
                raise CenterError(409, "fork", f"record {seq} differs from the one the center holds")
        if self._root_at(conn, site_id, cp.size) != cp.root:
            alarms.append(("fork", {"checkpoint_size": cp.size, "center_size": size}))
            raise CenterError(409, "fork", f"the site's checkpoint of size {cp.size} is not the tree the center holds")
        receipt = conn.execute("SELECT note FROM receipts WHERE site = %s ORDER BY size DESC LIMIT 1", (site_id,)).fetchone()
        return {"site": site_id, "size": size, "head": head, "accepted": 0, "receipt": receipt[0] if receipt else None}

    def _root_at(self, conn: Any, site_id: str, size: int) -> bytes:
        """The root of the site's tree at ``size``: from the receipt the center gave at that size
        (every accepted batch has one), else recomputed from the records held."""
        row = conn.execute("SELECT note FROM receipts WHERE site = %s AND size = %s", (site_id, size)).fetchone()
        if row:
            return base64.b64decode(row[0].split("\n")[2])
        leaves = [merkle.leaf_hash(bytes.fromhex(h)) for (h,) in conn.execute(
            "SELECT hash FROM records WHERE site = %s AND seq <= %s ORDER BY seq", (site_id, size))]
        return merkle.root(leaves)

    def _check_record(self, site_id: str, key: Ed25519PublicKey, item: Any,
                      verify: bool = True) -> tuple[int, bytes, str, dict[str, Any] | None, str]:
        """(seq, SHA-256, body, parsed body, signature) of a record of the batch, its body checked
        canonical and its signature verified. ``verify=False`` (a record the center holds): only
        its hash is computed, to be compared with the one held; the parsed body is None."""
        try:
            body, seq, sig = str(item["body"]), int(item["seq"]), str(item["sig"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CenterError(400, "bad_record", f"a record needs seq, body, hash, sig ({exc})") from exc
        where = f"record {seq}"
        digest = hashlib.sha256(body.encode()).digest()
        if digest.hex() != item.get("hash"):
            raise CenterError(400, "bad_record", f"{where}: hash does not match the body")
        if not verify:
            return seq, digest, body, None, sig
        try:
            obj = parse_canonical(body)
        except ValueError as exc:  # CanonicalError included
            raise CenterError(400, "bad_record", f"{where}: body is not canonical JSON ({exc})") from exc
        if not isinstance(obj, dict) or obj.get("seq") != seq or obj.get("site") != site_id:
            raise CenterError(400, "bad_record", f"{where}: sequence or site does not match its body")
        self._check_signature(site_id, seq, digest, sig, key)
        return seq, digest, body, obj, sig

    def _check_signature(self, site_id: str, seq: int, digest: bytes, sig: str, key: Ed25519PublicKey | None = None) -> None:
        try:
            (key or self.site_key(site_id)).verify(base64.b64decode(sig), record_message(digest))
        except (InvalidSignature, ValueError) as exc:
            raise CenterError(400, "bad_record", f"record {seq}: signature does not verify") from exc

    def _cosign(self, site_note: str, text: str) -> str:
        """The site's note with the center's signature line added (C2SP signed note: one text,
        several signatures)."""
        center = sign_note(text, CENTER_NAME, self.key)
        return site_note.rstrip("\n") + "\n" + center.split("\n\n", 1)[1].rstrip("\n") + "\n"

    def _alarm(self, conn: Any, site_id: str | None, kind: str, detail: dict[str, Any], *, source: str | None = None) -> None:
        """Raise an alarm, aggregated: the same kind for the same site (or, for a request no key
        vouches for, from the same address) within an hour adds to one row's count and keeps the
        latest detail; details are capped; unauthenticated sources beyond a few dozen rows in ten
        minutes fold into one row, so a flood cannot push real alarms off the page."""
        now = self.clock.now()
        stamp = utc_timestamp(now)
        text = json.dumps(detail, ensure_ascii=False, default=str)
        if len(text) > ALARM_DETAIL_MAX:
            text = json.dumps({"truncated": text[:ALARM_DETAIL_MAX - 40]}, ensure_ascii=False)
        if source is not None:  # (the count below is only true if no other worker adds meanwhile)
            conn.execute("SET LOCAL lock_timeout = '2s'")  # a flood waits 2 s at most, then is dropped (alarm())
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('alarm-untrusted', 0))")
            recent = conn.execute("SELECT COUNT(*) FROM alarms WHERE source IS NOT NULL AND source != '*' AND raised > %s",
                                  (utc_timestamp(now - timedelta(minutes=10)),)).fetchone()[0]
            fresh = conn.execute("SELECT 1 FROM alarms WHERE kind = %s AND source = %s AND last_raised > %s",
                                 (kind, source, utc_timestamp(now - ALARM_WINDOW))).fetchone() is None
            if fresh and recent >= UNTRUSTED_ROWS_PER_10_MIN:
                source = "*"  # many addresses at once: one row for all of them
        # Serialised per (kind, site, source) across every worker: two at once add to one row.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"alarm\x1f{kind}\x1f{site_id}\x1f{source}",))
        row = conn.execute("SELECT id FROM alarms WHERE kind = %s AND site IS NOT DISTINCT FROM %s "
                           "AND source IS NOT DISTINCT FROM %s AND last_raised > %s AND acknowledged IS NULL "
                           "ORDER BY id DESC LIMIT 1", (kind, site_id, source, utc_timestamp(now - ALARM_WINDOW))).fetchone()
        if row:
            conn.execute("UPDATE alarms SET count = count + 1, last_raised = %s, detail = %s WHERE id = %s", (stamp, text, row[0]))
        else:
            conn.execute("INSERT INTO alarms (site, kind, detail, raised, source, count, last_raised) VALUES (%s, %s, %s, %s, %s, 1, %s)",
                         (site_id, kind, text, stamp, source, stamp))

    def alarm(self, site_id: str | None, kind: str, detail: dict[str, Any], *, source: str | None = None) -> None:
        try:
            with self.db.transaction() as conn:
                self._alarm(conn, site_id, kind, detail, source=source)
        except LockNotAvailable:
            # Unauthenticated requests arriving faster than their alarms can be counted: this
            # one is not counted (its row exists and says "many"); nobody waits on a flood.
            pass

    def precheck(self, scope: dict[str, Any], site_id: str) -> tuple[int, str] | None:
        """What the center can tell of a site's request from its headers, before a byte of its
        body is read: the site is enrolled and its key not revoked (an unknown or revoked site is
        alarmed, aggregated, by the address it came from), the Signature-Input names the site's
        key, was created within the last five minutes and carries a nonce not seen before. The
        web layer verifies the signature itself too (`center_api.site_precheck`); the view
        checks the body's digest once the body is in and records the nonce."""
        remote = str((scope.get("client") or ("?",))[0])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        params = dict(re.findall(r';\s*([a-z]+)=("[^"]*"|[0-9]+)', headers.get("signature-input", "")))
        keyid, nonce = params.get("keyid", "").strip('"'), params.get("nonce", "").strip('"')
        created = int(params["created"]) if params.get("created", "").isdigit() else None
        try:
            self.site_key(site_id)
        except CenterError as exc:
            self.alarm(None, exc.code, {"site_tried": site_id[:64], "path": scope["path"][:200]}, source=remote)
            return refusal(exc)
        now = time.time()  # as the view's signature check counts (http_message_signatures uses the wall clock)
        if keyid != site_id or created is None or not nonce:
            return refusal(CenterError(401, "bad_signature", "a request signed by the site's key (keyid, created, nonce)"))
        if not now - SIGNATURE_MAX_AGE.total_seconds() <= created <= now + FUTURE_SKEW_S:
            return refusal(CenterError(401, "bad_signature", "the signature's created time is not within the last 5 minutes"))
        if self.db.one("SELECT 1 FROM nonces WHERE site = %s AND nonce = %s", (site_id, nonce)):
            return refusal(CenterError(401, "replay", "a nonce is required and must be new"))
        return None

    def seen_nonce(self, site_id: str, nonce: str) -> bool:
        """Replay defence: a (site, nonce) pair is accepted once. Nonces older than twice the
        signature window are forgotten (at most once a minute): a request that old is refused
        by its ``created`` time anyway."""
        now = self.clock.now()
        with self.db.transaction() as conn:
            if self._pruned is None or now - self._pruned > timedelta(minutes=1):
                conn.execute("DELETE FROM nonces WHERE seen < %s", (utc_timestamp(now - 2 * SIGNATURE_MAX_AGE),))
                self._pruned = now
            # One statement: two workers given the same request at once cannot both take it.
            taken = conn.execute("INSERT INTO nonces (site, nonce, seen) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                                 (site_id, nonce, utc_timestamp(now))).rowcount
            return taken == 0

    # -- proofs -----------------------------------------------------------------------------

    def prove(self, site_id: str, seq: int) -> dict[str, Any]:
        """An inclusion proof of record ``seq`` in the site's tree at the center's latest
        receipt, checked here before it is handed out."""
        receipt = self.db.one("SELECT size, note FROM receipts WHERE site = %s ORDER BY size DESC LIMIT 1", (site_id,))
        if receipt is None or not 1 <= seq <= receipt[0]:
            raise CenterError(404, "no_record", f"record {seq} is not under a receipt of site {site_id!r}")
        size, note = receipt
        nodes = merkle.TreeNodes()
        for (digest,) in self.db.all("SELECT hash FROM records WHERE site = %s AND seq <= %s ORDER BY seq", (site_id, size)):
            nodes.append(merkle.leaf_hash(bytes.fromhex(digest)))
        proof = nodes.inclusion_proof(seq - 1, size)
        body, digest = self.db.one("SELECT body, hash FROM records WHERE site = %s AND seq = %s", (site_id, seq))
        leaf = merkle.leaf_hash(bytes.fromhex(digest))
        root = nodes.root(size)
        merkle.verify_inclusion(seq - 1, size, leaf, proof, root)
        return {"site": site_id, "seq": seq, "record": json.loads(body), "hash": digest, "size": size,
                "root": base64.b64encode(root).decode(), "proof": [base64.b64encode(p).decode() for p in proof], "receipt": note}


def _seq_at_most(item: Any, size: int) -> bool:
    try:
        return 0 < int(item["seq"]) <= size
    except (KeyError, TypeError, ValueError):
        return False


def create_once(path: Path, make: Any) -> None:
    """A secret file (mode 0600) made whole, once: two processes starting at once keep one."""
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(make())
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # fails if another process made it first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def refusal(exc: CenterError) -> tuple[int, str]:
    return exc.status, json.dumps({"error": exc.code, "message": str(exc)})
