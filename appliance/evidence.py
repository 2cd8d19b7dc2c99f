"""Evidence packages: a session's footage and journal, provable without this software.

``appliance evidence export --session ID --out FILE.zip`` writes a ZIP with:

* ``manifest.json`` — format, site, session, the checkpoint it proves against, every journal
  record's sequence number, and every segment with its path, size, SHA-256, its record's
  sequence number and its per-MiB chunk digests;
* ``manifest.sig`` — base64 Ed25519 signature by the site key over
  ``"site-appliance/evidence-manifest/v1\\n" || SHA-256(manifest.json)``;
* ``site.pub`` — the site's public key (PEM) and ``checkpoint.note`` — a signed checkpoint
  (C2SP signed note) covering every record in the package;
* ``journal.jsonl`` — the session's records, one per line: ``{"seq", "body", "hash", "sig"}``
  with ``body`` exactly as signed;
* ``proofs.json`` — for each record, its RFC 9162 inclusion proof to the checkpoint;
* ``segments/<camera>/<file>.mp4`` — the footage, byte for byte as sealed.

``appliance evidence verify FILE.zip`` checks all of it and names every problem: the file, and
for footage the byte range of each changed MiB (the chunk digests are bound to the signed record
by ``chunks_sha256``). ``docs/evidence.md`` shows the same checks with standard tools.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from appliance.personal import contains_personal_number
from appliance import merkle
from appliance.canonical import canonical_bytes
from appliance.journal import RECORD_SIGNING_CONTEXT
from appliance.recording import CHUNK, chunks_root, recordings_dir
from appliance.signednote import NoteError, open_checkpoint
from appliance.site import Site

FORMAT = "site-appliance/evidence/v1"
MANIFEST_CONTEXT = b"site-appliance/evidence-manifest/v1\n"


class EvidenceError(ValueError):
    pass


def session_records(site: Site, session: str) -> list[tuple[int, str, str, str]]:
    """(seq, body, hash, sig) of every record about the session: its payload names it as
    ``session`` or among ``sessions`` (segments)."""
    out = []
    for seq, body, hex_hash, sig in site.store.reader().execute(
            "SELECT seq, body, hash, sig FROM journal WHERE body LIKE ? ORDER BY seq", (f'%"{session}"%',)):
        payload = json.loads(body)["payload"]
        if payload.get("session") == session or session in (payload.get("sessions") or []):
            out.append((seq, body, hex_hash, sig))
    return out


def export(site: Site, session: str, out: Path, *, by: str) -> dict[str, Any]:
    row = site.store.reader().execute("SELECT section_code, section_name, room FROM sessions WHERE id = ?", (session,)).fetchone()
    if row is None:
        raise EvidenceError(f"no session {session!r}")
    if contains_personal_number(out.name):
        raise EvidenceError("--out: the file name must not contain an ID number or a bank card number")
    site.journal.record("evidence.exported", {"session": session, "by": by, "file": out.name})
    site.journal.checkpoint()
    size, note = site.journal.latest_checkpoint() or (0, "")
    leaves = site.journal.leaf_hashes(size)
    records = [r for r in session_records(site, session) if r[0] <= size]
    segments = site.store.reader().execute(
        """SELECT s.camera, s.path, s.size, s.sha256, s.chunks, s.seq FROM segments s
           JOIN segment_sessions l ON l.segment = s.id WHERE l.session = ? AND s.deleted IS NULL ORDER BY s.start, s.camera""",
        (session,)).fetchall()
    base = recordings_dir(site)
    manifest = {
        "format": FORMAT, "site": site.config.site.id, "session": session, "section_code": row[0], "section_name": row[1],
        "room": row[2], "checkpoint_size": size, "records": [r[0] for r in records],
        "segments": [{"file": f"segments/{s[1]}", "size": s[2], "sha256": s[3], "seq": s[5], "chunk_size": CHUNK,
                      "chunks": s[4].split()} for s in segments],
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
    signature = site.journal.sign(MANIFEST_CONTEXT, hashlib.sha256(manifest_bytes).digest())
    public_pem = site.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    proofs = {str(seq): [base64.b64encode(h).decode() for h in merkle.inclusion_proof(seq - 1, leaves)] for seq, *_ in records}
    tmp = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", manifest_bytes)
        z.writestr("manifest.sig", base64.b64encode(signature).decode() + "\n")
        z.writestr("site.pub", public_pem)
        z.writestr("checkpoint.note", note)
        z.writestr("journal.jsonl", "".join(json.dumps({"seq": seq, "body": body, "hash": h, "sig": sig}, ensure_ascii=False) + "\n"
                                            for seq, body, h, sig in records))
        z.writestr("proofs.json", json.dumps(proofs, indent=1, sort_keys=True))
        for s in segments:  # already compressed video: stored as is
            z.write(base / s[1], f"segments/{s[1]}", compress_type=zipfile.ZIP_STORED)
    tmp.replace(out)
    return {"session": session, "file": str(out), "records": len(records), "segments": len(segments), "checkpoint_size": size}


@dataclass
class Report:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    records: int = 0
    segments: int = 0

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "segments": self.segments, "problems": self.problems}


def verify(path: Path) -> Report:
    report = Report()
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problem(f"{path.name}: not a readable ZIP ({exc})")
        return report
    with z:
        names = set(z.namelist())
        missing = {"manifest.json", "manifest.sig", "site.pub", "checkpoint.note", "journal.jsonl", "proofs.json"} - names
        if missing:
            report.problem(f"missing {', '.join(sorted(missing))}")
            return report
        manifest_bytes = z.read("manifest.json")
        try:
            key = load_pem_public_key(z.read("site.pub"))
            assert isinstance(key, Ed25519PublicKey)
            manifest = json.loads(manifest_bytes)
        except (ValueError, AssertionError) as exc:
            report.problem(f"site.pub or manifest.json unreadable: {exc}")
            return report
        try:
            key.verify(base64.b64decode(z.read("manifest.sig")), MANIFEST_CONTEXT + hashlib.sha256(manifest_bytes).digest())
        except (InvalidSignature, ValueError):
            report.problem("manifest.json: the site's signature does not match (manifest altered, or another key)")
        site_id = manifest.get("site", "")
        try:
            cp = open_checkpoint(z.read("checkpoint.note").decode(), site_id, key)
        except (NoteError, UnicodeDecodeError) as exc:
            report.problem(f"checkpoint.note: {exc}")
            return report
        proofs = json.loads(z.read("proofs.json"))
        verified: dict[int, dict[str, Any]] = {}
        for n, line in enumerate(z.read("journal.jsonl").decode().splitlines(), 1):
            seq = _check_record(line, n, site_id, key, cp, proofs, report)
            if seq is not None:
                verified[seq[0]] = seq[1]
        report.records = len(verified)
        absent = set(manifest.get("records", [])) - set(verified)
        if absent:
            report.problem(f"journal.jsonl: records {sorted(absent)[:20]} listed in the manifest are missing or invalid")
        listed = set()
        for seg in manifest.get("segments", []):
            listed.add(seg["file"])
            _check_segment(z, seg, verified.get(seg["seq"]), report)
        for name in sorted(names - listed - {"manifest.json", "manifest.sig", "site.pub", "checkpoint.note",
                                              "journal.jsonl", "proofs.json"}):
            if not name.endswith("/"):
                report.problem(f"{name}: not in the manifest")
    return report


def _check_record(line: str, n: int, site_id: str, key: Ed25519PublicKey, cp: Any, proofs: dict[str, list[str]],
                  report: Report) -> tuple[int, dict[str, Any]] | None:
    where = f"journal.jsonl line {n}"
    try:
        item = json.loads(line)
        body = item["body"].encode()
        obj = json.loads(body)
        seq = int(item["seq"])
    except (ValueError, KeyError, TypeError) as exc:
        report.problem(f"{where}: unreadable ({exc})")
        return None
    where = f"journal.jsonl record {seq}"
    if obj.get("seq") != seq or obj.get("site") != site_id:
        report.problem(f"{where}: sequence or site does not match its body")
        return None
    if canonical_bytes(obj) != body:
        report.problem(f"{where}: body is not in canonical form (altered)")
        return None
    digest = hashlib.sha256(body).digest()
    if digest.hex() != item.get("hash"):
        report.problem(f"{where}: hash does not match the body (altered)")
        return None
    try:
        key.verify(base64.b64decode(item["sig"]), RECORD_SIGNING_CONTEXT + digest)
    except (InvalidSignature, ValueError, KeyError):
        report.problem(f"{where}: the site's signature does not match")
        return None
    try:
        proof = [base64.b64decode(p) for p in proofs[str(seq)]]
        merkle.verify_inclusion(seq - 1, cp.size, merkle.leaf_hash(digest), proof, cp.root)
    except (KeyError, ValueError, merkle.ProofError) as exc:
        report.problem(f"{where}: not proven in the signed checkpoint of size {cp.size} ({exc})")
        return None
    return seq, obj["payload"]


def _check_segment(z: zipfile.ZipFile, seg: dict[str, Any], record: dict[str, Any] | None, report: Report) -> None:
    name = seg["file"]
    if record is None or record.get("sha256") is None:
        report.problem(f"{name}: its sealing record {seg.get('seq')} is not among the verified records")
        return
    if f"segments/{record['file']}" != name:
        report.problem(f"{name}: record {seg['seq']} seals another file ({record['file']})")
        return
    if chunks_root(seg["chunks"]) != record.get("chunks_sha256"):
        report.problem(f"{name}: the chunk list does not match record {seg['seq']}")
        return
    try:
        data = z.read(name)
    except KeyError:
        report.problem(f"{name}: missing")
        return
    report.segments += 1
    if hashlib.sha256(data).hexdigest() == record["sha256"] and len(data) == record["size"]:
        return
    size = record["chunk_size"]
    changed = [i for i, expected in enumerate(seg["chunks"])
               if hashlib.sha256(data[i * size:(i + 1) * size]).hexdigest() != expected]
    ranges = ", ".join(f"bytes {i * size}–{min(len(data), (i + 1) * size) - 1}" for i in changed[:10])
    if len(data) != record["size"]:
        ranges = (ranges + "; " if ranges else "") + f"size {len(data)} instead of {record['size']}"
    report.problem(f"{name}: SHA-256 differs from record {seg['seq']} — altered in {ranges or 'an unknown place'}")
