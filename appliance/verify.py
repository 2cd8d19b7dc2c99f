"""Re-check the whole journal from record 1: keys, types, hashes, chain, signatures, gaps,
checkpoints.

Works from the database file, a public key and (when present) the latest checkpoint file alone
— it needs no private key, so an auditor can run it on a copy. Every column is read as raw
bytes and checked for its storage type and encoding before anything is parsed, so no damage can
stop the check before its verdict. The first problem found, by sequence number, is reported.
docs/journal.md states every rule checked here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance import merkle
from appliance.canonical import CanonicalError, parse_canonical
from appliance.journal import GENESIS_PREV, KIND_PATTERN, RECORD_VERSION, Record, record_signing_message
from appliance.keys import fingerprint, raw_public_key
from appliance.signednote import NoteError, open_checkpoint, parse_note, verifier_key

CHUNK = 4096
EXPECTED_MEMBERS = {"v", "site", "seq", "ts", "kind", "payload", "prev"}
TS_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
HEX64 = re.compile(r"[0-9a-f]{64}")
FIRST_KIND = "site.initialised"
# Which problem wins when two name the same seq: the key first (nothing can be trusted without
# it), then the records, then the witnesses of them.
WHERE_ORDER = {"key": 0, "record": 1, "checkpoint": 2, "checkpoint_file": 3, "truncation": 4}
ROWS = (
    "SELECT seq, CAST(ts AS BLOB), typeof(ts), CAST(kind AS BLOB), typeof(kind), CAST(body AS BLOB), typeof(body), "
    "CAST(hash AS BLOB), typeof(hash), CAST(sig AS BLOB), typeof(sig) FROM journal ORDER BY seq"
)


@dataclass
class Problem:
    seq: int
    error: str
    where: str = "record"  # record | key | checkpoint | checkpoint_file | truncation
    checkpoint: int | None = None  # the checkpoint's size, when the problem is a checkpoint's


@dataclass
class VerifyResult:
    ok: bool
    records: int
    head: str
    checkpoints: int = 0
    problem: Problem | None = None
    site: str = ""
    key_fingerprint: str = ""
    key_pinned: bool = False

    def as_json(self) -> dict[str, Any]:
        trust = {"site": self.site, "key_fingerprint": self.key_fingerprint, "key_pinned": self.key_pinned}
        if self.ok:
            return {"ok": True, "records": self.records, "head": self.head, "checkpoints": self.checkpoints, **trust}
        assert self.problem is not None
        out: dict[str, Any] = {
            "ok": False,
            "seq": self.problem.seq,
            "where": self.problem.where,
            "error": self.problem.error,
            "records_ok": self.records,
        }
        if self.problem.checkpoint is not None:
            out["checkpoint"] = self.problem.checkpoint
        return {**out, **trust}


def text_column(value: bytes | None, storage: str) -> str | None:
    """A TEXT column's value read as bytes (CAST AS BLOB): its string, or None when it is not
    stored as TEXT or is not valid UTF-8."""
    if storage != "text" or value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def canonical_signature(text: str | None) -> bytes | None:
    """A 64-byte Ed25519 signature in its one canonical form: standard base64 with padding,
    88 characters, re-encoding to the very same text (no stray bits in the last character)."""
    if text is None or len(text) != 88:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 and base64.b64encode(raw).decode() == text else None


def _valid_ts(value: Any) -> bool:
    if not isinstance(value, str) or not TS_PATTERN.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return False
    return True


def check_row(site_id: str, key: Ed25519PublicKey, expected_seq: int, prev: str,
              row: tuple[Any, ...]) -> tuple[str | None, bytes, bytes]:
    """Every check of one stored row that needs no signature verification. Returns (problem,
    hash bytes, signature bytes); the problem is None when the row is sound."""
    seq, ts_b, ts_t, kind_b, kind_t, body_b, body_t, hash_b, hash_t, sig_b, sig_t = row
    if seq != expected_seq:
        return f"record {expected_seq} is missing (next present is {seq})", b"", b""
    if body_t != "text":
        return f"record body is stored as {body_t.upper()}, not TEXT", b"", b""
    try:
        body = body_b.decode("utf-8")
    except UnicodeDecodeError:
        return "record body is not valid UTF-8", b"", b""
    hex_hash = text_column(hash_b, hash_t)
    if hex_hash is None or not HEX64.fullmatch(hex_hash):
        return "hash column is not 64 lowercase hexadecimal characters", b"", b""
    digest = hashlib.sha256(body_b).digest()
    if digest.hex() != hex_hash:
        return "hash does not match the record body (record altered)", b"", b""
    try:
        obj = parse_canonical(body)
    except CanonicalError as exc:
        return f"record body is not canonical JSON: {exc}", b"", b""
    except ValueError:
        return "record body is not JSON", b"", b""
    if not isinstance(obj, dict) or set(obj) != EXPECTED_MEMBERS:
        return "record body does not have exactly the members v, site, seq, ts, kind, payload, prev", b"", b""
    error = _check_members(site_id, seq, prev, obj)
    if error:
        return error, b"", b""
    if text_column(ts_b, ts_t) != obj["ts"] or text_column(kind_b, kind_t) != obj["kind"]:
        return "stored kind/ts columns differ from the signed body", b"", b""
    sig = canonical_signature(text_column(sig_b, sig_t))
    if sig is None:
        return "sig is not an Ed25519 signature in canonical base64 (88 characters, padded)", b"", b""
    if seq == 1:
        error = _check_first(site_id, key, obj)
        if error:
            return error, b"", b""
    return None, digest, sig


def _check_members(site_id: str, seq: int, prev: str, obj: dict[str, Any]) -> str | None:
    """JSON types exactly as docs/journal.md states them (an integer is never a boolean)."""
    if type(obj["v"]) is not int or obj["v"] != RECORD_VERSION:
        return f"v must be the integer {RECORD_VERSION}"
    if not isinstance(obj["site"], str) or obj["site"] != site_id:
        return f"record belongs to site {obj['site']!r}, not {site_id!r}"
    if type(obj["seq"]) is not int:
        return "seq must be an integer"
    if obj["seq"] != seq:
        return f"record body says seq {obj['seq']} but is stored at {seq} (rows moved)"
    if not _valid_ts(obj["ts"]):
        return "ts must be an RFC 3339 UTC time with microseconds, e.g. 2026-11-22T08:30:00.000000Z"
    if not isinstance(obj["kind"], str) or not KIND_PATTERN.fullmatch(obj["kind"]):
        return "kind must be a dotted lowercase name"
    if not isinstance(obj["payload"], dict):
        return "payload must be a JSON object"
    if not isinstance(obj["prev"], str) or not HEX64.fullmatch(obj["prev"]):
        return "prev must be 64 lowercase hexadecimal characters"
    if obj["prev"] != prev:
        return "prev does not match the hash of the previous record (chain broken)"
    return None


def _check_first(site_id: str, key: Ed25519PublicKey, obj: dict[str, Any]) -> str | None:
    """Record 1 names the journal's key; it must be the key every signature is checked with."""
    payload = obj["payload"]
    if obj["kind"] != FIRST_KIND:
        return f"record 1 must be {FIRST_KIND}"
    if payload.get("public_key") != raw_public_key(key).hex():
        return "record 1 names another key than the one the journal is verified with"
    if payload.get("site_id") != site_id or payload.get("verifier_key") != verifier_key(site_id, key):
        return "record 1 names another site or verifier key"
    return None


