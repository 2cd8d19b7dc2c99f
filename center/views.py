"""What the center's pages read from the venues' journals: each venue's name (record 1,
``site.initialised``), its sessions by name (the latest ``plan.loaded`` naming them), its alarms
(``alarm.raised`` with the matching ``alarm.acknowledged``: who handled it, when, the note), and
a session's footage received whole, to play."""

from __future__ import annotations

import json
from typing import Any


def venue_names(conn: Any) -> dict[str, str]:
    """Site id → the venue's name as it was initialised."""
    out = {}
    for site, body in conn.execute("SELECT site, body FROM records WHERE seq = 1 AND kind = 'site.initialised'"):
        out[site] = str(json.loads(body)["payload"].get("site_name") or site)
    return out


def session_names(conn: Any, site_id: str) -> dict[str, dict[str, str]]:
    """Session id → {section_code, section_name, room}, the latest plan's naming winning."""
    names: dict[str, dict[str, str]] = {}
    for (body,) in conn.execute("SELECT body FROM records WHERE site = %s AND kind = 'plan.loaded' ORDER BY seq", (site_id,)):
        names.update(json.loads(body)["payload"].get("session_names") or {})
    return names


def venue_alarms(conn: Any, site_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The venues' own alarms, newest first: kind, when, the session, and who acknowledged it."""
    where, args = ("site = %s AND ", [site_id]) if site_id else ("", [])
    acks: dict[tuple[str, int], dict[str, Any]] = {}
    for site, ts, body in conn.execute(f"SELECT site, ts, body FROM records WHERE {where}"
                                       "kind = 'alarm.acknowledged'", args):
        p = json.loads(body)["payload"]
        acks[(site, p.get("alarm"))] = {"at": ts, "by": p.get("by", ""), "note": p.get("note", "")}
    out = []
    for site, seq, body in conn.execute(f"SELECT site, seq, body FROM records WHERE {where}kind = 'alarm.raised' "
                                        "ORDER BY ts DESC, seq DESC LIMIT %s", [*args, limit]):
        record = json.loads(body)
        p = record["payload"]
        out.append({"site": site, "seq": seq, "raised": record["ts"], "kind": p.get("kind"), "session": p.get("session"),
                    "detail": p.get("detail") or {}, "ack": acks.get((site, p.get("alarm")))})
    return out


def session_footage(conn: Any, site_id: str, session_id: str) -> list[dict[str, Any]]:
    """The session's sealed segments, in time order, with whether the center holds them whole."""
    out = []
    for seq, body in conn.execute("SELECT seq, body FROM records WHERE site = %s AND kind = 'recording.segment' ORDER BY seq",
                                  (site_id,)):
        p = json.loads(body)["payload"]
        if session_id not in (p.get("sessions") or []):
            continue
        held = conn.execute("SELECT 1 FROM media WHERE site = %s AND seq = %s", (site_id, seq)).fetchone()
        out.append({"seq": seq, "camera": p["camera"], "room": p["room"], "start": p["start"], "end": p["end"],
                    "size": p["size"], "held": held is not None})
    out.sort(key=lambda s: (s["start"], s["camera"]))
    return out


def media_object(conn: Any, site_id: str, seq: int) -> tuple[str, int] | None:
    """The footage store's object (its SHA-256, its size) of the segment sealed by record ``seq``."""
    row = conn.execute("SELECT sha256, size FROM media WHERE site = %s AND seq = %s", (site_id, seq)).fetchone()
    return (str(row[0]), int(row[1])) if row else None


def stream_object(store: Any, sha256: str, size: int, mimetype: str = "video/mp4") -> Any:
    """An object of the footage store as an HTTP answer, with byte ranges (RFC 9110 §14): the
    player asks for the part it needs to seek, the store reads only that part."""
    from flask import Response, request

    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store", "ETag": f'"{sha256}"'}
    wanted = request.range.range_for_length(size) if request.range is not None else None
    if request.range is not None and wanted is None:
        return Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        return Response(store.read(sha256), status=200, mimetype=mimetype, headers={**headers, "Content-Length": str(size)})
    start, stop = wanted
    return Response(store.read(sha256, start, stop - 1), status=206, mimetype=mimetype,
                    headers={**headers, "Content-Length": str(stop - start), "Content-Range": f"bytes {start}-{stop - 1}/{size}"})
