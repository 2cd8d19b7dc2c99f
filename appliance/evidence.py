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

``appliance evidence verify FILE.zip [--key FILE | --fingerprint HEX]`` checks all of it and
names every problem: the file, and for footage the byte range of each changed MiB (the chunk
digests are bound to the signed record by ``chunks_sha256``). It always reports the fingerprint
of the key the package is signed with; with ``--key``/``--fingerprint`` that key must be the one
held elsewhere (the fingerprint written down at the venue, or the center's pinned copy), or the
package does not verify. Sizes are bounded before anything is unpacked. ``docs/evidence.md``
shows the same checks with standard tools.
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
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from appliance import merkle
from appliance.canonical import canonical_bytes
from appliance.signing import RECORD_SIGNING_CONTEXT
from appliance.personal import contains_personal_number
from appliance.evidence_format import (
    CENTER_MANIFEST_CONTEXT,
    CENTER_PUB_LIMIT,
    CHUNK,
    FORMAT,
    LIMITS,
    MANIFEST_CONTEXT,
    PARTS,
    chunks_root,
)
from appliance.segments import recordings_dir
from appliance.signednote import NoteError, open_checkpoint
from appliance.site import Site



class EvidenceError(ValueError):
    pass


def session_records(site: Site, session: str) -> list[tuple[int, str, str, str]]:
    """(seq, body, hash, sig) of every record about the session: its payload names it as
    ``session`` or among ``sessions`` (segments)."""
    out = []
    for seq, body, hex_hash, sig in site.store.reader().execute(
            "SELECT seq, body, hash, sig FROM journal WHERE body LIKE ? ORDER BY seq", (f'%"{session}"%',)):
        payload = json.loads(body)["payload"]
        listed = payload.get("sessions")  # a segment's sessions (a plan's "sessions" is a count)
        if payload.get("session") == session or (isinstance(listed, list) and session in listed):
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
    segments = site.store.reader().execute(
        """SELECT s.camera, s.path, s.size, s.sha256, s.chunks, s.seq FROM segments s
           JOIN segment_sessions l ON l.segment = s.id WHERE l.session = ? AND s.deleted IS NULL ORDER BY s.start, s.camera""",
        (session,)).fetchall()
    # The session's own records, and the sealing record of every segment linked to it (a segment
    # linked after it was sealed does not name the session in its own record).
    records = {r[0]: r for r in session_records(site, session) if r[0] <= size}
    for seq in {s[5] for s in segments} - set(records):
        row = site.store.reader().execute("SELECT seq, body, hash, sig FROM journal WHERE seq = ?", (seq,)).fetchone()
        if row is not None and row[0] <= size:
            records[seq] = tuple(row)
    records = [records[k] for k in sorted(records)]
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
    journal_lines = "".join(json.dumps({"seq": seq, "body": body, "hash": h, "sig": sig}, ensure_ascii=False) + "\n"
                            for seq, body, h, sig in records).encode()
    proofs_bytes = json.dumps(proofs, indent=1, sort_keys=True).encode()
    for name, data in (("manifest.json", manifest_bytes), ("journal.jsonl", journal_lines), ("proofs.json", proofs_bytes)):
        if len(data) > LIMITS[name]:  # a package the verifier would refuse unread: not made
            raise EvidenceError(f"session {session}: {name} would be {len(data)} bytes, more than a package may hold "
                                f"({LIMITS[name]}; {len(records)} records)")
    tmp = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", manifest_bytes)
        z.writestr("manifest.sig", base64.b64encode(signature).decode() + "\n")
        z.writestr("site.pub", public_pem)
        z.writestr("checkpoint.note", note)
        z.writestr("journal.jsonl", journal_lines)
        z.writestr("proofs.json", proofs_bytes)
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
    key_fingerprint: str = ""
    key_pinned: bool = False
    center_fingerprint: str = ""  # a package the center exported: the key that signed its manifest

    not_listed: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)

    def problem(self, text: str, code: str, **params: Any) -> None:
        """Every problem counts; the first `MAX_PROBLEMS` are named (a hostile package of a
        million bad lines must not become a million messages in memory). ``text`` is the
        English sentence; ``code`` and ``params`` let a screen word it (``details``)."""
        self.ok = False
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
            self.details.append({"code": code, **params})
        else:
            self.not_listed += 1

    @property
    def full(self) -> bool:
        """One place left: for saying where the check stopped."""
        return len(self.problems) >= MAX_PROBLEMS - 1

    def as_json(self) -> dict[str, Any]:
        problems = self.problems + ([f"… and {self.not_listed} more problems, not listed"] if self.not_listed else [])
        details = self.details + ([{"code": "more_problems", "n": self.not_listed}] if self.not_listed else [])
        return {"ok": self.ok, "records": self.records, "segments": self.segments, "key_fingerprint": self.key_fingerprint,
                "key_pinned": self.key_pinned, **({"exported_by_center": self.center_fingerprint} if self.center_fingerprint else {}),
                "problems": problems, "details": details}


