"""Evaluation terminals (评标终端): the screens at the evaluation room's desks.

A terminal is a registered kiosk device (purpose ``evaluation``) that stands in one room and has
a desk ID card reader. A committee member signs in by tapping the resident ID card on that
reader (000 §三(六): 评标专家进入评标系统): the devices service hands the card to
`card_sign_in`, which checks, in one transaction with its journal record,

* that the card is valid today and known to the site;
* that the room has an evaluation under way and the person is on its committee;
* that the person is inside the closed evaluation area (passed the gate), when the room is in one;

and then seats the member at this terminal: from then on the terminal acts for that member only,
until the member signs out or taps in at another terminal (one terminal per member, one member
per terminal). Every tap, accepted or refused, is journaled (``evaluation.terminal_tap``) with the
masked ID number, never the number.

`screen` gathers what a seated member sees — the state of the evaluation, the committee's
progress, the open step with the member's own marks, the vote, the clarifications, the results,
the report — from the committee's tables. The actions themselves are committee.py's and
report.py's functions, called with the seated member as the actor.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from appliance.clock import utc_timestamp
from appliance.evaluation import committee, darkbid, remote, venue_signoff
from appliance.evaluation.committee import EvaluationError
from appliance.personal import mask_id_number
from appliance.site import Site

# What a refused tap says, by code (the terminal words it; docs/evaluation.md lists them).
REFUSALS = ("card_invalid", "unknown_person", "no_evaluation", "evaluation_finished", "not_member", "not_inside",
            "session_suspended", "session_terminated", "other_venue")


@dataclass(frozen=True)
class Terminal:
    kiosk_id: int
    name: str
    room: str | None
    reader: str | None


def terminal_for_reader(site: Site, reader: str) -> Terminal | None:
    row = site.store.reader().execute(
        "SELECT id, name, room, reader FROM kiosks WHERE reader = ? AND purpose = 'evaluation' AND disabled = 0", (reader,)).fetchone()
    return Terminal(*row) if row else None


def current_session(conn: Any, room: str | None) -> str | None:
    """The evaluation session of the room that a member signing in now means: one whose
    evaluation has begun and whose session is still open, the unfinished before the finished."""
    if room is None:
        return None
    # (At a secondary venue of a remote committee there is no evaluation here: the session is
    # under way once the main venue has sent its members' screens, remote.py.)
    row = conn.execute(
        """SELECT s.id FROM sessions s LEFT JOIN evaluations e ON e.session = s.id
           WHERE s.room = ? AND s.state IN ('admitting', 'in_progress', 'suspended')
             AND (e.session IS NOT NULL OR EXISTS (SELECT 1 FROM remote_screens x WHERE x.session = s.id))
           ORDER BY (COALESCE(e.state, '') = 'finalized' AND EXISTS (SELECT 1 FROM eval_reports r WHERE r.session = s.id)), s.start DESC
           LIMIT 1""", (room,)).fetchone()
    return row[0] if row else None


def finished_today(conn: Any, room: str | None, day: str) -> dict[str, Any] | None:
    """The room's evaluation of ``day`` (venue date) whose report is issued and sealed, when no
    other evaluation is under way there: the terminal says it is over instead of inviting a
    sign-in. {"session", "section_name", "issued"} or None."""
    if room is None:
        return None
    current = current_session(conn, room)
    row = conn.execute(
        """SELECT s.id, s.section_name, r.issued FROM sessions s JOIN eval_reports r ON r.session = s.id
           WHERE s.room = ? AND s.day = ? AND (? IS NULL OR s.id = ?) ORDER BY r.issued DESC LIMIT 1""",
        (room, day, current, current)).fetchone()
    return dict(zip(("session", "section_name", "issued"), row)) if row else None


def _refusal(conn: Any, room: str | None, session: str | None, person_id: int | None, card_valid: bool) -> str | None:
    if not card_valid:
        return "card_invalid"
    if person_id is None:
        return "unknown_person"
    if session is None:
        return "no_evaluation"
    if conn.execute("SELECT 1 FROM eval_reports WHERE session = ?", (session,)).fetchone():
        return "evaluation_finished"  # the report is sealed: nothing is left to sign in for
    seated_at = conn.execute("SELECT venue FROM roster WHERE session = ? AND person_id = ? AND role IN (?, ?)",
                             (session, person_id, *committee.MEMBER_ROLES)).fetchone()
    if seated_at is not None and seated_at[0] is not None:
        return "other_venue"  # a remote committee's member signs in where the plan seats them
    if conn.execute("SELECT 1 FROM evaluations WHERE session = ?", (session,)).fetchone() is None:
        # A secondary venue of a remote committee: a member on this venue's roster, not recused.
        if seated_at is None or conn.execute("SELECT 1 FROM checkins WHERE session = ? AND person_id = ? AND conflict_declared = 1",
                                             (session, person_id)).fetchone():
            return "not_member"
    elif conn.execute("SELECT 1 FROM eval_members WHERE session = ? AND person_id = ? AND left IS NULL",
                      (session, person_id)).fetchone() is None:
        return "not_member"
    held = conn.execute("SELECT state FROM sessions WHERE id = ? AND state IN ('suspended', 'terminated')", (session,)).fetchone()
    if held:
        return f"session_{held[0]}"
    closed_zone = conn.execute("SELECT z.id FROM rooms r JOIN zones z ON z.id = r.zone WHERE r.id = ? AND z.closed = 1",
                               (room,)).fetchone()
    if closed_zone and conn.execute("SELECT 1 FROM presence WHERE person_id = ? AND zone = ?",
                                    (person_id, closed_zone[0])).fetchone() is None:
        return "not_inside"
    return None


def card_sign_in(site: Site, terminal: Terminal, *, id_number: str, card_valid: bool) -> dict[str, Any]:
    """A card tapped on the terminal's desk reader: seat the member, or say why not. Returns
    {"outcome", "session", "person_id", "seq"}; the tap is journaled either way."""
    token = site.personal.token("person.id_number", id_number.upper())
    now = utc_timestamp(site.clock.now())
    with site.store.transaction() as conn:
        person = conn.execute("SELECT id FROM people WHERE id_token = ?", (token,)).fetchone()
        person_id = person[0] if person else None
        session = current_session(conn, terminal.room)
        outcome = _refusal(conn, terminal.room, session, person_id, card_valid) or "signed_in"
        seated_here = conn.execute("SELECT 1 FROM eval_terminals WHERE kiosk_id = ? AND session = ? AND person_id = ?",
                                   (terminal.kiosk_id, session, person_id)).fetchone() is not None
        if outcome == "signed_in" and not seated_here:  # the same card again (left on the reader): the seat stays
            # The member leaves any other terminal; whoever sat here is signed out of it.
            conn.execute("UPDATE eval_terminals SET session = NULL, person_id = NULL, since = NULL "
                         "WHERE session = ? AND person_id = ? AND kiosk_id != ?", (session, person_id, terminal.kiosk_id))
            conn.execute("""INSERT INTO eval_terminals (kiosk_id, session, person_id, since) VALUES (?, ?, ?, ?)
                            ON CONFLICT (kiosk_id) DO UPDATE SET session = excluded.session, person_id = excluded.person_id,
                            since = excluded.since""", (terminal.kiosk_id, session, person_id, now))
            if remote.is_secondary(site, conn, session):  # signed in at the main venue, through the relay
                remote.forward(site, session, person_id, "sign_in", {"terminal": f"{site.config.site.id}/{terminal.name}"},
                               terminal=terminal.name, conn=conn)
            else:
                committee.sign_in(site, session, person_id, conn, terminal=terminal.name)
        record = site.journal.append(conn, "evaluation.terminal_tap", {
            "terminal": terminal.name, "room": terminal.room, "session": session, "person_id": person_id,
            "id_masked": mask_id_number(id_number), "outcome": outcome})
        conn.execute("""INSERT INTO eval_terminals (kiosk_id, last_outcome, last_seq) VALUES (?, ?, ?)
                        ON CONFLICT (kiosk_id) DO UPDATE SET last_outcome = excluded.last_outcome, last_seq = excluded.last_seq""",
                     (terminal.kiosk_id, outcome, record.seq))
    return {"outcome": outcome, "session": session, "person_id": person_id, "seq": record.seq}


def seat(site: Site, kiosk_id: int) -> tuple[str, int] | None:
    """(session, person_id) of the member this terminal acts for, if any: seated here, and still
    inside the closed area of the terminal's room (a member who left through the gate no longer
    has a terminal acting for them)."""
    row = site.store.reader().execute(
        """SELECT t.session, t.person_id FROM eval_terminals t JOIN kiosks k ON k.id = t.kiosk_id
           LEFT JOIN rooms r ON r.id = k.room LEFT JOIN zones z ON z.id = r.zone
           WHERE t.kiosk_id = ? AND t.person_id IS NOT NULL
             AND (z.closed IS NOT 1 OR EXISTS (SELECT 1 FROM presence p WHERE p.person_id = t.person_id AND p.zone = z.id))""",
        (kiosk_id,)).fetchone()
    return (row[0], row[1]) if row else None


def seat_token(site: Site, kiosk_id: int) -> str:
    """Names the seating a screen was drawn for: every form carries it, and an action is refused
    when the terminal has meanwhile been taken by another member (or left and taken again)."""
    row = site.store.reader().execute("SELECT person_id, since FROM eval_terminals WHERE kiosk_id = ? AND person_id IS NOT NULL",
                                      (kiosk_id,)).fetchone()
    return f"{row[0]}@{row[1]}" if row else ""


def last_tap(site: Site, kiosk_id: int) -> dict[str, Any] | None:
    row = site.store.reader().execute("SELECT last_outcome, last_seq FROM eval_terminals WHERE kiosk_id = ? AND last_seq IS NOT NULL",
                                      (kiosk_id,)).fetchone()
    return {"outcome": row[0], "seq": row[1]} if row else None


def sign_out(site: Site, kiosk_id: int, terminal_name: str) -> None:
    with site.store.transaction() as conn:
        row = conn.execute("SELECT session, person_id FROM eval_terminals WHERE kiosk_id = ? AND person_id IS NOT NULL",
                           (kiosk_id,)).fetchone()
        if row is None:
            return
        conn.execute("UPDATE eval_terminals SET session = NULL, person_id = NULL, since = NULL WHERE kiosk_id = ?", (kiosk_id,))
        site.journal.append(conn, "evaluation.terminal_signed_out", {"terminal": terminal_name, "session": row[0],
                                                                     "person_id": row[1]})


def fingerprint(site: Site, kiosk_id: int) -> str:
    """Changes whenever anything a terminal shows may have changed: the screen reloads on it."""
    conn = site.store.reader()
    seated = seat(site, kiosk_id)
    tap = last_tap(site, kiosk_id)
    parts: list[Any] = [seated, tap]
    if not seated:  # the idle screen: which evaluation the room has, and whether its report is sealed
        room = conn.execute("SELECT room FROM kiosks WHERE id = ?", (kiosk_id,)).fetchone()
        current = current_session(conn, room[0] if room else None)
        parts += [current, [tuple(r) for r in conn.execute(
            "SELECT r.session FROM eval_reports r JOIN sessions s ON s.id = r.session WHERE s.room = ?",
            (room[0] if room else None,))]]
    if seated and remote.is_secondary(site, conn, seated[0]):  # what the main venue sent, and this venue's link
        session, person_id = seated
        parts += [[tuple(r) for r in conn.execute(
            "SELECT s.version FROM remote_screens s JOIN person_refs f ON f.ref = s.person_ref WHERE s.session = ? AND f.person_id = ?",
            (session, person_id))],
                  [tuple(r) for r in conn.execute("SELECT seq, state FROM remote_actions WHERE session = ? AND person_id = ?",
                                                  (session, person_id))],
                  [tuple(r) for r in conn.execute("SELECT venue, connected FROM remote_links WHERE session = ?", (session,))]]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]
    if seated:
        session = seated[0]
        parts += session_parts(conn, session)
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def session_parts(conn: Any, session: str) -> list[Any]:
    """What any screen of the session's committee shows may depend on, but a member's own marks
    (the main venue of a remote committee adds those when it decides to send new screens)."""
    parts: list[Any] = [tuple(conn.execute("SELECT state, chair, vote_round, finalized FROM evaluations WHERE session = ?",
                                           (session,)).fetchone() or ()),
                        conn.execute("SELECT state FROM sessions WHERE id = ?", (session,)).fetchone()[0]]
    for query in ("SELECT step, state FROM eval_steps WHERE session = ? ORDER BY position",
                  "SELECT COUNT(*) FROM eval_votes WHERE session = ?",
                  "SELECT step, COUNT(*) FROM eval_step_submissions WHERE session = ? GROUP BY step ORDER BY step",
                  "SELECT person_id, signed_in, read_confirmed, agreed, report_signed, left FROM eval_members WHERE session = ? "
                  "ORDER BY person_id",
                  "SELECT id, answered FROM eval_clarifications WHERE session = ? ORDER BY id",
                  "SELECT id, approved FROM eval_reopens WHERE session = ?",
                  "SELECT pdf_sha256 FROM eval_reports WHERE session = ?",
                  "SELECT kiosk_id, person_id FROM eval_terminals WHERE session = ? ORDER BY kiosk_id",
                  "SELECT venue, connected FROM remote_links WHERE session = ? ORDER BY venue",
                  "SELECT venue, supervisor, state FROM venue_signoffs WHERE session = ? ORDER BY venue, supervisor"):
        parts.append([tuple(r) for r in conn.execute(query, (session,))])
    return parts


# -- what a seated member sees ----------------------------------------------------------------

def _dark_marks(site: Site, conn: Any, session: str, step: str, me: int, alerts: list[str]) -> dict[str, dict[str, Any]] | None:
    """For a dark-reviewed step still under review: the member's own view by label, with the
    member's marks (and which of them need an explanation) resolved back to labels — the screen
    never learns the bidder."""
    row = conn.execute("SELECT revealed FROM dark_reviews WHERE session = ? AND step = ?", (session, step)).fetchone()
    if row is None or row[0]:
        return None
    seed, chapters, _ = darkbid._review(site, conn, session, step)
    mine = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
        "SELECT bidder, criterion, value, explanation FROM eval_marks WHERE session = ? AND step = ? AND person_id = ?",
        (session, step, me))}
    out: dict[str, dict[str, Any]] = {}
    for section in darkbid.view(site, session, step, me):
        c = section["chapter"]
        order = darkbid.shuffle(seed, f"{me}|{c}", sorted(chapters))
        for item, bidder in zip(section["items"], order, strict=True):
            value, why = mine.get((bidder, section["criterion"]), ("", ""))
            out.setdefault(section["criterion"], {})[item["label"]] = {
                "chapter_sha256": item["chapter_sha256"], "value": value, "explanation": why,
                "alert": f"{bidder}/{section['criterion']}" in alerts}
    return out


def screen(site: Site, session: str, me: int) -> dict[str, Any]:
    """Everything the member's terminal shows, as plain data for the template."""
    conn = site.store.reader()
    ev = conn.execute("SELECT state, chair, vote_round, template, results FROM evaluations WHERE session = ?", (session,)).fetchone()
    if ev is None:
        raise EvaluationError("no_evaluation", f"session {session} has no evaluation")
    template = json.loads(ev["template"])
    info = conn.execute("""SELECT s.section_code, s.section_name, s.state, s.start, s.end, r.name AS room FROM sessions s
                           JOIN rooms r ON r.id = s.room WHERE s.id = ?""", (session,)).fetchone()
    terminals = dict(conn.execute("SELECT t.person_id, k.name FROM eval_terminals t JOIN kiosks k ON k.id = t.kiosk_id "
                                  "WHERE t.session = ? AND t.person_id IS NOT NULL", (session,)).fetchall())
    round_ = ev["vote_round"]
    voted = {r[0]: r[1] for r in conn.execute("SELECT voter, candidate FROM eval_votes WHERE session = ? AND round = ?",
                                              (session, round_))}
    states = dict(conn.execute("SELECT step, state FROM eval_steps WHERE session = ?", (session,)).fetchall())
    steps = [{**st, "state": states[st["id"]]} for st in template["steps"]]
    open_step = next((s for s in steps if s["state"] == "open"), None)
    submitted = {r[0] for r in conn.execute("SELECT person_id FROM eval_step_submissions WHERE session = ? AND step = ?",
                                            (session, open_step["id"]))} if open_step else set()
    members = []
    for m in conn.execute("""SELECT m.person_id, m.role, m.signed_in, m.read_confirmed, m.agreed, m.report_signed, m.report_agrees,
                                    p.name_masked FROM eval_members m JOIN people p ON p.id = m.person_id
                             WHERE m.session = ? AND m.left IS NULL ORDER BY m.person_id""", (session,)):
        members.append({"person_id": m["person_id"], "name": m["name_masked"], "role": m["role"], "me": m["person_id"] == me,
                        "chair": m["person_id"] == ev["chair"], "terminal": terminals.get(m["person_id"]),
                        "signed_in": bool(m["signed_in"]), "read": bool(m["read_confirmed"]), "voted": m["person_id"] in voted,
                        "submitted": m["person_id"] in submitted, "agreed": bool(m["agreed"]),
                        "report_signed": bool(m["report_signed"]), "report_agrees": m["report_agrees"]})
    link = remote.link_state(site, conn, session)
    if link is not None:  # a remote committee: each member with the venue they sit at
        venue_names = {v["site"]: v["name"] for v in link["venues"]}
        main = next(v["site"] for v in link["venues"] if v["main"])
        venue_of = dict(conn.execute("SELECT person_id, venue FROM roster WHERE session = ?", (session,)).fetchall())
        for m in members:
            m["venue"] = venue_names.get(venue_of.get(m["person_id"]) or main)
        link["signoffs"] = [{"name": v["name"], "signed": v["signed"]}
                            for v in venue_signoff.signoffs(conn, session, [{"site": v["site"], "name": v["name"]} for v in link["venues"]])]
    mine = next(m for m in members if m["me"])
    active = committee.active_bidders(conn, session)
    bidders = [{"bidder": r[0], "name": r[1], "price": r[2], "valid": bool(r[3]), "active": r[0] in active}
               for r in conn.execute("SELECT bidder, name, price, valid FROM eval_bidders WHERE session = ? ORDER BY bidder", (session,))]
    names = {b["bidder"]: b["name"] for b in bidders}
    may_chair = template.get("tenderer_representative_may_chair", False)
    rounds = [{"round": r.payload["round"], "chair": r.payload["chair"],
               "tally": [{"name": next((m["name"] for m in members if str(m["person_id"]) == k), k), "votes": v}
                         for k, v in r.payload["tally"].items()]}
              for r in site.journal.records(kind="evaluation.vote_round") if r.payload["session"] == session]
    out: dict[str, Any] = {
        "session": session, "state": ev["state"], "session_state": info["state"], "section_code": info["section_code"],
        "section_name": info["section_name"], "room": info["room"], "template_name": template.get("name", ""),
        "me": mine, "is_chair": ev["chair"] == me, "chair": next((m for m in members if m["chair"]), None),
        "members": members, "bidders": bidders, "steps": steps, "open_step": open_step,
        "vote": {"round": round_, "my_vote": voted.get(me), "rounds": rounds,
                 "candidates": [m for m in members if m["role"] == "expert" or may_chair]},
        "clarifications": [{"id": r[0], "bidder": names.get(r[1], r[1]), "question": r[2], "answer": r[3]} for r in conn.execute(
            "SELECT id, bidder, question, answer FROM eval_clarifications WHERE session = ? ORDER BY id", (session,))],
        "reopens": [{"id": r[0], "step": r[1], "reason": r[2], "approved": bool(r[3])} for r in conn.execute(
            "SELECT id, step, reason, approved FROM eval_reopens WHERE session = ? ORDER BY id", (session,))],
        "remote": link,
        "clarification_rooms": [{"id": r[0], "name": r[1]} for r in conn.execute(
            "SELECT id, name FROM rooms WHERE kind = 'clarification' ORDER BY id")],
    }
    if open_step and open_step["kind"] != "price":
        marks = {(r[0], r[1]): {"value": r[2], "explanation": r[3]} for r in conn.execute(
            "SELECT bidder, criterion, value, explanation FROM eval_marks WHERE session = ? AND step = ? AND person_id = ?",
            (session, open_step["id"], me))}
        out["marks"] = {f"{b}|{c}": v for (b, c), v in marks.items()}
        out["i_submitted"] = me in submitted
        out["alerts"] = committee._alerts(conn, template, session, open_step, me)
        out["dark"] = _dark_marks(site, conn, session, open_step["id"], me, out["alerts"])
        if out["dark"] is not None:
            # "B2/plan" would name the bidder behind a label: the form marks the labels instead;
            # and the marks by bidder stay off the screen's data (a remote venue receives it).
            out["alerts"], out["marks"] = [], {}
    if open_step and open_step["kind"] == "price":
        out["price_preview"] = [r.as_json() for r in committee._engine(conn, template, session, active)]
    confirmed = [s for s in steps if s["state"] == "confirmed"]
    out["confirmed_steps"] = confirmed
    if ev["state"] in ("opinions", "submitted", "finalized"):
        out["my_scores"] = [{"step": r[0], "step_name": next(s["name"] for s in steps if s["id"] == r[0]), "bidder": r[1],
                             "bidder_name": names.get(r[1], r[1]), "criterion": r[2],
                             "criterion_name": next(c["name"] for s in steps if s["id"] == r[0] for c in s["criteria"] if c["id"] == r[2]),
                             "max": next(c.get("max") for s in steps if s["id"] == r[0] for c in s["criteria"] if c["id"] == r[2]),
                             "value": r[3]}
                            for r in conn.execute("SELECT step, bidder, criterion, value FROM eval_marks WHERE session = ? AND person_id = ? "
                                                  "ORDER BY step, bidder, criterion", (session, me))
                            if next(s["kind"] for s in steps if s["id"] == r[0]) == "scoring"]
    if ev["results"]:
        results = json.loads(ev["results"])
        out["results"] = sorted(({**r, "name": names.get(r["bidder"], r["bidder"])} for r in results),
                                key=lambda r: (r["rank"] is None, r["rank"] or 0, r["bidder"]))
    report = conn.execute("SELECT pdf_sha256, issued FROM eval_reports WHERE session = ?", (session,)).fetchone()
    out["report"] = {"pdf_sha256": report[0], "issued": report[1]} if report else None
    return out
