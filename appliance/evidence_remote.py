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

`verify_remote` checks the center's signature and the manifest's shape; each venue's package
by its size and SHA-256 and then as a whole package pinned to the key fingerprint listed for it
(every record signed by that venue, proven in its signed checkpoint, the footage by its
digests); and across the venues: every record one venue's journal embeds from another
(``evaluation.remote_received`` only at the main venue, ``evaluation.remote_record`` only at a
secondary venue) carries that venue's record signature, checked with the other venue's key, and
where the other venue's package covers that sequence number it holds the same record; every
venue the main venue's records name is in the package. It also counts each secondary venue's
actions and which the main venue answered. The checks across venues keep only the record bodies
they read (a few kinds), not whole journals.
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

    details: list[dict[str, Any]] = field(default_factory=list)  # each problem's code and names, for a screen to word

    def problem(self, text: str, code: str = "remote_manifest", **params: Any) -> None:
        """``text`` in English for the command line and auditors; ``code`` and ``params`` for a
        screen (kiosk_ui.words.remote_evidence_problem)."""
        self.ok = False
        if len(self.problems) < 1000:
            self.problems.append(text)
            self.details.append({"code": code, **params})

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "remote": True, "session": self.session, "exported_by_center": self.center_fingerprint,
                "venues": self.venues, "embedded_records_checked": self.embedded,
                "embedded_beyond_origin_package": self.embedded_not_covered, "actions": self.actions,
                "actions_answered": self.answered, "problems": self.problems, "details": self.details}


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
        if len(infos) != len(z.infolist()):
            report.problem("the ZIP holds two entries of the same name: which one is meant cannot be told")
            return report
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
            report.problem(f"remote.json is signed by the center key {report.center_fingerprint}, not the pinned {center_fingerprint}",
                           "remote_center_key")
        venues = manifest.get("venues")
        report.session = str(manifest.get("session", ""))
        if manifest.get("format") != REMOTE_FORMAT or not isinstance(venues, list) or not 1 <= len(venues) <= MAX_VENUES \
                or not all(isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("site", "package", "sha256", "key_fingerprint"))
                           for v in venues):
            report.problem(f"remote.json: not a {REMOTE_FORMAT} manifest (format, session, venues with site, package, sha256, "
                           f"key_fingerprint; at most {MAX_VENUES} venues)")
            return report
        sites = [v["site"] for v in venues]
        if len(set(sites)) != len(sites) or len(sites) < 2 or any(v["package"] != f"venues/{v['site']}.zip" for v in venues) \
                or [v["site"] for v in venues if v.get("main") is True] != [manifest.get("main")] \
                or not all(type(v.get(k)) is int for v in venues for k in ("size", "records", "checkpoint_size")):
            report.problem("remote.json: at least two venues, each once, its package at venues/<site>.zip, with its size, "
                           "records and checkpoint_size; exactly one the main venue, the one main names")
            return report
        journals: dict[str, dict[int, tuple[str, str, str | None]]] = {}
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
        named = _named_venues(journals.get(manifest.get("main"), {}))
        if named - set(sites):
            report.problem(f"the main venue's journal names venues of the session that the package does not hold: "
                           f"{', '.join(sorted(named - set(sites)))}", "venues_missing", venues=", ".join(sorted(named - set(sites))))
    return report


def _named_venues(journal: dict[int, tuple[str, str, str | None]]) -> set[str]:
    """The venues the main venue's records of the session name (its links, sign-offs, receipts)."""
    out: set[str] = set()
    for kind, _, body in journal.values():
        if body is not None and kind in ("evaluation.remote_link", "evaluation.venue_signed", "evaluation.remote_received"):
            payload = json.loads(body).get("payload") or {}
            named = payload.get("venue") if kind != "evaluation.remote_received" else payload.get("origin")
            if isinstance(named, str):
                out.add(named)
    return out