# What a package's parts may decompress to: bounded before a byte is inflated (a ZIP's own
# sizes are checked against these, and reading stops at the declared size, so a zip bomb or a
# lying header costs nothing). Footage is read in 1 MiB blocks, never whole; the journal a line
# at a time, each line at most LINE_LIMIT (a record is a few KiB; the limit leaves room for
# the largest payload a site writes). The parsed JSON parts are what is held in memory, so
# their limits stay well under what a review-room box can spare.
# (LIMITS: appliance/evidence_format.py.)
LINE_LIMIT = 4 << 20
MAX_PROBLEMS = 1000  # named in a report; the rest counted. Reading journal.jsonl stops there too.
SEALING_KIND = "recording.segment"  # the only records whose payloads the check keeps (for the footage)
SEGMENT_LIMIT = 64 << 30
MAX_ENTRIES = 1_000_000


def verify(path: Path, *, key: Ed25519PublicKey | None = None, fingerprint_hex: str | None = None) -> Report:
    """Check a package; every problem is named in the report. ``key`` (a key held elsewhere, e.g.
    from the center) is what the package must be signed with; ``fingerprint_hex`` the key's
    fingerprint written down at the venue. A file that is not a ZIP at all is unusable input
    (`EvidenceError`)."""
    from appliance.keys import fingerprint

    report = Report(key_pinned=key is not None or fingerprint_hex is not None)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise EvidenceError(f"{path.name}: not a readable ZIP ({exc})") from exc
    with z:
        infos = {i.filename: i for i in z.infolist()}
        if len(infos) != len(z.infolist()):
            report.problem("two entries of the same name: which one is meant cannot be told", "duplicate_entries")
            return report
        if len(infos) > MAX_ENTRIES:
            report.problem(f"{len(infos)} entries: more than any package holds", "too_many_entries", n=len(infos))
            return report
        missing = set(PARTS) - set(infos)
        if missing:
            report.problem(f"missing {', '.join(sorted(missing))}", "parts_missing", parts=", ".join(sorted(missing)))
            return report
        for name, limit in LIMITS.items():
            if infos[name].file_size > limit:
                report.problem(f"{name}: {infos[name].file_size} bytes when unpacked, more than {limit}: not read", "part_too_large", part=name,
                               size=infos[name].file_size, limit=limit)
                return report
        try:
            manifest_bytes = z.read("manifest.json")
            manifest = json.loads(manifest_bytes)
            packaged = load_pem_public_key(z.read("site.pub"))
            if not isinstance(manifest, dict) or not isinstance(packaged, Ed25519PublicKey):
                raise ValueError("manifest.json is not an object, or site.pub not an Ed25519 key")
        except (ValueError, zipfile.BadZipFile, UnicodeDecodeError, RecursionError) as exc:
            report.problem(f"site.pub or manifest.json unreadable: {_why(exc)}", "manifest_unreadable")
            return report
        report.key_fingerprint = fingerprint(packaged)
        if key is not None and fingerprint(key) != report.key_fingerprint:
            report.problem(f"site.pub is not the pinned key: the package names key {report.key_fingerprint}, "
                           f"the pinned key is {fingerprint(key)}", "not_pinned_key", key=report.key_fingerprint,
                           pinned=fingerprint(key))
        if fingerprint_hex is not None and fingerprint_hex != report.key_fingerprint:
            report.problem(f"the package is signed by key {report.key_fingerprint}, not the pinned {fingerprint_hex}", "not_pinned_key",
                           key=report.key_fingerprint, pinned=fingerprint_hex)
        check_key = key or packaged
        if "exported_by" in manifest:  # exported by the provincial center: it signed the manifest
            _center_manifest(z, infos, manifest, manifest_bytes, report)
        else:
            try:
                check_key.verify(base64.b64decode(z.read("manifest.sig").strip(), validate=True),
                                 MANIFEST_CONTEXT + hashlib.sha256(manifest_bytes).digest())
            except (InvalidSignature, ValueError, zipfile.BadZipFile):
                report.problem("manifest.json: the site's signature does not match (manifest altered, or another key)",
                               "manifest_signature")
        site_id = str(manifest.get("site", ""))
        cp = _checkpoint(z, site_id, check_key, report)
        try:
            proofs = json.loads(z.read("proofs.json"))
            if not isinstance(proofs, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, RecursionError) as exc:
            report.problem(f"proofs.json: unreadable ({_why(exc)})", "part_unreadable", part="proofs.json")
            proofs = {}
        verified = _check_journal(z, site_id, check_key, cp, proofs, report)
        report.records = len(verified)
        listed_records = manifest.get("records", [])
        if not isinstance(listed_records, list):
            report.problem("manifest.json: records is not a list", "manifest_malformed")
            listed_records = []
        if not all(type(r) is int for r in listed_records):
            report.problem("manifest.json: records holds something other than sequence numbers", "manifest_malformed")
            listed_records = [r for r in listed_records if type(r) is int]
        absent = set(listed_records) - set(verified)
        if absent:
            report.problem(f"journal.jsonl: records {sorted(absent)[:20]} listed in the manifest are missing or invalid", "records_missing",
                           records=", ".join(map(str, sorted(absent)[:20])))
        extra = set(verified) - set(listed_records)
        if extra:
            report.problem(f"journal.jsonl: records {sorted(extra)[:20]} are not listed in the manifest", "records_unlisted",
                           records=", ".join(map(str, sorted(extra)[:20])))
        size = manifest.get("checkpoint_size")
        if cp is not None and size != cp.size:
            report.problem(f"manifest.json: checkpoint_size {size!r} is not the checkpoint's {cp.size}", "manifest_malformed")
        listed = set()
        segments = manifest.get("segments", [])
        for seg in segments if isinstance(segments, list) else []:
            if not isinstance(seg, dict) or not isinstance(seg.get("file"), str):
                report.problem("manifest.json: a segment without its file", "manifest_malformed")
                continue
            listed.add(seg["file"])
            _check_segment(z, infos, seg, verified.get(seg.get("seq")) if type(seg.get("seq")) is int else None, report)
        for name in sorted(set(infos) - listed - set(PARTS) - ({"center.pub"} if "exported_by" in manifest else set())):
            if not name.endswith("/"):
                report.problem(f"{name}: not in the manifest", "extra_file", file=name)
    return report


