"""The supervisors' landing page: what a supervisor acts on — today's sessions with their state,
the open alarms, whether the journal is intact, and the day's events that need a look (alarms,
staff-assisted checks, exits, suspensions, recusals, no-shows, reopened steps, revised scores,
failed checks) as sentences. The raw journal is a page of its own, for auditors."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from appliance.clock import utc_timestamp
from appliance.personal import redact_personal_data
from kiosk_ui.words import Names, sentence

VENUE_TZ = ZoneInfo("Asia/Shanghai")
ATTENTION = ("alarm.raised", "gate.assisted", "exit.approved", "session.state", "checkin.conflict_declared", "session.no_show",
             "replacement_draw.requested", "evaluation.reopen_requested", "evaluation.reopen_approved", "evaluation.revised",
             "evaluation.member_left", "evaluation.member_seated", "review.evidence_verified", "journal.verified",
             "evaluation.report_signed")


def _needs_look(kind: str, payload: dict[str, Any]) -> bool:
    if kind == "session.state":
        return payload.get("to") in ("suspended", "terminated")
    if kind in ("review.evidence_verified", "journal.verified"):
        return payload.get("ok") is False
    if kind == "evaluation.report_signed":
        return not payload.get("agrees")  # a dissent
    return True


def today_window(site: Any) -> tuple[str, str]:
    day = site.clock.now().astimezone(VENUE_TZ).date()
    start = datetime.combine(day, time(0), VENUE_TZ)
    return utc_timestamp(start), utc_timestamp(start + timedelta(days=1))


def sessions_today(site: Any) -> list[dict[str, Any]]:
    day = site.clock.now().astimezone(VENUE_TZ).date().isoformat()
    return [dict(r) for r in site.store.reader().execute(
        """SELECT s.id, s.kind, s.section_name, s.start, s.end, s.state, r.name AS room, e.state AS evaluation
           FROM sessions s JOIN rooms r ON r.id = s.room LEFT JOIN evaluations e ON e.session = s.id
           WHERE s.day = ? ORDER BY s.start""", (day,))]


def attention(site: Any, limit: int = 60) -> list[dict[str, Any]]:
    """Today's events that need a supervisor's look, newest first."""
    start, end = today_window(site)
    names = Names(site)
    out = []
    for seq, ts, kind, body in site.store.reader().execute(
            "SELECT seq, ts, kind, body FROM journal WHERE ts >= ? AND ts < ? AND kind IN (%s) ORDER BY seq DESC LIMIT 2000"
            % ",".join("?" * len(ATTENTION)), (start, end, *ATTENTION)):
        payload = json.loads(body)["payload"]
        if not _needs_look(kind, payload):
            continue
        out.append({"seq": seq, "ts": ts, "kind": kind, "session": payload.get("session"),
                    "text": redact_personal_data(attention_sentence(kind, payload, names))})
        if len(out) >= limit:
            break
    return out


def attention_sentence(kind: str, payload: dict[str, Any], names: Names) -> str:
    from flask_babel import gettext as _

    if kind == "journal.verified":
        return _("A check of the journal found damage at record %(seq)s", seq=payload.get("seq"))
    if kind == "review.evidence_verified":
        return _("An evidence package did not verify (%(n)s problems)", n=payload.get("problems"))
    if kind == "evaluation.reopen_requested":
        return _("The chair asks to reopen the step %(step)s: %(reason)s", step=names.step(payload.get("session"), payload.get("step")),
                 reason=payload.get("reason", ""))
    return sentence(kind, payload, names)


def integrity(site: Any) -> dict[str, Any]:
    """The journal's state for the page: records, the latest signed checkpoint, and the latest
    full check (when, by whom, its verdict)."""
    conn = site.store.reader()
    row = conn.execute("SELECT ts, body FROM journal WHERE kind = 'journal.verified' ORDER BY seq DESC LIMIT 1").fetchone()
    last = None
    if row:
        payload = json.loads(row[1])["payload"]
        last = {"ts": row[0], "ok": payload.get("ok"), "by": payload.get("by"), "records": payload.get("records"),
                "seq": payload.get("seq")}
    latest = site.journal.latest_checkpoint()
    return {"records": site.journal.count(), "checkpoint": latest[0] if latest else 0, "last_check": last}
