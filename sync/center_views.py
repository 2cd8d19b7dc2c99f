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
    for (body,) in conn.execute("SELECT body FROM records WHERE site = ? AND kind = 'plan.loaded' ORDER BY seq", (site_id,)):
        names.update(json.loads(body)["payload"].get("session_names") or {})
    return names


def venue_alarms(conn: Any, site_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The venues' own alarms, newest first: kind, when, the session, and who acknowledged it."""
    where, args = ("site = ? AND ", [site_id]) if site_id else ("", [])
    acks: dict[tuple[str, int], dict[str, Any]] = {}
    for site, ts, body in conn.execute(f"SELECT site, json_extract(body, '$.ts'), body FROM records WHERE {where}"
                                       "kind = 'alarm.acknowledged'", args):
        p = json.loads(body)["payload"]
        acks[(site, p.get("alarm"))] = {"at": ts, "by": p.get("by", ""), "note": p.get("note", "")}
    out = []
    for site, seq, body in conn.execute(f"SELECT site, seq, body FROM records WHERE {where}kind = 'alarm.raised' "
                                        "ORDER BY json_extract(body, '$.ts') DESC, seq DESC LIMIT ?", [*args, limit]):
        record = json.loads(body)
        p = record["payload"]
        out.append({"site": site, "seq": seq, "raised": record["ts"], "kind": p.get("kind"), "session": p.get("session"),
                    "detail": p.get("detail") or {}, "ack": acks.get((site, p.get("alarm")))})
    return out


def session_footage(conn: Any, site_id: str, session_id: str) -> list[dict[str, Any]]:
    """The session's sealed segments, in time order, with whether the center holds them whole."""
    out = []
    for seq, body in conn.execute("SELECT seq, body FROM records WHERE site = ? AND kind = 'recording.segment' ORDER BY seq",
                                  (site_id,)):
        p = json.loads(body)["payload"]
        if session_id not in (p.get("sessions") or []):
            continue
        held = conn.execute("SELECT path FROM media WHERE site = ? AND seq = ?", (site_id, seq)).fetchone()
        out.append({"seq": seq, "camera": p["camera"], "room": p["room"], "start": p["start"], "end": p["end"],
                    "size": p["size"], "held": held is not None})
    out.sort(key=lambda s: (s["start"], s["camera"]))
    return out


def media_path(conn: Any, site_id: str, seq: int) -> str | None:
    row = conn.execute("SELECT path FROM media WHERE site = ? AND seq = ?", (site_id, seq)).fetchone()
    return row[0] if row else None
