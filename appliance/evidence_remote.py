"""A remote evaluation's evidence package (远程异地评标; docs/evidence.md "A remote session"),
checked offline.

The provincial center exports it (center/evidence.py `export_remote`): one ZIP holding

* ``remote.json`` — format ``site-appliance/remote-evidence/v1``, the session, the main venue,
  and for each venue its site id, name, whether it is the main venue, the fingerprint of its key,
  its package's path (``venues/<site>.zip``), SHA-256 and size;
* ``remote.sig`` — base64 Ed25519 signature by the center over
  ``"provincial-center/remote-evidence-manifest/v1\\n" || SHA-256(remote.json)``, its key in
  ``center.pub``;
* ``venues/<site>.zip`` — each venue's package of the session exactly as the center exports one
  (docs/evidence.md), its records proven by that venue's own key.

`verify` checks the center's signature; each venue's package by its SHA-256 and then as a whole
package pinned to the key fingerprint listed for it (every record signed by that venue, proven
in its signed checkpoint, the footage by its digests); and across the venues: every record one
venue's journal embeds from another (``evaluation.remote_received`` at the main venue,
``evaluation.remote_record`` at a secondary venue) carries that venue's record signature, checked
with the other venue's key, and where the other venue's package covers that sequence number
it holds the same record. It also counts each secondary venue's actions and which the main
venue answered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from appliance.evidence import LINE_LIMIT, EvidenceError, verify
from appliance.evidence_format import LIMITS, MAX_VENUES, REMOTE_FORMAT, REMOTE_LIMITS, REMOTE_MANIFEST_CONTEXT
from appliance.signing import RECORD_SIGNING_CONTEXT

EMBEDDING = ("evaluation.remote_received", "evaluation.remote_record")
VENUE_PACKAGE_LIMIT = 64 << 30


def is_remote(path: Path) -> bool:
    """Whether the ZIP at ``path`` is a remote evaluation's package (it has ``remote.json``)."""
    try:
        with zipfile.ZipFile(path) as z:
            return "remote.json" in z.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise EvidenceError(f"{path.name}: not a readable ZIP ({exc})") from exc


@dataclass
class RemoteReport:
    ok: bool = True
    session: str = ""
    problems: list[str] = field(default_factory=list)
    venues: list[dict[str, Any]] = field(default_factory=list)
    center_fingerprint: str = ""
    embedded: int = 0  # records one venue's journal embeds from another, each checked
    embedded_not_covered: int = 0  # … of which the other venue's package does not reach that far yet
    actions: int = 0  # secondary venues' members' and supervisors' actions in their journals
    answered: int = 0  # … of which the main venue's journal answers

    def problem(self, text: str) -> None:
        self.ok = False
        if len(self.problems) < 1000:
            self.problems.append(text)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "remote": True, "session": self.session, "exported_by_center": self.center_fingerprint,
                "venues": self.venues, "embedded_records_checked": self.embedded,
                "embedded_beyond_origin_package": self.embedded_not_covered, "actions": self.actions,
                "actions_answered": self.answered, "problems": self.problems}


def verify_remote(path: Path, *, center_fingerprint: str | None = None) -> RemoteReport:
    """Check a remote evaluation's package; every problem is named. ``center_fingerprint``: the
    center key's fingerprint held elsewhere, which must be the one that signed ``remote.json``."""
    from appliance.keys import fingerprint

    report = RemoteReport()
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise EvidenceError(f"{path.name}: not a readable ZIP ({exc})") from exc
    with z, tempfile.TemporaryDirectory(prefix="remote-evidence-") as tmp:
        infos = {i.filename: i for i in z.infolist()}
        for name, limit in REMOTE_LIMITS.items():
            if name not in infos:
                report.problem(f"{name}: missing")
                return report
            if infos[name].file_size > limit:
                report.problem(f"{name}: {infos[name].file_size} bytes when unpacked, more than {limit}: not read")
                return report
        try:
            manifest_bytes = z.read("remote.json")
            manifest = json.loads(manifest_bytes)
            center_key = load_pem_public_key(z.read("center.pub"))
            if not isinstance(center_key, Ed25519PublicKey) or not isinstance(manifest, dict):
                raise ValueError("center.pub is not an Ed25519 key, or remote.json not an object")
            center_key.verify(base64.b64decode(z.read("remote.sig").strip(), validate=True),
                              REMOTE_MANIFEST_CONTEXT + hashlib.sha256(manifest_bytes).digest())
        except InvalidSignature:
            report.problem("remote.json: the center's signature does not match (altered, or another key)")
            return report
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, RecursionError) as exc:
            report.problem(f"remote.json, remote.sig or center.pub unreadable: {exc}")
            return report
        report.center_fingerprint = fingerprint(center_key)
        if center_fingerprint is not None and center_fingerprint != report.center_fingerprint:
            report.problem(f"remote.json is signed by the center key {report.center_fingerprint}, not the pinned {center_fingerprint}")
        venues = manifest.get("venues")
        report.session = str(manifest.get("session", ""))
        if manifest.get("format") != REMOTE_FORMAT or not isinstance(venues, list) or not 1 <= len(venues) <= MAX_VENUES \
                or not all(isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("site", "package", "sha256", "key_fingerprint"))
                           for v in venues):
            report.problem(f"remote.json: not a {REMOTE_FORMAT} manifest (format, session, venues with site, package, sha256, "
                           f"key_fingerprint; at most {MAX_VENUES} venues)")
            return report
        journals: dict[str, dict[int, tuple[str, str]]] = {}
        keys: dict[str, Ed25519PublicKey] = {}
        covered: dict[str, int] = {}
        for v in venues:
            journal = _venue(z, infos, v, report, Path(tmp), keys, covered)
            if journal is not None:
                journals[v["site"]] = journal
        listed = {v["package"] for v in venues} | set(REMOTE_LIMITS)
        for name in sorted(set(infos) - listed):
            if not name.endswith("/"):
                report.problem(f"{name}: not in remote.json")
        _across(manifest.get("main"), journals, keys, covered, report)
    return report