KEPT = (*EMBEDDING, "evaluation.remote_answered", "evaluation.remote_link", "evaluation.venue_signed")


def _venue(z: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], v: dict[str, Any], report: RemoteReport, tmp: Path,
           keys: dict[str, Ed25519PublicKey], covered: dict[str, int]) -> dict[int, tuple[str, str, str | None]] | None:
    """One venue's package: its size and SHA-256 as listed, then the whole package pinned to the
    listed key. Returns its journal when it verified: seq → (kind, hash, body), the body kept only
    for the kinds the checks across venues read."""
    name, where = v["package"], f"{v.get('name') or v['site']} ({v['site']})"
    venue_name = str(v.get("name") or v["site"])
    info = infos.get(name)
    if info is None:
        report.problem(f"{name}: the package of {where} is missing", "venue_package", venue=venue_name)
        return None
    if info.file_size != v["size"] or info.file_size > VENUE_PACKAGE_LIMIT:  # before a byte is unpacked
        report.problem(f"{name}: {info.file_size} bytes, not the {v['size']} remote.json lists (or more than a package may be)",
                       "venue_package", venue=venue_name)
        return None
    inner = tmp / f"venue-{len(report.venues)}.zip"
    digest = hashlib.sha256()
    try:
        with z.open(info) as src, inner.open("wb") as dst:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problem(f"{name}: damaged ({exc})", "venue_package", venue=venue_name)
        return None
    entry: dict[str, Any] = {"site": v["site"], "name": v.get("name"), "main": bool(v.get("main")), "ok": False}
    report.venues.append(entry)
    if digest.hexdigest() != v["sha256"]:
        report.problem(f"{name}: its SHA-256 is not the one remote.json lists (the package of {where} was altered)",
                       "venue_package", venue=venue_name)
        return None
    try:
        result = verify(inner, fingerprint_hex=v["key_fingerprint"])
    except EvidenceError as exc:
        report.problem(f"{name}: {exc}", "venue_package", venue=venue_name)
        return None
    entry.update(ok=result.ok, records=result.records, segments=result.segments, key_fingerprint=result.key_fingerprint)
    for text, detail in zip(result.problems, result.details):
        report.problem(f"{where}: {text}", "venue_problem", venue=venue_name, detail=detail)
    if result.center_fingerprint != report.center_fingerprint:
        report.problem(f"{name}: exported by the center key {result.center_fingerprint or '(none)'}, not the one that signed remote.json",
                       "venue_package", venue=venue_name)
        entry["ok"] = False
        return None
    if not result.ok:
        return None
    with zipfile.ZipFile(inner) as venue_zip:
        manifest = json.loads(venue_zip.read("manifest.json"))
        if manifest.get("site") != v["site"] or manifest.get("session") != report.session \
                or manifest.get("checkpoint_size") != v["checkpoint_size"] or len(manifest.get("records", [])) != v["records"]:
            report.problem(f"{name}: the package is of {manifest.get('site')} / {manifest.get('session')}, "
                           f"{len(manifest.get('records', []))} records at checkpoint {manifest.get('checkpoint_size')}, "
                           f"not what remote.json lists for {v['site']} / {report.session}", "venue_package", venue=venue_name)
            entry["ok"] = False
            return None
        key = load_pem_public_key(venue_zip.read("site.pub"))
        assert isinstance(key, Ed25519PublicKey)
        if venue_zip.getinfo("journal.jsonl").file_size > LIMITS["journal.jsonl"]:
            return None  # verify() said so already
        journal: dict[int, tuple[str, str, str | None]] = {}
        with venue_zip.open("journal.jsonl") as f:  # every line verified by verify() above
            while raw := f.readline(LINE_LIMIT + 1):
                item = json.loads(raw)
                kind = json.loads(item["body"]).get("kind")
                journal[item["seq"]] = (kind, item["hash"], item["body"] if kind in KEPT else None)
    keys[v["site"]], covered[v["site"]] = key, int(manifest["checkpoint_size"])
    return journal


