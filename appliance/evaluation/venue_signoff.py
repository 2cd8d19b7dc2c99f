"""Each venue's supervisors sign for their venue's part of a remote evaluation (远程异地评标;
issue #16: "each venue's supervisors sign for their venue's part"; docs/remote-evaluation.md).

A supervisor of the venue — signed in to its web screens with a supervisor account — confirms,
once the results are final and every member the plan seats at the venue has signed the report,
that the venue's part was held under supervision: its members admitted, seated and at work in
its remote evaluation room. The report is issued only once every venue of the committee has such
a sign-off; it lists them (venue, supervisor, time, remark).

The main venue holds the sign-offs (``venue_signoffs``, state ``signed``, journaled
``evaluation.venue_signed``). A secondary venue's supervisor signs through the relay like a
member's action (``evaluation.remote_action`` with action ``venue_sign`` and no member); the
secondary venue keeps its own row (``held``, ``sent``, then ``signed`` or ``refused``) and
learns the other venues' sign-offs from the main venue's records it receives.
"""

from __future__ import annotations

from typing import Any

from appliance.clock import utc_timestamp
from appliance.evaluation.base import EvaluationError, _need
from appliance.personal import redact_personal_data
from appliance.site import Site

ACTION = "venue_sign"  # the relayed action's name (appliance.evaluation.remote)
MAX_REMARK = 500


def clean(supervisor: Any, remark: Any) -> tuple[str, str]:
    """The supervisor's account name and remark as they may be journaled (a remark has ID and
    bank card numbers masked)."""
    if not isinstance(supervisor, str) or not supervisor.strip() or len(supervisor) > 64:
        raise EvaluationError("bad_value", "supervisor: the supervisor's account name (1 to 64 characters) expected")
    if not isinstance(remark, str):
        raise EvaluationError("bad_value", "remark: text expected")
    return supervisor.strip(), redact_personal_data(remark).strip()[:MAX_REMARK]


def members_at(conn: Any, session: str, venue: str, main: str) -> list[int]:
    """The committee's sitting members whom the plan seats at ``venue`` (the main venue's ids)."""
    return [r[0] for r in conn.execute(
        "SELECT m.person_id FROM eval_members m JOIN roster r ON r.session = m.session AND r.person_id = m.person_id "
        "WHERE m.session = ? AND m.left IS NULL AND COALESCE(r.venue, ?) = ? ORDER BY m.person_id", (session, main, venue))]


def sign(site: Site, conn: Any, session: str, *, venue: str, venue_name: str, main: str, supervisor: str,
         remark: str = "", origin_seq: int | None = None) -> int:
    """At the main venue, inside the caller's transaction: record ``supervisor``'s sign-off for
    ``venue`` (this venue, or a secondary venue whose relayed action this is). Returns the seq
    of ``evaluation.venue_signed``."""
    supervisor, remark = clean(supervisor, remark)
    _need(conn, session, "finalized")
    if conn.execute("SELECT 1 FROM eval_reports WHERE session = ?", (session,)).fetchone():
        raise EvaluationError("report_issued", "the report is issued already")
    members = members_at(conn, session, venue, main)
    unsigned = [p for p in members if conn.execute("SELECT report_signed FROM eval_members WHERE session = ? AND person_id = ?",
                                                   (session, p)).fetchone()[0] is None]
    if unsigned:
        raise EvaluationError("members_unsigned", f"{len(unsigned)} member(s) seated at {venue_name} have not signed the report")
    if conn.execute("SELECT 1 FROM venue_signoffs WHERE session = ? AND venue = ? AND supervisor = ? AND state = 'signed'",
                    (session, venue, supervisor)).fetchone():
        raise EvaluationError("already_signed", f"{supervisor} has signed for {venue_name} already")
    now = utc_timestamp(site.clock.now())
    record = site.journal.append(conn, "evaluation.venue_signed", {
        "session": session, "venue": venue, "venue_name": venue_name, "supervisor": supervisor, "remark": remark,
        "members": members, "origin_seq": origin_seq})
    conn.execute("""INSERT INTO venue_signoffs (session, venue, supervisor, remark, signed, state, seq) VALUES (?, ?, ?, ?, ?, 'signed', ?)
                    ON CONFLICT (session, venue, supervisor) DO UPDATE SET remark = excluded.remark, signed = excluded.signed,
                    state = 'signed', code = NULL, seq = excluded.seq""", (session, venue, supervisor, remark, now, record.seq))
    return record.seq


def held_at_secondary(conn: Any, session: str, venue: str, supervisor: str, remark: str, seq: int, now: str) -> None:
    """At a secondary venue: its supervisor's sign-off, journaled as the action ``seq``, until
    the main venue answers it."""
    if conn.execute("SELECT 1 FROM venue_signoffs WHERE session = ? AND venue = ? AND supervisor = ? AND state != 'refused'",
                    (session, venue, supervisor)).fetchone():
        raise EvaluationError("already_signed", f"{supervisor} has signed for this venue already")
    conn.execute("""INSERT INTO venue_signoffs (session, venue, supervisor, remark, signed, state, seq) VALUES (?, ?, ?, ?, ?, 'held', ?)
                    ON CONFLICT (session, venue, supervisor) DO UPDATE SET remark = excluded.remark, signed = excluded.signed,
                    state = 'held', code = NULL, seq = excluded.seq""", (session, venue, supervisor, remark, now, seq))


def learned(conn: Any, payload: dict[str, Any], signed: str) -> None:
    """At a secondary venue: a sign-off the main venue recorded (its ``evaluation.venue_signed``,
    received embedded), for the screens."""
    conn.execute("""INSERT INTO venue_signoffs (session, venue, supervisor, remark, signed, state, seq)
                    VALUES (?, ?, ?, ?, ?, 'signed', NULL)
                    ON CONFLICT (session, venue, supervisor) DO UPDATE SET state = 'signed', code = NULL""",
                 (payload["session"], payload["venue"], payload["supervisor"], payload.get("remark", ""), signed))


def signoffs(conn: Any, session: str, venues: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Every venue of the committee with its supervisors' sign-offs (``signed`` ones, and at a
    secondary venue its own pending or refused ones)."""
    rows = conn.execute("SELECT venue, supervisor, remark, signed, state, code FROM venue_signoffs WHERE session = ? "
                        "ORDER BY signed, supervisor", (session,)).fetchall()
    out = []
    for v in venues:
        mine = [{"supervisor": r[1], "remark": r[2], "signed": r[3], "state": r[4], "code": r[5]} for r in rows if r[0] == v["site"]]
        out.append({"site": v["site"], "name": v["name"], "signoffs": mine,
                    "signed": any(s["state"] == "signed" for s in mine)})
    return out


def unsigned_venues(conn: Any, session: str, venues: list[dict[str, str]]) -> list[str]:
    """The names of the venues no supervisor has signed for yet."""
    return [v["name"] for v in signoffs(conn, session, venues) if not v["signed"]]