def _venue(z: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], v: dict[str, Any], report: RemoteReport, tmp: Path,
           keys: dict[str, Ed25519PublicKey], covered: dict[str, int]) -> dict[int, tuple[str, str]] | None:
    """One venue's package: its SHA-256, then the whole package pinned to the listed key.
    Returns its journal (seq → (kind, body hash, …)) when it verified."""
    name, where = v["package"], f"{v.get('name') or v['site']} ({v['site']})"
    info = infos.get(name)
    if info is None:
        report.problem(f"{name}: the package of {where} is missing")
        return None
    if info.file_size > VENUE_PACKAGE_LIMIT:
        report.problem(f"{name}: {info.file_size} bytes, more than a venue's package may be")
        return None
    inner = tmp / f"venue-{len(report.venues)}.zip"
    digest = hashlib.sha256()
    try:
        with z.open(info) as src, inner.open("wb") as dst:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problem(f"{name}: damaged ({exc})")
        return None
    entry: dict[str, Any] = {"site": v["site"], "name": v.get("name"), "main": bool(v.get("main")), "ok": False}
    report.venues.append(entry)
    if digest.hexdigest() != v["sha256"]:
        report.problem(f"{name}: its SHA-256 is not the one remote.json lists (the package of {where} was altered)")
        return None
    try:
        result = verify(inner, fingerprint_hex=v["key_fingerprint"])
    except EvidenceError as exc:
        report.problem(f"{name}: {exc}")
        return None
    entry.update(ok=result.ok, records=result.records, segments=result.segments, key_fingerprint=result.key_fingerprint)
    for text in result.problems:
        report.problem(f"{where}: {text}")
    if result.center_fingerprint != report.center_fingerprint:
        report.problem(f"{name}: exported by the center key {result.center_fingerprint or '(none)'}, not the one that signed remote.json")
        return None
    if not result.ok:
        return None
    with zipfile.ZipFile(inner) as venue_zip:
        manifest = json.loads(venue_zip.read("manifest.json"))
        if manifest.get("site") != v["site"] or manifest.get("session") != report.session:
            report.problem(f"{name}: the package is of {manifest.get('site')} / {manifest.get('session')}, "
                           f"not of {v['site']} / {report.session}")
            return None
        key = load_pem_public_key(venue_zip.read("site.pub"))
        assert isinstance(key, Ed25519PublicKey)
        keys[v["site"]], covered[v["site"]] = key, int(manifest["checkpoint_size"])
        if venue_zip.getinfo("journal.jsonl").file_size > LIMITS["journal.jsonl"]:
            return None  # verify() said so already
        journal: dict[int, tuple[str, str]] = {}
        with venue_zip.open("journal.jsonl") as f:
            while raw := f.readline(LINE_LIMIT + 1):
                item = json.loads(raw)
                journal[item["seq"]] = (item["body"], item["hash"])
    return journal


def _across(main: Any, journals: dict[str, dict[int, tuple[str, str]]], keys: dict[str, Ed25519PublicKey],
            covered: dict[str, int], report: RemoteReport) -> None:
    """What one venue's journal says of another's, checked against the other's key and package."""
    answered: set[tuple[str, int]] = set()
    for site, journal in journals.items():
        for seq, (body, _) in sorted(journal.items()):
            record = json.loads(body)
            kind, payload = record.get("kind"), record.get("payload") or {}
            if kind == "evaluation.remote_answered" and site == main:
                answered.add((str(payload.get("origin")), payload.get("origin_seq")))
            if kind not in EMBEDDING:
                continue
            origin, embedded = payload.get("origin"), payload.get("record") or {}
            where = f"{site} record {seq} ({kind})"
            if origin not in keys:
                report.problem(f"{where}: embeds a record of {origin}, whose package is not here or did not verify")
                continue
            try:
                text = embedded["body"]
                digest = hashlib.sha256(text.encode()).digest()
                keys[origin].verify(base64.b64decode(embedded["sig"], validate=True), RECORD_SIGNING_CONTEXT + digest)
                inner = json.loads(text)
            except (KeyError, TypeError, ValueError, InvalidSignature) as exc:
                report.problem(f"{where}: the embedded record does not verify with {origin}'s key ({type(exc).__name__})")
                continue
            report.embedded += 1
            if inner.get("site") != origin or inner.get("seq") != payload.get("origin_seq"):
                report.problem(f"{where}: the embedded record is not {origin}'s record {payload.get('origin_seq')}")
            elif inner["seq"] > covered.get(origin, 0):
                report.embedded_not_covered += 1
            elif origin in journals and inner["seq"] not in journals[origin]:
                report.problem(f"{where}: {origin}'s record {inner['seq']} is missing from its own package")
            elif origin in journals and journals[origin][inner["seq"]][1] != digest.hex():
                report.problem(f"{where}: {origin}'s record {inner['seq']} in its own package is not the one embedded here")
    for site, journal in journals.items():
        if site == main:
            continue
        for seq, (body, _) in journal.items():
            if json.loads(body).get("kind") == "evaluation.remote_action":
                report.actions += 1
                report.answered += (site, seq) in answered
