"""The site's signed, hash-chained journal — the venue's evidence.

A record is a JSON object with exactly these members, hashed in canonical form
(`appliance.canonical`):

    {"v": 1, "site": <site id>, "seq": <1, 2, 3, ...>, "ts": <RFC 3339 UTC>,
     "kind": <dotted name>, "payload": {...}, "prev": <hex hash of record seq-1, or 64 zeros>}

* ``hash = SHA-256(canonical bytes)``, stored as lowercase hex;
* ``sig = Ed25519(site key, "site-appliance/journal-record/v1\\n" || hash bytes)``, base64;
  the prefix names the purpose, so no other signature of the site can stand for a record's;
* records are appended inside the caller's `Store.transaction()` together with the state
  change they describe, so both commit (durably) or neither does;
* signed checkpoints (`appliance.signednote`) cover the Merkle tree of record hashes
  (`appliance.merkle`) and are also written to ``<data>/journal-checkpoint``.

docs/journal.md describes the format for an independent verifier.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import merkle
from appliance.canonical import canonical_bytes
from appliance.clock import Clock, utc_timestamp
from appliance.personal import assert_no_id_numbers
from appliance.signednote import Checkpoint, sign_checkpoint
from appliance.signing import RECORD_SIGNING_CONTEXT
from appliance.store import Store

RECORD_VERSION = 1
GENESIS_PREV = "0" * 64
CHECKPOINT_FILE = "journal-checkpoint"
SIGNING_CHUNK = 32
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


# A record's canonical body at most: records carry facts, digests and references, never files
# (an evidence package's verifier reads journal lines of at most 4 MiB; a body escaped into a
# line can double).
MAX_BODY = 1 << 20


class JournalError(ValueError):
    """A record that cannot be appended (bad kind, bad payload, personal data in clear)."""


class JournalDamaged(JournalError):
    """A stored record that cannot be read back (its row altered or corrupted in the database):
    named by its sequence number; `appliance journal verify` tells the rest."""

    def __init__(self, seq: int, why: str) -> None:
        super().__init__(f"journal record {seq} is damaged in the database ({why}): run 'appliance journal verify'")
        self.seq = seq


@dataclass(frozen=True)
class Record:
    seq: int
    ts: str
    kind: str
    payload: dict[str, Any]
    prev: str
    hash: str
    sig: str

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "payload": self.payload,
            "prev": self.prev,
            "hash": self.hash,
            "sig": self.sig,
        }


def record_body(
    site: str, seq: int, ts: str, kind: str, payload: Mapping[str, Any], prev: str, strings: list[str] | None = None
) -> bytes:
    return canonical_bytes(
        {"v": RECORD_VERSION, "site": site, "seq": seq, "ts": ts, "kind": kind, "payload": payload, "prev": prev},
        strings,
    )


def record_signing_message(hash_bytes: bytes) -> bytes:
    return RECORD_SIGNING_CONTEXT + hash_bytes


class Journal:
    def __init__(
        self,
        store: Store,
        site_id: str,
        signing_key: Ed25519PrivateKey,
        *,
        clock: Clock | None = None,
        checkpoint_file: Path | None = None,
    ) -> None:
        self.store = store
        self.site_id = site_id
        self._key = signing_key
        self.clock = clock or Clock()
        self.checkpoint_file = checkpoint_file
        self._tree = merkle.CompactRange()  # leaves loaded lazily, extended incrementally
        self._tree_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.appended = False  # this process appended records (Site.close() covers them)

    # -- appending ---------------------------------------------------------------------------

    @staticmethod
    def head(conn: sqlite3.Connection) -> tuple[int, str]:
        row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS_PREV)

    @staticmethod
    def _check(kind: str, payload: Mapping[str, Any]) -> None:
        if not KIND_PATTERN.match(kind):
            raise JournalError(f"record kind {kind!r} must be dotted lowercase, e.g. 'gate.decision'")
        if not isinstance(payload, Mapping):
            raise JournalError("record payload must be a JSON object")

    def append(self, conn: sqlite3.Connection, kind: str, payload: Mapping[str, Any]) -> Record:
        """Append one record inside the caller's `Store.transaction()`."""
        return self.append_many(conn, [(kind, payload)])[0]

    def append_many(
        self, conn: sqlite3.Connection, items: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> list[Record]:
        """Append records in order inside the caller's `Store.transaction()`.

        Hashes must be computed in order (each names the previous one), but a signature
        depends only on its record's hash. In a large batch, full chunks go to a signing thread
        (the signing call releases the GIL) while this thread hashes on; at the end this thread
        signs every chunk the signing thread has not started, so both cores stay busy."""
        if not conn.in_transaction:
            raise JournalError("journal records are appended inside Store.transaction()")
        self.appended = True
        seq, prev = self.head(conn)
        ts = utc_timestamp(self.clock.now())
        rows: list[list[Any]] = []
        chunks: list[list[bytes]] = [[]]
        futures: list[Future[list[str]]] = []
        for kind, payload in items:
            self._check(kind, payload)
            seq += 1
            strings: list[str] = []
            body = record_body(self.site_id, seq, ts, kind, payload, prev, strings)
            if len(body) > MAX_BODY:
                raise JournalError(f"record {kind}: {len(body)} bytes, more than a record may hold ({MAX_BODY})")
            assert_no_id_numbers(strings, f"record {kind}")
            digest = hashlib.sha256(body).digest()
            rows.append([seq, ts, kind, body.decode("utf-8"), digest.hex(), None, payload, prev])
            chunks[-1].append(digest)
            prev = rows[-1][4]
            if len(chunks[-1]) == SIGNING_CHUNK:
                futures.append(self._signer_pool().submit(self._sign, chunks[-1]))
                chunks.append([])
        signed = {len(chunks) - 1: self._sign(chunks[-1])}
        for i in range(len(futures) - 1, -1, -1):
            if futures[i].cancel():
                signed[i] = self._sign(chunks[i])
        sigs = [sig for i in range(len(chunks)) for sig in (signed[i] if i in signed else futures[i].result())]
        for row, sig in zip(rows, sigs, strict=True):
            row[5] = sig
        insert = "INSERT INTO journal (seq, ts, kind, body, hash, sig) VALUES (?, ?, ?, ?, ?, ?)"
        if len(rows) == 1:
            conn.execute(insert, rows[0][:6])
        else:
            conn.executemany(insert, [r[:6] for r in rows])
        return [Record(r[0], r[1], r[2], dict(r[6]), r[7], r[4], r[5]) for r in rows]

    def _sign(self, digests: list[bytes]) -> list[str]:
        return [base64.b64encode(self._key.sign(record_signing_message(d))).decode() for d in digests]

    def _signer_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-sign")
        return self._pool

    def record(self, kind: str, payload: Mapping[str, Any]) -> Record:
        """Append one record in its own durable transaction (for events with no state change)."""
        with self.store.transaction() as conn:
            return self.append(conn, kind, payload)

    # -- reading -----------------------------------------------------------------------------

    def count(self) -> int:
        return self.head(self.store.reader())[0]

    def current_head(self) -> tuple[int, str]:
        return self.head(self.store.reader())

    def records(self, *, since: int = 0, kind: str | None = None, limit: int | None = None) -> list[Record]:
        sql = "SELECT seq, CAST(body AS BLOB), hash, sig FROM journal WHERE seq > ?"
        args: list[Any] = [since]
        if kind:
            sql += " AND (kind = ? OR kind LIKE ?)"
            args += [kind, kind + ".%"]
        sql += " ORDER BY seq"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        out = []
        for seq, body, hex_hash, sig in self.store.reader().execute(sql, args):
            try:
                b = json.loads(bytes(body).decode("utf-8"))
                record = Record(b["seq"], b["ts"], b["kind"], b["payload"], b["prev"], str(hex_hash), str(sig))
                if not isinstance(record.payload, dict) or record.seq != seq:
                    raise ValueError("payload or seq of the wrong kind")
            except (ValueError, KeyError, TypeError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                raise JournalDamaged(seq, type(exc).__name__) from exc
            out.append(record)
        return out

    def leaf_hashes(self, size: int | None = None) -> list[bytes]:
        """Merkle leaf hashes of records 1..size (all when size is None)."""
        conn = self.store.reader()
        rows = conn.execute(
            "SELECT hash FROM journal WHERE seq <= ? ORDER BY seq", (size if size is not None else 2**62,)
        )
        return [merkle.leaf_hash(bytes.fromhex(r[0])) for r in rows]

    # -- checkpoints -------------------------------------------------------------------------

    def latest_checkpoint(self) -> tuple[int, str] | None:
        row = self.store.reader().execute(
            "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return (row[0], row[1]) if row else None

    def sign(self, context: bytes, digest: bytes) -> bytes:
        """Sign another artefact with the site key, under its own purpose prefix (never the
        record's or the checkpoint's), e.g. an evidence package's manifest."""
        if not context.endswith(b"\n") or context in (RECORD_SIGNING_CONTEXT,):
            raise JournalError("a signing context is a purpose line ending in a newline, not the record's")
        return self._key.sign(context + digest)

    def checkpoint(self) -> tuple[int, str] | None:
        """Sign a checkpoint at the current head if it is not covered yet; return (size, note)."""
        if self.store.in_write():  # its file is published once the write commits: never inside another write
            raise JournalError("a checkpoint is signed in its own write, not inside another")
        with self._tree_lock, self.store.transaction() as conn:
            if self._tree.size == 0:
                self._tree = self._resume_tree(conn)
            rows = conn.execute(
                "SELECT seq, hash FROM journal WHERE seq > ? ORDER BY seq", (self._tree.size,)
            ).fetchall()
            for seq, hex_hash in rows:
                if seq != self._tree.size + 1:
                    raise JournalError(f"journal has a gap before seq {seq}; run 'appliance journal verify'")
                self._tree.append(merkle.leaf_hash(bytes.fromhex(hex_hash)))
            size = self._tree.size
            if size == 0:
                return None
            latest = conn.execute("SELECT MAX(size) FROM checkpoints").fetchone()[0] or 0
            if latest >= size:
                return None
            cp = Checkpoint(origin=self.site_id, size=size, root=self._tree.root())
            note = sign_checkpoint(cp, self.site_id, self._key)
            conn.execute(
                "INSERT INTO checkpoints (size, root, note, created, tree) VALUES (?, ?, ?, ?, ?)",
                (size, cp.root.hex(), note, utc_timestamp(self.clock.now()), self._tree.to_json()),
            )
        if self.checkpoint_file is not None:
            _publish_checkpoint(self.checkpoint_file, size, note)
        return size, note

    @staticmethod
    def _resume_tree(conn: sqlite3.Connection) -> merkle.CompactRange:
        """The compact range stored with the latest checkpoint, when it gives that checkpoint's
        root (else start from record 1: the cache is never trusted over the records)."""
        row = conn.execute("SELECT size, root, tree FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        if row and row[2]:
            try:
                tree = merkle.CompactRange.from_json(row[2])
                if tree.size == row[0] and tree.root().hex() == row[1]:
                    return tree
            except (ValueError, TypeError):
                pass
        return merkle.CompactRange()

    def uncovered(self) -> int:
        """Records appended since the latest checkpoint."""
        latest = self.latest_checkpoint()
        return self.count() - (latest[0] if latest else 0)


def _publish_checkpoint(path: Path, size: int, note: str) -> None:
    """Write the latest checkpoint file. Several processes checkpoint: a lock serialises them,
    each writes its own temporary file, and a smaller checkpoint never replaces a larger one."""
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            current = int(path.read_text(encoding="utf-8").split("\n")[1])
        except (FileNotFoundError, IndexError, ValueError):
            current = 0
        if size > current:
            _write_atomically(path, note.encode("utf-8"))


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
