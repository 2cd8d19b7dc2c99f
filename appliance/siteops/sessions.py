"""The session state machine (交易活动: opening or evaluation of a tender section).

    scheduled → admitting → in_progress → completed
    in_progress ⇄ suspended (中止, resumable)
    any state but completed → terminated (终止)

Suspending, resuming and terminating need a reason and a supervisor's confirmation (003 on
suspension and termination: "经有关行政监督管理部门…确认后"). Every transition is journaled.
"""

from __future__ import annotations

from appliance.clock import utc_timestamp
from appliance.personal import redact_personal_data
from appliance.site import Site

TRANSITIONS = {
    "scheduled": {"admitting", "terminated"},
    "admitting": {"in_progress", "terminated"},
    "in_progress": {"suspended", "completed", "terminated"},
    "suspended": {"in_progress", "terminated"},
    "completed": set(),
    "terminated": set(),
}
NEEDS_CONFIRMATION = {("in_progress", "suspended"), ("suspended", "in_progress")} | {
    (s, "terminated") for s in TRANSITIONS}


class SessionError(ValueError):
    pass


def change_state(site: Site, session_id: str, to: str, *, by: str, reason: str = "", confirmed_by: str | None = None) -> str:
    reason = redact_personal_data(reason)[:500]
    with site.store.transaction() as conn:
        row = conn.execute("SELECT state FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise SessionError(f"no session {session_id!r}")
        current = row[0]
        if to not in TRANSITIONS[current]:
            raise SessionError(f"session {session_id} cannot go from {current} to {to}")
        if (current, to) in NEEDS_CONFIRMATION:
            if not reason.strip():
                raise SessionError(f"{to}: a reason is required")
            if not confirmed_by:
                raise SessionError(f"{to}: a supervisor must confirm")
            role = conn.execute("SELECT role FROM users WHERE username = ? AND disabled = 0", (confirmed_by,)).fetchone()
            if role is None or role[0] != "supervisor":
                raise SessionError(f"{to}: {confirmed_by!r} is not an active supervisor")
        if (current, to) == ("admitting", "in_progress"):
            from appliance.retention import SpaceError, check_space_for

            try:  # 001 art. 25: the session is recorded in full, so there must be room for it
                check_space_for(site, session_id)
            except SpaceError as exc:
                raise SessionError(f"{to}: {exc}") from exc
        conn.execute("UPDATE sessions SET state = ?, ended = CASE WHEN ? IN ('completed', 'terminated') THEN ? ELSE ended END "
                     "WHERE id = ?", (to, to, utc_timestamp(site.clock.now()), session_id))
        site.journal.append(conn, "session.state", {"session": session_id, "from": current, "to": to, "by": by,
                                                    "reason": reason, "confirmed_by": confirmed_by})
        # Footage sealed before the window reached it (an overrun's last minutes at its end).
        from appliance.segments import relink

        relink(site, conn, session_id)
    return to
