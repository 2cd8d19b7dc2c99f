"""Broadcast calls and announcements (广播呼叫): a call goes to the zones where the called person
is — a bidder's representative is never in the closed evaluation area (001 annex 3), so a call
for one plays in the open zones (the public hall, the clarification room's corridor) — and staff
make free-text announcements to zones they choose. Every call is a queued `announce` device
command (the devices service plays it and journals ``announcement.played`` with the speakers);
`history` is the day's calls with where each played."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance.device_commands import queue_command_in
from appliance.personal import redact_personal_data
from appliance.site import Site

VENUE_TZ = ZoneInfo("Asia/Shanghai")
MAX_TEXT = 200  # characters: a call is read out, not a notice


class CallError(ValueError):
    pass


def open_zones(conn: Any) -> list[str]:
    """Zones anyone may be in (not closed): where bidders and the public wait."""
    return [r[0] for r in conn.execute("SELECT id FROM zones WHERE closed = 0 ORDER BY id != 'public', id")]


def bidder_zones(conn: Any) -> list[str]:
    """Where a bidder's representative can be: every open zone (the public hall, the corridor of
    the clarification room), never the evaluation area."""
    return open_zones(conn)


def speakers_for(site: Site, zones: list[str]) -> list[str]:
    """The configured speakers (display names) covering ``zones``; all of them when the venue
    has a single sink."""
    speakers = site.config.devices.broadcast.speakers
    if not speakers:
        return []
    return [s.label or s.name for s in speakers if set(s.zones) & set(zones)]


def _queue(site: Site, conn: Any, text: str, zones: list[str], priority: str, by: str, purpose: str) -> dict[str, Any]:
    if not zones:
        raise CallError("no zone to play in")
    command = queue_command_in(site, conn, "announce", ",".join(zones), {"text": text, "priority": priority, "purpose": purpose},
                               requested_by=by)
    names = dict(conn.execute("SELECT id, name FROM zones"))
    return {"command": command, "text": text, "zones": zones, "zone_names": [names.get(z, z) for z in zones],
            "speakers": speakers_for(site, zones)}


def call_bidder(site: Site, session: str, bidder: str, room: str, *, by: str, conn: Any = None) -> dict[str, Any]:
    """"请××公司代表到答疑室。" in the zones where a bidder's representative waits."""
    if conn is None:
        with site.store.transaction() as conn:
            return call_bidder(site, session, bidder, room, by=by, conn=conn)
    company = conn.execute("SELECT name FROM session_bidders WHERE session = ? AND bidder = ?", (session, bidder)).fetchone()
    place = conn.execute("SELECT name FROM rooms WHERE id = ?", (room,)).fetchone()
    if company is None or place is None:
        raise CallError("unknown bidder or room")
    return _queue(site, conn, f"请{company[0]}代表到{place[0]}。", bidder_zones(conn), "call", by, "bidder_call")


def announce(site: Site, text: str, zones: list[str], *, by: str) -> dict[str, Any]:
    """A free-text announcement to the chosen zones (as typed; ID and card numbers masked)."""
    text = redact_personal_data(text).strip()
    if not text:
        raise CallError("text: write what is to be announced")
    if len(text) > MAX_TEXT:
        raise CallError(f"text: at most {MAX_TEXT} characters ({len(text)} given)")
    with site.store.transaction() as conn:
        known = {r[0] for r in conn.execute("SELECT id FROM zones")}
        chosen = [z for z in dict.fromkeys(zones) if z]
        if not chosen or set(chosen) - known:
            raise CallError("zones: choose at least one of the venue's zones")
        return _queue(site, conn, text, chosen, "information", by, "announcement")


def history(site: Site, day: str | None = None) -> list[dict[str, Any]]:
    """The day's calls and announcements, newest first, with where each played (or why not)."""
    day = day or site.clock.now().astimezone(VENUE_TZ).date().isoformat()
    conn = site.store.reader()
    names = dict(conn.execute("SELECT id, name FROM zones"))
    played: dict[str, dict[str, Any]] = {}
    out = []
    rows = conn.execute("SELECT id, target, args, state, requested_by, created, finished, result FROM device_commands "
                        "WHERE kind = 'announce' ORDER BY id DESC LIMIT 500").fetchall()
    if rows:
        for (body,) in conn.execute("SELECT body FROM journal WHERE kind = 'announcement.played' AND ts >= ?",
                                    (rows[-1]["created"],)):
            payload = json.loads(body)["payload"]
            played[str(payload.get("id"))] = payload
    labels = {s.name: s.label or s.name for s in site.config.devices.broadcast.speakers}
    for r in rows:
        created = datetime.fromisoformat(r["created"].replace("Z", "+00:00")).astimezone(VENUE_TZ)
        if created.date().isoformat() != day:
            continue
        args = json.loads(r["args"])
        outcome = played.get(f"cmd{r['id']}")
        zones = [z for z in r["target"].split(",") if z]
        out.append({"id": r["id"], "at": r["created"], "text": args.get("text", ""), "purpose": args.get("purpose", "call"),
                    "zones": [names.get(z, z) for z in zones], "by": r["requested_by"],  # "all": worded by the screen
                    "state": "played" if outcome and not outcome.get("error") else "failed" if outcome or r["state"] == "failed"
                    else "expired" if r["state"] == "expired" else "queued",
                    "speakers": [labels.get(s, s) for s in (outcome or {}).get("speakers", [])],
                    "error": (outcome or {}).get("error")})
    return out