def _center_manifest(z: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], manifest: dict[str, Any],
                     manifest_bytes: bytes, report: Report) -> None:
    """A package the center exported from what it received: its manifest is signed by the
    center's key (``center.pub``, over CENTER_MANIFEST_CONTEXT); the records, the checkpoint and
    the footage are still checked against the site's own key. Reports the center's key."""
    from appliance.keys import fingerprint

    exported = manifest.get("exported_by")
    if not isinstance(exported, dict) or "center.pub" not in infos or infos["center.pub"].file_size > CENTER_PUB_LIMIT:
        report.problem("manifest.json: exported_by without the center's key (center.pub)", "manifest_malformed")
        return
    try:
        center_key = load_pem_public_key(z.read("center.pub"))
        if not isinstance(center_key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        center_key.verify(base64.b64decode(z.read("manifest.sig").strip(), validate=True),
                          CENTER_MANIFEST_CONTEXT + hashlib.sha256(manifest_bytes).digest())
    except (InvalidSignature, ValueError, zipfile.BadZipFile):
        report.problem("manifest.json: the center's signature does not match (manifest altered, or another key)",
                       "manifest_signature")
        return
    report.center_fingerprint = fingerprint(center_key)


def _why(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def _checkpoint(z: zipfile.ZipFile, site_id: str, key: Ed25519PublicKey, report: Report) -> Any:
    """The package's checkpoint; when its signature fails, still parsed (so every record can be
    checked against it and named), with the failure reported."""
    from appliance.signednote import parse_checkpoint, parse_note

    try:
        text = z.read("checkpoint.note").decode()
    except (UnicodeDecodeError, zipfile.BadZipFile) as exc:
        report.problem(f"checkpoint.note: unreadable ({exc})", "part_unreadable", part="checkpoint.note")
        return None
    try:
        return open_checkpoint(text, site_id, key)
    except NoteError as exc:
        report.problem(f"checkpoint.note: {exc}", "checkpoint_invalid")
    try:
        return parse_checkpoint(parse_note(text).text)
    except NoteError:
        return None


def _check_journal(z: zipfile.ZipFile, site_id: str, key: Ed25519PublicKey, cp: Any, proofs: dict[str, Any],
                   report: Report) -> dict[int, dict[str, Any] | None]:
    """seq → the payload of each record that verifies, kept only for sealing records (None for
    the others): what the footage check needs, not the whole journal in memory."""
    verified: dict[int, dict[str, Any] | None] = {}
    try:
        with z.open("journal.jsonl") as f:
            n = 0
            while raw := f.readline(LINE_LIMIT + 1):
                n += 1
                if len(raw) > LINE_LIMIT and not raw.endswith(b"\n"):
                    report.problem(f"journal.jsonl line {n}: longer than {LINE_LIMIT} bytes: the rest of the file not read", "line_too_long",
                                   line=n)
                    break
                if report.full:
                    report.problem(f"journal.jsonl: more than {MAX_PROBLEMS} problems: the rest of the file (from line {n}) not read",
                                   "too_many_problems", line=n)
                    break
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    report.problem(f"journal.jsonl line {n}: not UTF-8", "line_unreadable", line=n)
                    continue
                checked = _check_record(line, n, site_id, key, cp, proofs, report)
                if checked is not None:
                    verified[checked[0]] = checked[1]
    except (zipfile.BadZipFile, OSError) as exc:
        report.problem(f"journal.jsonl: damaged ({exc})", "part_unreadable", part="journal.jsonl")
    return verified


def _check_record(line: str, n: int, site_id: str, key: Ed25519PublicKey, cp: Any, proofs: dict[str, list[str]],
                  report: Report) -> tuple[int, dict[str, Any] | None] | None:
    where = f"journal.jsonl line {n}"
    try:
        item = json.loads(line)
        body = item["body"].encode()
        obj = json.loads(body)
        seq = item["seq"]
        if type(seq) is not int or not isinstance(obj, dict) or not isinstance(obj.get("payload"), dict):
            raise ValueError("seq, body or payload of the wrong type")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        report.problem(f"{where}: unreadable ({_why(exc)})", "line_unreadable", line=n)
        return None
    where = f"journal.jsonl record {seq}"
    if obj.get("seq") != seq or obj.get("site") != site_id:
        report.problem(f"{where}: sequence or site does not match its body", "record_altered", seq=seq)
        return None
    try:
        canonical = canonical_bytes(obj)
    except (ValueError, TypeError, RecursionError) as exc:  # CanonicalError: a float, an integer beyond 2^53 …
        report.problem(f"{where}: body is not in canonical form (altered: {_why(exc)})", "record_altered", seq=seq)
        return None
    if canonical != body:
        report.problem(f"{where}: body is not in canonical form (altered)", "record_altered", seq=seq)
        return None
    digest = hashlib.sha256(body).digest()
    if digest.hex() != item.get("hash"):
        report.problem(f"{where}: hash does not match the body (altered)", "record_altered", seq=seq)
        return None
    try:
        key.verify(base64.b64decode(str(item["sig"]), validate=True), RECORD_SIGNING_CONTEXT + digest)
    except (InvalidSignature, ValueError, KeyError):
        report.problem(f"{where}: the site's signature does not match", "record_signature", seq=seq)
        return None
    if cp is None:
        report.problem(f"{where}: no checkpoint to prove it against", "record_unproven", seq=seq)
        return None
    try:
        proof = [base64.b64decode(p) for p in proofs[str(seq)]]
        merkle.verify_inclusion(seq - 1, cp.size, merkle.leaf_hash(digest), proof, cp.root)
    except (KeyError, ValueError, TypeError, merkle.ProofError) as exc:
        report.problem(f"{where}: not proven in the signed checkpoint of size {cp.size} ({exc})", "record_unproven", seq=seq)
        return None
    return seq, (obj["payload"] if obj.get("kind") == SEALING_KIND else None)


def _check_segment(z: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], seg: dict[str, Any],
                   record: dict[str, Any] | None, report: Report) -> None:
    name = seg["file"]
    if report.full:
        report.problem(f"{name}: not checked (too many problems already)", "segment_unchecked", file=name)
        return
    if record is None or not all(isinstance(record.get(k), t) for k, t in
                                 (("sha256", str), ("file", str), ("size", int), ("chunk_size", int))):
        report.problem(f"{name}: its sealing record {seg.get('seq')} is not among the verified records", "segment_unsealed",
                       file=name, seq=seg.get("seq"))
        return
    if f"segments/{record['file']}" != name:
        report.problem(f"{name}: record {seg['seq']} seals another file ({record['file']})", "segment_unsealed", file=name,
                       seq=seg["seq"])
        return
    chunks = seg.get("chunks")
    if not isinstance(chunks, list) or chunks_root([str(c) for c in chunks]) != record.get("chunks_sha256"):
        report.problem(f"{name}: the chunk list does not match record {seg['seq']}", "segment_unsealed", file=name, seq=seg["seq"])
        return
    if name not in infos:
        report.problem(f"{name}: missing", "segment_missing", file=name)
        return
    if infos[name].file_size > min(SEGMENT_LIMIT, int(record["size"]) + CHUNK):
        report.problem(f"{name}: {infos[name].file_size} bytes when unpacked, not the {record['size']} sealed: not read",
                       "segment_size", file=name, size=infos[name].file_size, sealed=record["size"])
        return
    report.segments += 1
    size, whole, length, changed = int(record["chunk_size"]), hashlib.sha256(), 0, []
    try:
        with z.open(name) as f:
            for i, block in enumerate(iter(lambda: f.read(size), b"")):
                whole.update(block)
                length += len(block)
                if i >= len(chunks) or hashlib.sha256(block).hexdigest() != chunks[i]:
                    changed.append(i)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problem(f"{name}: damaged in the package ({exc})", "segment_damaged", file=name)
        return
    if whole.hexdigest() == record["sha256"] and length == record["size"]:
        return
    spans = [[i * size, min(length, (i + 1) * size) - 1] for i in changed[:10]]
    ranges = ", ".join(f"bytes {a}–{b}" for a, b in spans)
    if length != record["size"]:
        ranges = (ranges + "; " if ranges else "") + f"size {length} instead of {record['size']}"
    report.problem(f"{name}: SHA-256 differs from record {seg['seq']} — altered in {ranges or 'an unknown place'}",
                   "segment_altered", file=name, seq=seg["seq"], spans=spans, size=length, sealed=record["size"])
