"""Evidence packages exported by the center (docs/evidence.md, "Exported by the center"), each also
kept in the footage store by its SHA-256 (table ``packages``): a
session's records and footage as the center received them, in the site's package format, so
``appliance evidence verify`` checks them offline with no change but one. The center does not
hold the site's private key, so it cannot sign the manifest as the site does: it signs it with
its own key (``center.pub`` beside ``site.pub``, ``exported_by`` in the manifest). Everything the
manifest lists is still proven by the site's own signatures: every record signed by the site's
key, the checkpoint the site signed (the center's receipt, which carries both signatures), an
inclusion proof for each record, and the footage by the SHA-256 and per-MiB chunk digests the
site sealed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from appliance import merkle
from appliance.evidence_format import (
    CENTER_MANIFEST_CONTEXT,
    FORMAT,
    LIMITS,
    REMOTE_FORMAT,
    REMOTE_MANIFEST_CONTEXT,
    chunks_root,
)
from appliance.keys import fingerprint
from center.base import CENTER_NAME, CenterError
from center.footage import file_sha256
from center.views import session_names


def _segment_chunks(store: Any, sha256: str, chunk_size: int) -> list[str]:
    chunks, pending = [], b""
    for block in store.read(sha256):
        pending += block
        while len(pending) >= chunk_size:
            chunks.append(hashlib.sha256(pending[:chunk_size]).hexdigest())
            pending = pending[chunk_size:]
    if pending:
        chunks.append(hashlib.sha256(pending).hexdigest())
    return chunks


def export(center: Any, site_id: str, session: str, out: Path, *, by: str) -> dict[str, Any]:
    """Write the package to ``out`` (whole, or not at all), keep a copy and log it."""
    from center import log as center_log

    info = _write(center, site_id, session, out, by=by)
    package_sha = _keep(center, site_id, session, out, by)
    with center.db.transaction() as conn:
        center_log.append(conn, center.key, center.clock, by, "evidence.exported",
                          {"site": site_id, "session": session, "records": info["records"], "segments": info["segments"],
                           "sha256": package_sha})
    return {**info, "sha256": package_sha}


def _write(center: Any, site_id: str, session: str, out: Path, *, by: str) -> dict[str, Any]:
    """One site's package of the session, written to ``out`` (whole, or not at all)."""
    with center.db.reader() as conn:
        receipt = conn.execute("SELECT size, note FROM receipts WHERE site = %s ORDER BY size DESC LIMIT 1", (site_id,)).fetchone()
        pem = conn.execute("SELECT public_key FROM sites WHERE id = %s", (site_id,)).fetchone()
        if receipt is None or pem is None or pem[0] is None:
            raise CenterError(404, "no_session", f"nothing of site {site_id!r} is held under a receipt")
        size, receipt_note = receipt
        # The site's own signed checkpoint: the receipt's text and the site's signature line (the
        # center's cosignature is left out: the manifest carries the center's signature).
        text, signatures = receipt_note.split("\n\n", 1)
        mine = [line for line in signatures.splitlines() if line.startswith(f"\u2014 {site_id} ")]
        note = text + "\n\n" + mine[0] + "\n"
        rows = conn.execute(
            """SELECT seq, body, hash, sig, kind FROM records WHERE site = %s AND seq <= %s
               AND (session = %s OR (kind = 'recording.segment' AND strpos(body, %s) > 0)) ORDER BY seq""",
            (site_id, size, session, json.dumps(session))).fetchall()
        records, segments = [], []
        for seq, body, digest, sig, kind in rows:
            payload = json.loads(body)["payload"]
            if kind == "recording.segment":
                if session not in (payload.get("sessions") or []):
                    continue
                if conn.execute("SELECT 1 FROM media WHERE site = %s AND seq = %s", (site_id, seq)).fetchone() is None:
                    continue  # sealed but not received (yet): the package lists what it holds
                segments.append((seq, payload))
            records.append((seq, body, digest, sig))
        if not records:
            raise CenterError(404, "no_session", f"no record of session {session!r} from site {site_id!r}")
        leaves = [merkle.leaf_hash(bytes.fromhex(h)) for (h,) in conn.execute(
            "SELECT hash FROM records WHERE site = %s AND seq <= %s ORDER BY seq", (site_id, size))]
        names = session_names(conn, site_id).get(session, {})
    listed = []
    for seq, payload in segments:
        chunks = _segment_chunks(center.footage, payload["sha256"], int(payload["chunk_size"]))
        if chunks_root(chunks) != payload.get("chunks_sha256"):
            raise CenterError(409, "footage_mismatch", f"the footage of record {seq} no longer matches its seal: scrub it")
        listed.append({"file": f"segments/{payload['file']}", "size": payload["size"], "sha256": payload["sha256"], "seq": seq,
                       "chunk_size": payload["chunk_size"], "chunks": chunks})
    manifest = {"format": FORMAT, "site": site_id, "session": session, "section_code": names.get("section_code"),
                "section_name": names.get("section_name"), "room": names.get("room"), "checkpoint_size": size,
                "records": [r[0] for r in records], "segments": listed,
                "exported_by": {"center": CENTER_NAME, "by": by, "at": center.clock.now().isoformat()}}
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
    signature = center.key.sign(CENTER_MANIFEST_CONTEXT + hashlib.sha256(manifest_bytes).digest())
    proofs = {str(seq): [base64.b64encode(h).decode() for h in merkle.inclusion_proof(seq - 1, leaves)] for seq, *_ in records}
    journal = "".join(json.dumps({"seq": seq, "body": body, "hash": h, "sig": sig}, ensure_ascii=False) + "\n"
                      for seq, body, h, sig in records).encode()
    proofs_bytes = json.dumps(proofs, indent=1, sort_keys=True).encode()
    for name, data in (("manifest.json", manifest_bytes), ("journal.jsonl", journal), ("proofs.json", proofs_bytes)):
        if len(data) > LIMITS[name]:
            raise CenterError(413, "too_large", f"{name} would be {len(data)} bytes, more than a package may hold")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", manifest_bytes)
            z.writestr("manifest.sig", base64.b64encode(signature).decode() + "\n")
            z.writestr("site.pub", pem[0])
            z.writestr("center.pub", center.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
            z.writestr("checkpoint.note", note)
            z.writestr("journal.jsonl", journal)
            z.writestr("proofs.json", proofs_bytes)
            for seg in listed:  # streamed from the store, stored as is (video is compressed already)
                with z.open(zipfile.ZipInfo(seg["file"]), "w", force_zip64=True) as dst:
                    for block in center.footage.read(seg["sha256"]):
                        dst.write(block)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"site": site_id, "session": session, "file": str(out), "records": len(records), "segments": len(listed),
            "checkpoint_size": size, "key_fingerprint": fingerprint(load_pem_public_key(pem[0].encode()))}