def _check_signatures(public_key: Ed25519PublicKey, items: list[tuple[int, bytes, bytes]]) -> int | None:
    """Return the first seq whose signature fails, or None."""
    for seq, digest, sig in items:
        try:
            public_key.verify(sig, record_signing_message(digest))
        except InvalidSignature:
            return seq
    return None


def open_site_checkpoint(note: str, site_id: str, key: Ed25519PublicKey) -> Any:
    """A site checkpoint, strictly: signed by the site key, no extension lines, exactly one
    signature line, and byte for byte the one canonical encoding of what it says."""
    cp = open_checkpoint(note, site_id, key)
    signatures = parse_note(note).signatures
    if cp.extensions:
        raise NoteError("a site checkpoint has no extension lines")
    if len(signatures) != 1:
        raise NoteError("a site checkpoint carries exactly one signature line, the site's")
    name, kid, sig = signatures[0]
    canonical = f"{cp.text()}\n\u2014 {name} {base64.b64encode(kid + sig).decode()}\n"
    if note != canonical:
        raise NoteError("checkpoint is not in canonical form (base64, decimal size, newlines)")
    return cp


def _key_problems(conn: sqlite3.Connection, site_id: str, key: Ed25519PublicKey, key_file: Ed25519PublicKey | None,
                  pinned_fingerprint: str | None) -> list[Problem]:
    """The three copies of the site key (keys/site.pub, meta.public_key, record 1) must agree
    with the key verified against; a pinned fingerprint must be that key's."""
    raw = raw_public_key(key).hex()
    out = []
    if pinned_fingerprint is not None and fingerprint(key) != pinned_fingerprint:
        out.append(Problem(1, f"the journal's key has fingerprint {fingerprint(key)}, not the pinned {pinned_fingerprint}", "key"))
    if key_file is not None and raw_public_key(key_file) != raw_public_key(key):
        out.append(Problem(1, "keys/site.pub is not the pinned key", "key"))
    meta = dict(conn.execute("SELECT key, CAST(value AS BLOB) FROM meta WHERE key IN ('public_key', 'site_id')").fetchall())
    if meta.get("public_key") != raw.encode():
        out.append(Problem(1, "meta.public_key is not the key the journal is verified with", "key"))
    if meta.get("site_id") != site_id.encode():
        out.append(Problem(1, f"meta.site_id is not {site_id!r}", "key"))
    return out


