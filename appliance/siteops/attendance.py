"""A session's check-in roster (签到表) as staff follow it at the console: for each person on
the roster, whether they have arrived (first admitted at a gate of the session's zone), signed
the commitment (experts and the tenderer's representative, at the kiosk), are inside the area
now, or have left (and when); who is missing, and since when (the session's planned start); the
recused and the no-shows with their replacement requests. Gathered from the roster, the
check-ins, the presence table and the day's gate decisions in the journal."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from appliance.clock import utc_timestamp
from appliance.site import Site
from appliance.siteops.noshow import EXPERT_ROLES

# The roster's order on the sheet: the committee first, then those who watch over it, then the rest.
ROLE_ORDER = ("expert", "tenderer_representative", "supervisor", "witness", "site_staff", "technician",
              "agency_staff", "bidder_representative")


def _parse(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def session_roster(site: Site, session: str) -> dict[str, Any] | None:
    """{"session": {...}, "people": [...], "counts": {...}} or None for an unknown session. Each
    person: person_id, name_masked, role, bidder, status (``inside`` | ``left`` | ``checked_in`` |
    ``not_arrived`` | ``recused`` | ``no_show``), first_in, last_out, signed, locker, no_show,
    replacement_requested, missing_min (minutes since the planned start, for a committee
    member not yet there)."""
    conn = site.store.reader()
    row = conn.execute(
        """SELECT s.id, s.kind, s.section_code, s.section_name, s.start, s.end, s.state, s.day, r.name, r.zone
           FROM sessions s LEFT JOIN rooms r ON r.id = s.room WHERE s.id = ?""", (session,)).fetchone()
    if row is None:
        return None
    info = dict(zip(("id", "kind", "section_code", "section_name", "start", "end", "state", "day", "room", "zone"), row))
    now = site.clock.now()
    first_in: dict[int, str] = {}
    last_out: dict[int, str] = {}
    # Admission opens before the start (the plan's admission_opens_min, at most hours): the
    # decisions of the twelve hours before the start and after it.
    since = utc_timestamp(_parse(info["start"]) - timedelta(hours=12))
    for ts, body in conn.execute("SELECT ts, body FROM journal WHERE kind = 'gate.decision' AND ts >= ? ORDER BY seq",
                                 (since,)):
        p = json.loads(body)["payload"]
        if p.get("session") != session or p.get("person_id") is None or not p.get("allow"):
            continue
        if p.get("direction") == "exit":
            last_out[p["person_id"]] = ts
        else:
            first_in.setdefault(p["person_id"], ts)
            last_out.pop(p["person_id"], None)  # back in: no longer "left"
    people = []
    for r in conn.execute(
            """SELECT r.person_id, r.role, r.bidder, p.name_masked, b.name, c.commitment_signed, c.conflict_declared, c.locker,
                      n.flagged, n.replacement_requested,
                      EXISTS (SELECT 1 FROM presence pr WHERE pr.person_id = r.person_id AND pr.zone = ?) AS inside
               FROM roster r JOIN people p ON p.id = r.person_id
               LEFT JOIN session_bidders b ON b.session = r.session AND b.bidder = r.bidder
               LEFT JOIN checkins c ON c.session = r.session AND c.person_id = r.person_id
               LEFT JOIN no_shows n ON n.session = r.session AND n.person_id = r.person_id
               WHERE r.session = ? AND r.venue IS NULL""", (info["zone"], session)):
        person = dict(zip(("person_id", "role", "bidder", "name_masked", "bidder_name", "signed", "recused", "locker",
                           "no_show", "replacement_requested", "inside"), r))
        person["recused"], person["inside"] = bool(person["recused"]), bool(person["inside"])
        person["first_in"], person["last_out"] = first_in.get(person["person_id"]), last_out.get(person["person_id"])
        if person["recused"]:
            status = "recused"
        elif person["inside"]:
            status = "inside"
        elif person["last_out"]:
            status = "left"
        elif person["first_in"] or person["signed"]:
            status = "checked_in"
        elif person["no_show"]:
            status = "no_show"
        else:
            status = "not_arrived"
        person["status"] = status
        start = _parse(info["start"])
        late = status in ("not_arrived", "no_show") and person["role"] in EXPERT_ROLES and start is not None and now > start
        person["missing_min"] = int((now - start).total_seconds() // 60) if late else None
        people.append(person)
    people.sort(key=lambda p: (ROLE_ORDER.index(p["role"]) if p["role"] in ROLE_ORDER else len(ROLE_ORDER),
                               p["bidder"] or "", p["person_id"]))
    committee = [p for p in people if p["role"] in EXPERT_ROLES]
    counts = {"committee": len(committee),
              "committee_inside": sum(p["status"] == "inside" for p in committee),
              "committee_signed": sum(bool(p["signed"]) for p in committee),
              "committee_missing": sum(p["status"] in ("not_arrived", "no_show") for p in committee),
              "inside": sum(p["status"] == "inside" for p in people)}
    return {"session": info, "people": people, "counts": counts}
