"""Clarifications (澄清): the chair's question to a bidder, the broadcast call to the clarification
room, the visit in the clarification register, and the answer staff record. Questions and answers
are free text: ID and bank card numbers in them are masked where they enter."""

from __future__ import annotations

from appliance.evaluation.base import EvaluationError, _chair, _need, _now
from appliance.personal import redact_personal_data
from appliance.site import Site


def ask_clarification(site: Site, session: str, chair: int, bidder: str, question: str, *, room: str) -> int:
    """The chair's question to a bidder: journaled, and a broadcast call asks the bidder's
    representative to the clarification room — played where they wait (the open zones: never
    the evaluation area, where no bidder is)."""
    from appliance.siteops.calls import CallError, call_bidder

    with site.store.transaction() as conn:
        _need(conn, session, "evaluating", "submitted", "opinions")
        _chair(conn, session, chair)
        company = conn.execute("SELECT name FROM eval_bidders WHERE session = ? AND bidder = ?", (session, bidder)).fetchone()
        place = conn.execute("SELECT name FROM rooms WHERE id = ?", (room,)).fetchone()
        if company is None or place is None:
            raise EvaluationError("unknown", "unknown bidder or room")
        question = redact_personal_data(question).strip()[:2000]
        if not question:
            raise EvaluationError("empty", "write the question")
        cur = conn.execute("INSERT INTO eval_clarifications (session, bidder, question, asked_by, asked) VALUES (?, ?, ?, ?, ?)",
                           (session, bidder, question, chair, _now(site)))
        try:
            text = call_bidder(site, session, bidder, room, by=f"chair:{chair}", conn=conn)["text"]
        except CallError as exc:
            raise EvaluationError("unknown", str(exc)) from exc
        site.journal.append(conn, "evaluation.clarification_asked", {"session": session, "bidder": bidder, "chair": chair,
                                                                     "question": question, "call": text,
                                                                     "clarification": cur.lastrowid})
        return int(cur.lastrowid or 0)


def clarification_visit(site: Site, clarification: int, people: int, *, by: str) -> int:
    """The bidder's representatives arrived in the clarification room: their visit is entered in
    the clarification register (at most two people in the room at once, 001 annex 3)."""
    from appliance.siteops.registers import RegisterError, add_entry

    with site.store.transaction() as conn:  # the register's entry and the question's link to it, together
        row = conn.execute("SELECT session, bidder, answered, visit FROM eval_clarifications WHERE id = ?",
                           (clarification,)).fetchone()
        if row is None or row[2]:
            raise EvaluationError("no_question", "no such open question")
        if row[3]:
            raise EvaluationError("visit_registered", "the visit is registered already")
        try:
            entry = add_entry(site, "clarification", {"session": row[0], "bidder": row[1], "people": people}, by=by, conn=conn)
        except RegisterError as exc:
            raise EvaluationError("room_full" if exc.code == "room_full" else "bad_visit", str(exc)) from exc
        conn.execute("UPDATE eval_clarifications SET visit = ? WHERE id = ?", (entry, clarification))
    return entry


def record_answer(site: Site, clarification: int, answer: str, *, by: str) -> None:
    """The bidder's answer, recorded by staff; the clarification-room visit (if registered) ends."""
    from appliance.siteops.registers import close_entry

    with site.store.transaction() as conn:
        row = conn.execute("SELECT session, bidder, answered, visit FROM eval_clarifications WHERE id = ?", (clarification,)).fetchone()
        if row is None or row[2]:
            raise EvaluationError("no_question", "no such open question")
        answer = redact_personal_data(answer).strip()[:4000]
        if not answer:
            raise EvaluationError("empty", "write the answer")
        conn.execute("UPDATE eval_clarifications SET answer = ?, answered = ? WHERE id = ?", (answer, _now(site), clarification))
        site.journal.append(conn, "evaluation.clarification_answered", {"session": row[0], "bidder": row[1], "clarification": clarification,
                                                                        "answer": answer, "recorded_by": by})
        if row[3] and conn.execute("SELECT 1 FROM register_entries WHERE id = ? AND closed IS NULL", (row[3],)).fetchone():
            close_entry(site, row[3], by=by, conn=conn)  # the visit ends with the answer, in the same write