def _checkpoint_rows(conn: sqlite3.Connection, site_id: str, key: Ed25519PublicKey,
                     problems: list[Problem]) -> dict[int, tuple[str, str]]:
    """Checkpoints of the table that verify: size → (root hex, note). Others become problems."""
    checkpoints: dict[int, tuple[str, str]] = {}
    for size, root_b, root_t, note_b, note_t in conn.execute(
        "SELECT size, CAST(root AS BLOB), typeof(root), CAST(note AS BLOB), typeof(note) FROM checkpoints ORDER BY size"
    ):
        where = f"checkpoint at size {size}"
        note = text_column(note_b, note_t)
        if note is None:
            problems.append(Problem(max(size, 1), f"{where}: note is not UTF-8 TEXT", "checkpoint", size))
            continue
        try:
            cp = open_site_checkpoint(note, site_id, key)
        except NoteError as exc:
            problems.append(Problem(max(size, 1), f"{where}: {exc}", "checkpoint", size))
            continue
        if cp.size != size or text_column(root_b, root_t) != cp.root.hex():
            problems.append(Problem(max(size, 1), f"{where}: stored size/root differ from the signed note", "checkpoint", size))
            continue
        checkpoints[size] = (cp.root.hex(), note)
    return checkpoints


def _checkpoint_file(latest_note: bytes, site_id: str, key: Ed25519PublicKey,
                     checkpoints: dict[int, tuple[str, str]], problems: list[Problem]) -> int | None:
    """The checkpoint file must verify and be byte for byte the table's checkpoint of its size.
    Returns its size when it does."""
    try:
        cp = open_site_checkpoint(latest_note.decode("utf-8"), site_id, key)
    except (UnicodeDecodeError, NoteError) as exc:
        problems.append(Problem(1, f"the checkpoint file is not a checkpoint signed by the site: {exc}", "checkpoint_file"))
        return None
    if cp.size not in checkpoints:
        problems.append(Problem(max(cp.size, 1), f"the checkpoint file (size {cp.size}) is missing from the checkpoints table",
                                "checkpoint_file", cp.size))
    elif checkpoints[cp.size][1].encode() != latest_note:
        problems.append(Problem(max(cp.size, 1), f"the checkpoint file (size {cp.size}) differs from the table's",
                                "checkpoint_file", cp.size))
    return cp.size


def verify_journal(
    conn: sqlite3.Connection,
    site_id: str,
    public_key: Ed25519PublicKey,
    *,
    latest_note: bytes | str | None = None,
    threads: int = 2,
    key_file: Ed25519PublicKey | None = None,
    pinned_fingerprint: str | None = None,
    pinned: bool = False,
) -> VerifyResult:
    """Verify with ``public_key``: the pinned key, or the one in keys/site.pub. ``key_file`` is
    keys/site.pub when another key is pinned (it must agree); ``pinned_fingerprint`` a
    fingerprint written down elsewhere (it must be the key's)."""
    fp = fingerprint(public_key)
    problems: list[Problem] = []
    count, prev = 0, GENESIS_PREV
    checkpoints: dict[int, tuple[str, str]] = {}
    try:
        problems += _key_problems(conn, site_id, public_key, key_file, pinned_fingerprint)
        checkpoints = _checkpoint_rows(conn, site_id, public_key, problems)
        file_size = None
        if latest_note is not None:
            raw_note = latest_note.encode() if isinstance(latest_note, str) else latest_note
            file_size = _checkpoint_file(raw_note, site_id, public_key, checkpoints, problems)
        count, prev = _check_records(conn, site_id, public_key, checkpoints, problems, threads)
        beyond = [s for s in [*checkpoints, file_size or 0] if s > count]
        if beyond:
            problems.append(Problem(count + 1, f"a signed checkpoint covers {max(beyond)} records but only {count} "
                                    "are present (journal truncated)", "truncation", max(beyond)))
    except sqlite3.DatabaseError as exc:  # a damaged file: pages that cannot be read at all
        problems.append(Problem(count + 1, f"the database cannot be read from record {count + 1} on: {exc}"))
    result = VerifyResult(True, count, prev if count else GENESIS_PREV, len(checkpoints), None, site_id, fp,
                          pinned or pinned_fingerprint is not None)
    if problems:
        worst = min(problems, key=lambda p: (p.seq, WHERE_ORDER[p.where]))
        result.ok, result.problem, result.records = False, worst, min(count, worst.seq - 1)
    return result