def _across(main: Any, journals: dict[str, dict[int, tuple[str, str, str | None]]], keys: dict[str, Ed25519PublicKey],
            covered: dict[str, int], report: RemoteReport) -> None:
    """What one venue's journal says of another's, checked against the other's key and package.
    The records are the venues' own (their signatures verified): one that does not have the
    shape this software writes is named as a problem, never taken on trust."""
    answered: set[tuple[str, int]] = set()
    for site, journal in journals.items():
        for seq, (kind, _, body) in sorted(journal.items()):
            if body is None:
                continue
            payload = json.loads(body).get("payload")
            if not isinstance(payload, dict):
                continue
            if kind == "evaluation.remote_answered" and site == main and type(payload.get("origin_seq")) is int:
                answered.add((str(payload.get("origin")), payload["origin_seq"]))
            if kind not in EMBEDDING:
                continue
            # The main venue embeds its secondary venues' records; a secondary venue, the main venue's.
            if (kind == "evaluation.remote_received") != (site == main) or (payload.get("origin") == main) == (site == main):
                report.problem(f"{site} record {seq} ({kind}): embeds {payload.get('origin')!r}'s record, which that venue "
                               f"does not send to it (the main venue is {main})", "embedded", venue=site, seq=seq)
                continue
            _embedded(site, seq, kind, payload, journals, keys, covered, report)
    for site, journal in journals.items():
        if site == main:
            continue
        for seq, (kind, _, _) in journal.items():
            if kind == "evaluation.remote_action":
                report.actions += 1
                report.answered += (site, seq) in answered


def _embedded(site: str, seq: int, kind: str, payload: dict[str, Any], journals: dict[str, dict[int, tuple[str, str, str | None]]],
              keys: dict[str, Ed25519PublicKey], covered: dict[str, int], report: RemoteReport) -> None:
    """One record that embeds another venue's: its signature with that venue's key, and the
    same record in that venue's own package where the package reaches."""
    where = f"{site} record {seq} ({kind})"
    origin, embedded, origin_seq = payload.get("origin"), payload.get("record"), payload.get("origin_seq")
    if not isinstance(origin, str) or origin not in keys:
        report.problem(f"{where}: embeds a record of {origin!r}, whose package is not here or did not verify",
                       "embedded", venue=site, seq=seq)
        return
    try:
        if not isinstance(embedded, dict) or not isinstance(embedded.get("body"), str) or not isinstance(embedded.get("sig"), str):
            raise ValueError("record: body and sig expected")
        digest = hashlib.sha256(embedded["body"].encode()).digest()
        keys[origin].verify(base64.b64decode(embedded["sig"], validate=True), RECORD_SIGNING_CONTEXT + digest)
        inner = json.loads(embedded["body"])
        if not isinstance(inner, dict):
            raise ValueError("not a record")
    except (ValueError, InvalidSignature, RecursionError) as exc:
        report.problem(f"{where}: the embedded record does not verify with {origin}'s key ({type(exc).__name__})",
                       "embedded", venue=site, seq=seq)
        return
    report.embedded += 1
    if inner.get("site") != origin or type(inner.get("seq")) is not int or inner["seq"] != origin_seq:
        report.problem(f"{where}: the embedded record is not {origin}'s record {origin_seq}", "embedded", venue=site, seq=seq)
    elif inner["seq"] > covered.get(origin, 0):
        report.embedded_not_covered += 1
    elif inner["seq"] not in journals[origin]:
        report.problem(f"{where}: {origin}'s record {inner['seq']} is missing from its own package", "embedded", venue=site, seq=seq)
    elif journals[origin][inner["seq"]][1] != digest.hex():
        report.problem(f"{where}: {origin}'s record {inner['seq']} in its own package is not the one embedded here",
                       "embedded", venue=site, seq=seq)
