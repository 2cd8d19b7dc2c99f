"""Re-check the whole journal from record 1: hashes, chain, signatures, gaps, checkpoints.

Works from the database file, the site's public key and (when present) the latest checkpoint
file alone — it needs no private key, so an auditor can run it on a copy. The first problem
found, by sequence number, is reported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance import merkle
from appliance.canonical import canonical_bytes
from appliance.journal import GENESIS_PREV, RECORD_VERSION, record_signing_message
from appliance.signednote import NoteError, open_checkpoint

CHUNK = 4096
EXPECTED_MEMBERS = {"v", "site", "seq", "ts", "kind", "payload", "prev"}


@dataclass
class Problem:
    seq: int
    error: str


@dataclass
class VerifyResult:
    ok: bool
    records: int
    head: str
    checkpoints: int = 0
    problem: Problem | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "records": self.records, "head": self.head, "checkpoints": self.checkpoints}
        assert self.problem is not None
        return {
            "ok": False,
            "seq": self.problem.seq,
            "error": self.problem.error,
            "records_ok": self.records,
        }


def _check_signatures(public_key: Ed25519PublicKey, items: list[tuple[int, bytes, str]]) -> int | None:
    """Return the first seq whose signature fails, or None."""
    for seq, digest, sig in items:
        try:
            public_key.verify(base64.b64decode(sig, validate=True), record_signing_message(digest))
        except (InvalidSignature, binascii.Error, ValueError):
            return seq
    return None


def _check_structure(
    site_id: str, expected_seq: int, prev: str, row: tuple[int, str, str, str, str]
) -> tuple[str | None, bytes | None]:
    """Checks of one row that need no signature; returns (problem, hash bytes)."""
    seq, ts, kind, body, hex_hash = row
    if seq != expected_seq:
        return f"record {expected_seq} is missing (next present is {seq})", None
    raw = body.encode("utf-8")
    digest = hashlib.sha256(raw).digest()
    if digest.hex() != hex_hash:
        return "hash does not match the record body (record altered)", None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return "record body is not JSON", None
    if not isinstance(parsed, dict) or set(parsed) != EXPECTED_MEMBERS:
        return "record body does not have exactly the record members", None
    try:
        if canonical_bytes(parsed) != raw:
            return "record body is not in canonical form", None
    except ValueError as exc:
        return f"record body is not canonical: {exc}", None
    if parsed["v"] != RECORD_VERSION:
        return f"unknown record version {parsed['v']!r}", None
    if parsed["site"] != site_id:
        return f"record belongs to site {parsed['site']!r}", None
    if parsed["seq"] != seq:
        return f"record body says seq {parsed['seq']} but is stored at {seq} (rows moved)", None
    if parsed["kind"] != kind or parsed["ts"] != ts:
        return "stored kind/ts columns differ from the signed body", None
    if parsed["prev"] != prev:
        return "prev does not match the hash of the previous record (chain broken)", None
    return None, digest


def verify_journal(
    conn: sqlite3.Connection,
    site_id: str,
    public_key: Ed25519PublicKey,
    *,
    latest_note: str | None = None,
    threads: int = 2,
) -> VerifyResult:
    checkpoints: dict[int, tuple[str, str]] = {}
    problems: list[Problem] = []
    for size, root_hex, note in conn.execute("SELECT size, root, note FROM checkpoints ORDER BY size"):
        try:
            cp = open_checkpoint(note, site_id, public_key)
        except NoteError as exc:
            problems.append(Problem(size, f"checkpoint at size {size}: {exc}"))
            continue
        if cp.size != size or cp.root.hex() != root_hex:
            problems.append(Problem(size, f"checkpoint at size {size}: stored size/root differ from the signed note"))
            continue
        checkpoints[size] = (root_hex, "table")
    if latest_note is not None:
        try:
            cp = open_checkpoint(latest_note, site_id, public_key)
        except NoteError as exc:
            problems.append(Problem(1, f"latest checkpoint file: {exc}"))
        else:
            if cp.size not in checkpoints or checkpoints[cp.size][0] != cp.root.hex():
                problems.append(
                    Problem(cp.size, f"latest checkpoint file (size {cp.size}) is missing from the checkpoints table")
                )
            checkpoints.setdefault(cp.size, (cp.root.hex(), "file"))

    tree = merkle.CompactRange()
    expected, prev = 1, GENESIS_PREV
    first_bad: Problem | None = None
    query = conn.execute("SELECT seq, ts, kind, body, hash, sig FROM journal ORDER BY seq")
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        while first_bad is None:
            rows = query.fetchmany(CHUNK)
            if not rows:
                break
            to_sign: list[tuple[int, bytes, str]] = []
            for row in rows:
                error, digest = _check_structure(site_id, expected, prev, row[:5])
                if error:
                    first_bad = Problem(expected, error)
                    break
                assert digest is not None
                to_sign.append((row[0], digest, row[5]))
                tree.append(merkle.leaf_hash(digest))
                if tree.size in checkpoints and checkpoints[tree.size][0] != tree.root().hex():
                    first_bad = Problem(tree.size, f"checkpoint at size {tree.size} does not match the records")
                    break
                prev, expected = row[4], expected + 1
            step = max(1, len(to_sign) // max(1, threads))
            parts = [to_sign[i : i + step] for i in range(0, len(to_sign), step)]
            bad_sigs = [s for s in pool.map(lambda p: _check_signatures(public_key, p), parts) if s]
            if bad_sigs and (first_bad is None or min(bad_sigs) <= first_bad.seq):
                first_bad = Problem(min(bad_sigs), "signature does not verify with the site key")
    count = expected - 1
    if first_bad is None:
        beyond = [s for s in checkpoints if s > count]
        if beyond:
            first_bad = Problem(
                count + 1,
                f"a signed checkpoint covers {max(beyond)} records but only {count} are present "
                "(journal truncated)",
            )
    if first_bad is not None:
        problems.append(first_bad)
    if problems:
        worst = min(problems, key=lambda p: p.seq)
        return VerifyResult(False, min(count, worst.seq - 1), prev, len(checkpoints), worst)
    return VerifyResult(True, count, prev if count else GENESIS_PREV, len(checkpoints))
