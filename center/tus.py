"""The center's tus 1.0.0 endpoint for recordings (https://tus.io/protocols/resumable-upload).

Core protocol plus the creation, checksum, termination and expiration extensions:

* ``OPTIONS  …/uploads`` (and ``…/uploads/<id>``) → 204, ``Tus-Version``, ``Tus-Extension``,
  ``Tus-Max-Size``, ``Tus-Checksum-Algorithm``; no authentication, as the spec allows.
* ``POST     …/uploads``       → 201 with ``Location`` and ``Upload-Expires`` (creation). The
  ``Upload-Metadata`` must name the segment's sealing record (``seq``) and its ``sha256``; the
  record must already be at the center and say the same hash and size (``Upload-Length``), so a
  file the site never sealed is never accepted.
* ``HEAD     …/uploads/<id>``  → 200 with ``Upload-Offset``, ``Upload-Length``, the
  ``Upload-Metadata`` given at creation, ``Cache-Control: no-store`` — a finished upload too
  (its offset is its length) until it expires.
* ``PATCH    …/uploads/<id>``  → 204 with the new ``Upload-Offset``; ``Content-Type`` must be
  ``application/offset+octet-stream`` (else 415), ``Upload-Offset`` must equal the stored
  offset (else 409); an ``Upload-Checksum`` (``sha1`` or ``sha256``, base64) that does not match
  the body gives 460 and the chunk is discarded; an unsupported algorithm 400. The body may be
  of any length up to the upload's end, with a Content-Length or chunked: it is streamed to
  disk in 1 MiB blocks, hashed on the way, and checked against the signed ``Content-Digest``
  (a mismatch is discarded like a bad checksum, 400).
* ``DELETE   …/uploads/<id>``  → 204 (termination); the upload is gone (404 afterwards).
* Expired uploads answer 410 and their bytes are removed.
* ``X-HTTP-Method-Override`` is honoured; every request but OPTIONS needs ``Tus-Resumable:
  1.0.0`` (else 412 with ``Tus-Version``); every answer carries ``Tus-Resumable``, refusals by
  the signature check (401) included.

When the last byte arrives, the center hashes the whole file; only if the SHA-256 equals the
sealed journal record's does it keep the file and count the segment as received (the site then
learns it through ``…/media/status`` and may free the segment). A mismatch is refused (the bytes
are dropped) and raised as an alarm.

Each chunk is appended and fsynced before the offset is committed; a crash between the two
leaves extra bytes that are cut back to the committed offset on the next request, so the offset
the center reports is always bytes it holds.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import errno
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from flask import Flask, Response, g, request

from center.footage import StoreError, StoreFull
from sync.requestbody import body_blocks

if TYPE_CHECKING:
    from center.core import Center

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,checksum,termination,expiration"
MAX_SIZE = 8 << 30  # 8 GiB: far above a segment
CHECKSUMS: dict[str, Callable[..., Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
EXPIRES_AFTER = timedelta(hours=24)


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, **(extra or {})}


def _reply(status: int, extra: dict[str, str] | None = None, text: str = "") -> Response:
    return Response(text, status=status, headers=_headers(extra), mimetype="text/plain")


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (value optional)."""
    out = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = pair.partition(" ")
        out[key] = base64.b64decode(value, validate=True).decode() if value else ""
    return out


def _http_date(when: datetime) -> str:
    return format_datetime(when.astimezone(timezone.utc), usegmt=True)