def _check_records(conn: sqlite3.Connection, site_id: str, public_key: Ed25519PublicKey,
                   checkpoints: dict[int, tuple[str, str]], problems: list[Problem], threads: int) -> tuple[int, str]:
    """Walk the records in seq order; returns (records that passed, hash of the last of them)."""
    tree = merkle.CompactRange()
    expected, prev = 1, GENESIS_PREV
    first_bad: Problem | None = None
    query = conn.execute(ROWS)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        while first_bad is None:
            try:
                rows = query.fetchmany(CHUNK)
            except sqlite3.DatabaseError as exc:  # pages that cannot be read at all
                first_bad = Problem(expected, f"the database cannot be read from record {expected} on: {exc}")
                break
            if not rows:
                break
            to_sign: list[tuple[int, bytes, bytes]] = []
            for row in rows:
                error, digest, sig = check_row(site_id, public_key, expected, prev, row)
                if error:
                    first_bad = Problem(expected, error)
                    break
                to_sign.append((row[0], digest, sig))
                tree.append(merkle.leaf_hash(digest))
                if tree.size in checkpoints and checkpoints[tree.size][0] != tree.root().hex():
                    first_bad = Problem(tree.size, f"checkpoint at size {tree.size} does not match the records",
                                        "checkpoint", tree.size)
                    break
                prev, expected = digest.hex(), expected + 1
            step = max(1, len(to_sign) // max(1, threads))
            parts = [to_sign[i : i + step] for i in range(0, len(to_sign), step)]
            bad_sigs = [s for s in pool.map(lambda p: _check_signatures(public_key, p), parts) if s]
            if bad_sigs and (first_bad is None or min(bad_sigs) <= first_bad.seq):
                first_bad = Problem(min(bad_sigs), "signature does not verify with the site key")
    if expected == 1 and first_bad is None:
        first_bad = Problem(1, "record 1 is missing (the journal is empty)")
    if first_bad is not None:
        problems.append(first_bad)
        # Records before the first bad one passed; the chain head is the last of them.
        good = first_bad.seq - 1
        if good < expected - 1:
            return good, _hash_at(conn, good)
    return expected - 1, prev


def _hash_at(conn: sqlite3.Connection, seq: int) -> str:
    if seq < 1:
        return GENESIS_PREV
    row = conn.execute("SELECT CAST(hash AS BLOB) FROM journal WHERE seq = ?", (seq,)).fetchone()
    return row[0].decode("ascii", "replace") if row else GENESIS_PREV


def read_records(conn: sqlite3.Connection, site_id: str, key: Ed25519PublicKey, *, since: int = 0,
                 kind: str | None = None, limit: int | None = None) -> Iterator[Record | dict[str, Any]]:
    """Records after ``since``, each checked as `check_row` checks it (storage, encoding, hash,
    members, chain; not its signature) before it is yielded. At the first damaged one a verdict
    (the same JSON shape as `journal verify`'s) is yielded instead and the walk ends."""
    prev = _hash_at(conn, since) if since else GENESIS_PREV
    expected, shown = since + 1, 0
    query = conn.execute(ROWS.replace("ORDER BY seq", "WHERE seq > ? ORDER BY seq"), (since,))
    while limit is None or shown < limit:
        try:
            row = query.fetchone()
        except sqlite3.DatabaseError as exc:
            yield _damage(expected, since, f"the database cannot be read from record {expected} on: {exc}")
            return
        if row is None:
            return
        error, digest, _ = check_row(site_id, key, expected, prev, row)
        if error:
            yield _damage(expected, since, error)
            return
        obj = json.loads(row[5])
        if kind is None or obj["kind"] == kind or obj["kind"].startswith(kind + "."):
            yield Record(obj["seq"], obj["ts"], obj["kind"], obj["payload"], obj["prev"], digest.hex(),
                         row[9].decode("ascii"))
            shown += 1
        prev, expected = digest.hex(), expected + 1


def _damage(seq: int, since: int, error: str) -> dict[str, Any]:
    return {"ok": False, "seq": seq, "where": "record", "error": error, "records_ok": seq - 1 - since}