def export_remote(center: Any, session: str, out: Path, *, by: str) -> dict[str, Any]:
    """A remote evaluation's package (远程异地评标, docs/evidence.md "A remote session"): every
    venue's package of the session as above, inside one ZIP with ``remote.json`` naming the
    venues, their keys' fingerprints and each package's SHA-256, signed by the center
    (``remote.sig``). `appliance evidence verify` checks each venue's package with that venue's
    key and every record one venue's journal embeds from another with the other's key."""
    from center import log as center_log

    with center.db.reader() as conn:
        venues = conn.execute("SELECT site, main FROM remote_sessions WHERE session = %s ORDER BY main DESC, site",
                              (session,)).fetchall()
        if not venues:
            raise CenterError(404, "no_session", f"{session!r} is not a remote evaluation registered here")
        names = _venue_names(conn, session, [v[0] for v in venues if v[1]][:1])
    parts = []
    with tempfile.TemporaryDirectory(prefix="remote-evidence-", dir=center.staging) as tmp:
        for site_id, main in venues:
            inner = Path(tmp) / f"{site_id}.zip"
            info = _write(center, site_id, session, inner, by=by)
            parts.append({"site": site_id, "name": names.get(site_id, site_id), "main": bool(main), "package": f"venues/{site_id}.zip",
                          "key_fingerprint": info["key_fingerprint"], "sha256": file_sha256(inner), "size": inner.stat().st_size,
                          "records": info["records"], "segments": info["segments"], "checkpoint_size": info["checkpoint_size"]})
        manifest = {"format": REMOTE_FORMAT, "session": session, "main": next(p["site"] for p in parts if p["main"]) if any(
                        p["main"] for p in parts) else None, "venues": parts,
                    "exported_by": {"center": CENTER_NAME, "by": by, "at": center.clock.now().isoformat()}}
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
        signature = center.key.sign(REMOTE_MANIFEST_CONTEXT + hashlib.sha256(manifest_bytes).digest())
        tmp_out = out.with_name(f".{out.name}.{os.getpid()}.partial")
        try:
            with zipfile.ZipFile(tmp_out, "w", compression=zipfile.ZIP_STORED) as z:
                z.writestr("remote.json", manifest_bytes, compress_type=zipfile.ZIP_DEFLATED)
                z.writestr("remote.sig", base64.b64encode(signature).decode() + "\n")
                z.writestr("center.pub", center.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
                for part in parts:  # each venue's package as it is (a ZIP already)
                    z.write(Path(tmp) / f"{part['site']}.zip", part["package"])
            tmp_out.replace(out)
        finally:
            tmp_out.unlink(missing_ok=True)
    package_sha = _keep(center, parts[0]["site"], session, out, by)
    with center.db.transaction() as conn:
        center_log.append(conn, center.key, center.clock, by, "evidence.exported",
                          {"remote": True, "session": session, "venues": [p["site"] for p in parts],
                           "records": sum(p["records"] for p in parts), "segments": sum(p["segments"] for p in parts),
                           "sha256": package_sha})
    return {"session": session, "file": str(out), "venues": [{k: p[k] for k in ("site", "name", "main", "records", "segments")}
                                                             for p in parts], "sha256": package_sha}


def _venue_names(conn: Any, session: str, main: list[str]) -> dict[str, str]:
    """The venues' names as the main venue's latest day plan carrying the session names them."""
    for (item,) in conn.execute("SELECT item FROM feed WHERE site = %s AND kind = 'day_plan' ORDER BY seq DESC LIMIT 20",
                                (main[0] if main else "",)):
        plan = json.loads(item).get("body") or {}
        for s in plan.get("sessions") or []:
            if isinstance(s, dict) and s.get("id") == session and isinstance(s.get("remote"), dict):
                return {v["site"]: v["name"] for v in s["remote"].get("venues") or []
                        if isinstance(v, dict) and isinstance(v.get("site"), str) and isinstance(v.get("name"), str)}
    return {}


def _keep(center: Any, site_id: str, session: str, out: Path, by: str) -> str:
    """A copy of the package in the footage store, named by its SHA-256 and kept 15 years like
    the footage (`packages` lists them by session)."""
    import shutil

    from appliance.clock import utc_timestamp
    from center.media import retain_until

    digest = file_sha256(out)
    copy = center.staging / f".package-{digest}-{os.getpid()}"
    shutil.copyfile(out, copy)
    center.footage.put_file(digest, copy)
    now = center.clock.now()
    with center.db.transaction() as conn:
        conn.execute("INSERT INTO objects (sha256, size, stored, retain_until) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                     (digest, out.stat().st_size, utc_timestamp(now), utc_timestamp(retain_until(now))))
        conn.execute("INSERT INTO packages (sha256, site, session, size, exported_by, exported) VALUES (%s, %s, %s, %s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (digest, site_id, session, out.stat().st_size, by, utc_timestamp(now)))
    return digest