def register(app: Flask, center: "Center", authenticated: Callable[..., None]) -> None:
    base = "/center/v1/sites/<site_id>/media/uploads"

    def method() -> str:
        return request.headers.get("X-HTTP-Method-Override", request.method).upper()

    part = center.part

    def row(site_id: str, upload_id: str) -> Any:
        return center.db.one("SELECT id, site, seq, sha256, length, upload_offset, expires, metadata, finished FROM uploads "
                             "WHERE id = %s AND site = %s", (upload_id, site_id))

    def expired(r: Any) -> bool:
        return datetime.fromisoformat(r[6]) <= center.clock.now()

    def drop(upload_id: str) -> None:
        with center.db.transaction() as conn:
            conn.execute("DELETE FROM uploads WHERE id = %s", (upload_id,))
        part(upload_id).unlink(missing_ok=True)

    def options() -> Response:
        return _reply(204, {"Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS, "Tus-Max-Size": str(MAX_SIZE),
                            "Tus-Checksum-Algorithm": ",".join(CHECKSUMS)})

    @app.after_request
    def every_answer_is_tus(response: Response) -> Response:
        # Refusals made before the tus code runs (the signature check, 404, 413) are tus
        # answers too: a client looks for this header on all of them.
        if "/media/uploads" in request.path:
            response.headers.setdefault("Tus-Resumable", TUS_VERSION)
        return response

    @app.route(base, methods=["OPTIONS", "POST"])
    def uploads(site_id: str) -> Response:
        if method() == "OPTIONS":
            return options()
        authenticated(site_id)
        if request.headers.get("Tus-Resumable") != TUS_VERSION:
            return _reply(412, {"Tus-Version": TUS_VERSION}, "Tus-Resumable: 1.0.0 is required")
        if "Upload-Defer-Length" in request.headers:
            return _reply(400, text="Upload-Defer-Length is not supported: send Upload-Length")
        try:
            length = int(request.headers["Upload-Length"])
            meta = parse_metadata(request.headers.get("Upload-Metadata", ""))
            seq, digest = int(meta["seq"]), meta["sha256"]
        except (KeyError, ValueError) as exc:
            return _reply(400, text=f"Upload-Length and Upload-Metadata with seq and sha256 are required ({exc})")
        if not 0 <= length <= MAX_SIZE:
            return _reply(413, text=f"Upload-Length above Tus-Max-Size {MAX_SIZE}")
        sealed = center.sealed_segment(site_id, seq)
        if sealed is None:
            return _reply(409, text=f"record {seq} (the segment's seal) has not reached the center yet: send the journal first")
        if sealed["sha256"] != digest or sealed["size"] != length:
            return _reply(409, text=f"record {seq} seals another file (hash or size differ)")
        center.sweep_uploads()
        upload_id = secrets.token_hex(16)
        expires = center.clock.now() + EXPIRES_AFTER
        part(upload_id).touch()
        with center.db.transaction() as conn:
            conn.execute("INSERT INTO uploads (id, site, seq, sha256, length, upload_offset, created, expires, metadata) "
                         "VALUES (%s, %s, %s, %s, %s, 0, %s, %s, %s)", (upload_id, site_id, seq, digest, length, center.clock.now().isoformat(),
                                                               expires.isoformat(), request.headers.get("Upload-Metadata", "")))
        if length == 0:
            try:
                center.finish_upload(site_id, upload_id, part(upload_id))
            except StoreFull:
                return _reply(507, text="the center's footage store is full: keep the segment and try later")
        return _reply(201, {"Location": f"{request.path}/{upload_id}", "Upload-Expires": _http_date(expires)})

    @app.route(base + "/<upload_id>", methods=["OPTIONS", "HEAD", "PATCH", "DELETE", "POST"])
    def upload(site_id: str, upload_id: str) -> Response:
        verb = method()
        if verb == "OPTIONS":
            return options()
        if verb == "PATCH":  # its body is streamed to disk, never read whole: any length up to the upload's end
            request.max_content_length = MAX_SIZE + (1 << 20)
        authenticated(site_id, streamed_body=verb == "PATCH")
        if request.headers.get("Tus-Resumable") != TUS_VERSION:
            return _reply(412, {"Tus-Version": TUS_VERSION}, "Tus-Resumable: 1.0.0 is required")
        with center.db.lock(f"tus:{upload_id}"):  # one writer per upload in all workers (a duplicated PATCH waits)
            return _upload(site_id, upload_id, verb)

    def _upload(site_id: str, upload_id: str, verb: str) -> Response:
        r = row(site_id, upload_id)
        if r is None:
            return _reply(404, {"Cache-Control": "no-store"}, "no such upload (finished, terminated or never created)")
        if expired(r):
            drop(upload_id)
            return _reply(410, {"Cache-Control": "no-store"}, "the upload expired")
        _, _, _, _, length, offset, expires, metadata, finished = r
        if verb == "HEAD":
            return _reply(200, {"Upload-Offset": str(offset), "Upload-Length": str(length), "Cache-Control": "no-store",
                                **({"Upload-Metadata": metadata} if metadata else {})})
        if verb == "DELETE":
            if finished:  # the segment is held: terminating the upload forgets the upload, not the file
                with center.db.transaction() as conn:
                    conn.execute("DELETE FROM uploads WHERE id = %s", (upload_id,))
            else:
                drop(upload_id)
            return _reply(204)
        if verb != "PATCH":
            return _reply(405, text="HEAD, PATCH or DELETE")
        if request.mimetype != "application/offset+octet-stream":
            return _reply(415, text="Content-Type: application/offset+octet-stream is required")
        try:
            claimed = int(request.headers["Upload-Offset"])
        except (KeyError, ValueError):
            return _reply(400, text="Upload-Offset is required")
        if claimed != offset:
            return _reply(409, {"Upload-Offset": str(offset)}, f"Upload-Offset {claimed} is not the upload's offset {offset}")
        if request.content_length is not None and offset + request.content_length > length:
            return _reply(400, text="the chunk runs past Upload-Length")
        checksum = None
        if "Upload-Checksum" in request.headers:
            algorithm, _, value = request.headers["Upload-Checksum"].partition(" ")
            if algorithm not in CHECKSUMS:
                return _reply(400, text=f"checksum algorithm {algorithm!r} is not supported")
            try:  # sha256: the content hash below serves both
                checksum = (None if algorithm == "sha256" else CHECKSUMS[algorithm](), base64.b64decode(value, validate=True))
            except ValueError:
                return _reply(400, text="Upload-Checksum: the value is not base64")
        path = part(upload_id)
        try:
            return _write(site_id, upload_id, path, offset, length, checksum)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            center.alarm(None, "footage_store_full", {"store": "staging", "error": str(exc)[:300]})
            with open(path, "r+b") as f:
                f.truncate(offset)
            return _reply(507, text="the center's footage store is full: keep the segment and try later")

    def _write(site_id: str, upload_id: str, path: Path, offset: int, length: int, checksum: Any) -> Response:
        content = hashlib.sha256()  # against the signed Content-Digest
        written = 0
        with open(path, "r+b" if path.exists() else "w+b") as f:
            f.truncate(offset)  # bytes past the committed offset are a crash's (or a refused chunk's) leftovers
            f.seek(offset)
            for block in body_blocks():
                written += len(block)
                if offset + written > length:
                    f.truncate(offset)
                    return _reply(400, text="the chunk runs past Upload-Length")
                content.update(block)
                if checksum and checksum[0]:
                    checksum[0].update(block)
                f.write(block)
            # The tus checksum first: a chunk damaged on the way is the 460 the protocol names.
            if checksum and (checksum[0] or content).digest() != checksum[1]:
                f.truncate(offset)
                return Response("Checksum Mismatch: the chunk was discarded", status=460, headers=_headers())
            if content.digest() != g.signed_sha256:
                f.truncate(offset)
                return _reply(400, text="the body does not match its signed Content-Digest: discarded")
            f.flush()
            os.fsync(f.fileno())
        new_offset = offset + written
        new_expires = center.clock.now() + EXPIRES_AFTER
        with center.db.transaction() as conn:
            moved = conn.execute("UPDATE uploads SET upload_offset = %s, expires = %s WHERE id = %s AND upload_offset = %s",
                                 (new_offset, new_expires.isoformat(), upload_id, offset)).rowcount
        if moved != 1:  # another request moved the offset meanwhile (the lock lost to a database restart)
            current = row(site_id, upload_id)
            return _reply(409, {"Upload-Offset": str(current[5] if current else 0)}, "the upload's offset moved: HEAD and resume")
        if new_offset == length:
            try:
                center.finish_upload(site_id, upload_id, path)
            except StoreFull:  # every byte is in and committed: taken in at a later status round
                return _reply(507, text="the center's footage store is full: keep the segment and try later")
            except StoreError:
                return _reply(503, text="the center's footage store cannot be reached: the segment is taken in later")
        return _reply(204, {"Upload-Offset": str(new_offset), "Upload-Expires": _http_date(new_expires)})
