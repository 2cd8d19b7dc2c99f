"""No-shows (001 annex 3: experts who do not arrive are replaced by a new draw, 补抽): at session
start + ``siteops.no_show_after_min`` minutes, experts and the tenderer's representative on the
roster who have not checked in are flagged (``session.no_show``); staff then file a
replacement-draw request (``replacement_draw.requested``), which sync carries to the center; the
result arrives as a newer day plan whose roster includes the replacement."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from appliance.clock import utc_timestamp
from appliance.site import Site

VENUE_TZ = ZoneInfo("Asia/Shanghai")
EXPERT_ROLES = ("expert", "tenderer_representative")


def flag_no_show(site: Site, conn: Any, session: str, person_id: int, *, by: str) -> bool:
    if conn.execute("SELECT 1 FROM no_shows WHERE session = ? AND person_id = ?", (session, person_id)).fetchone():
        return False
    conn.execute("INSERT INTO no_shows (session, person_id, flagged) VALUES (?, ?, ?)",
                 (session, person_id, utc_timestamp(site.clock.now())))
    site.journal.append(conn, "session.no_show", {"session": session, "person_id": person_id, "flagged_by": by})
    return True


def flag_no_shows(site: Site) -> int:
    """Flag every expert not checked in once their session's grace time has passed."""
    now = site.clock.now()
    today = now.astimezone(VENUE_TZ).date()
    # Yesterday's too: a session starting late in the evening has its grace time end after midnight.
    days = (today.isoformat(), (today - timedelta(days=1)).isoformat())
    grace = timedelta(minutes=site.config.siteops.no_show_after_min)
    flagged = 0
    with site.store.transaction() as conn:
        rows = conn.execute(
            """SELECT s.id, s.start, r.person_id FROM sessions s JOIN roster r ON r.session = s.id
               LEFT JOIN checkins c ON c.session = s.id AND c.person_id = r.person_id
               WHERE s.day IN (?, ?) AND s.state IN ('admitting', 'in_progress') AND r.role IN (?, ?) AND r.venue IS NULL
                 AND c.commitment_signed IS NULL AND c.conflict_declared IS NOT 1""", (*days, *EXPERT_ROLES)).fetchall()
        for session, start, person_id in rows:
            if now >= datetime.fromisoformat(start.replace("Z", "+00:00")) + grace:
                flagged += flag_no_show(site, conn, session, person_id, by="appliance")
    return flagged


def request_replacement(site: Site, session: str, person_id: int, *, by: str, reason: str = "no_show") -> bool:
    """File the request once per flagged no-show; False when there is nothing (more) to request."""
    with site.store.transaction() as conn:
        changed = conn.execute(
            "UPDATE no_shows SET replacement_requested = ? WHERE session = ? AND person_id = ? AND replacement_requested IS NULL",
            (utc_timestamp(site.clock.now()), session, person_id)).rowcount
        if changed != 1:
            return False
        site.journal.append(conn, "replacement_draw.requested", {"session": session, "replaces_person_id": person_id,
                                                                 "reason": reason, "requested_by": by})
        return True


def open_no_shows(site: Site) -> list[dict[str, Any]]:
    day = site.clock.now().astimezone(VENUE_TZ).date().isoformat()
    rows = site.store.reader().execute(
        """SELECT n.session, n.person_id, n.flagged, n.replacement_requested, p.name_masked FROM no_shows n
           JOIN people p ON p.id = n.person_id JOIN sessions s ON s.id = n.session WHERE s.day = ? ORDER BY n.flagged""", (day,))
    return [dict(r) for r in rows]
