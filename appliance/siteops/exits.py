"""Exit approvals: an expert may leave the closed evaluation area during an evaluation only with
approval (001 annex 3: 评标期间未经批准不得离开评标区; e.g. a sample inspection or an urgent
matter), granted by staff on the console with a reason, for a limited time. The approval covers
one exit and the return before it expires; leaving without one raises an alarm (see alarms.py).

``EXIT_FACTS`` gives the access policy what it needs for each roster entry of a person; ``record_use``
marks the approval used when the gate lets the person out or back in.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from appliance.clock import utc_timestamp
from appliance.personal import redact_personal_data
from appliance.site import Site

MAX_MINUTES = 240


class ExitError(ValueError):
    pass


def approve_exit(site: Site, session: str, person_id: int, *, minutes: int, reason: str, by: str) -> int:
    reason = redact_personal_data(reason).strip()[:500]
    if not reason:
        raise ExitError("an exit approval needs a reason")
    if not 1 <= minutes <= MAX_MINUTES:
        raise ExitError(f"an exit approval lasts 1 to {MAX_MINUTES} minutes")
    now = site.clock.now()
    with site.store.transaction() as conn:
        row = conn.execute("SELECT s.state, r.role FROM sessions s JOIN roster r ON r.session = s.id "
                           "WHERE s.id = ? AND r.person_id = ?", (session, person_id)).fetchone()
        if row is None:
            raise ExitError("this person is not on the session's roster")
        if row[0] not in ("admitting", "in_progress", "suspended"):
            raise ExitError("the session is not running")
        conn.execute("UPDATE exit_approvals SET withdrawn = ? WHERE session = ? AND person_id = ? AND exited IS NULL "
                     "AND withdrawn IS NULL", (utc_timestamp(now), session, person_id))
        cur = conn.execute(
            "INSERT INTO exit_approvals (session, person_id, reason, approved_by, granted, expires) VALUES (?, ?, ?, ?, ?, ?)",
            (session, person_id, reason, by, utc_timestamp(now), utc_timestamp(now + timedelta(minutes=minutes))))
        approval = int(cur.lastrowid or 0)
        site.journal.append(conn, "exit.approved", {"approval": approval, "session": session, "person_id": person_id,
                                                    "minutes": minutes, "reason": reason, "by": by})
        return approval


# (exit_approved, returning) for the access policy, and whether the person is out on an approval
# at all (expired or not: the return is marked on it), as three columns of a query over the
# roster ``r`` (its person and session); the two parameters are the time now, twice.
EXIT_FACTS = """EXISTS (SELECT 1 FROM exit_approvals e WHERE e.person_id = r.person_id AND e.session = r.session
                        AND e.exited IS NULL AND e.withdrawn IS NULL AND e.expires >= ?),
                EXISTS (SELECT 1 FROM exit_approvals e WHERE e.person_id = r.person_id AND e.session = r.session
                        AND e.exited IS NOT NULL AND e.returned IS NULL AND e.expires >= ?),
                EXISTS (SELECT 1 FROM exit_approvals e WHERE e.person_id = r.person_id AND e.session = r.session
                        AND e.exited IS NOT NULL AND e.returned IS NULL)"""


def record_use(conn: Any, now_ts: str, person_id: int, session: str, direction: str) -> None:
    if direction == "out":
        conn.execute("UPDATE exit_approvals SET exited = ? WHERE id = (SELECT id FROM exit_approvals WHERE person_id = ? "
                     "AND session = ? AND exited IS NULL AND withdrawn IS NULL AND expires >= ? ORDER BY id DESC LIMIT 1)",
                     (now_ts, person_id, session, now_ts))
    else:
        conn.execute("UPDATE exit_approvals SET returned = ? WHERE person_id = ? AND session = ? AND exited IS NOT NULL "
                     "AND returned IS NULL", (now_ts, person_id, session))


def people_inside(site: Site, zone: str = "evaluation") -> list[dict[str, Any]]:
    """Experts inside a closed zone now, with their running session and any exit approval."""
    now_ts = utc_timestamp(site.clock.now())
    rows = site.store.reader().execute(
        """SELECT pr.person_id, p.name_masked, r.session, s.section_name, r.role, pr.since,
                  (SELECT expires FROM exit_approvals e WHERE e.person_id = pr.person_id AND e.session = r.session
                     AND e.exited IS NULL AND e.withdrawn IS NULL AND e.expires >= ? ORDER BY e.id DESC LIMIT 1) AS approved_until
           FROM presence pr JOIN people p ON p.id = pr.person_id JOIN roster r ON r.person_id = pr.person_id
           JOIN sessions s ON s.id = r.session JOIN rooms rm ON rm.id = s.room
           WHERE pr.zone = ? AND rm.zone = pr.zone AND s.state IN ('admitting', 'in_progress', 'suspended')
             AND r.role IN ('expert', 'tenderer_representative')
           ORDER BY s.section_name, p.name_masked""", (now_ts, zone))
    return [dict(r) for r in rows]
