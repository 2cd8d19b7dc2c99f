"""The committee's progress for site staff and supervisors (评标过程监管): today's evaluations,
each one's members and terminals, steps and submissions, reopening requests (a supervisor
approves), clarification questions (staff register the bidder's visit to the clarification room
and record the answer), the results and the issued report.

Staff start an evaluation here: a template the site holds (from the center's feed, or loaded
with `appliance eval template`) and the prices of the signed-off opening record.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance.evaluation import committee, opening, remote, report, seating, venue_signoff
from appliance.evaluation.base import MEMBER_ROLES
from appliance.evaluation.committee import EvaluationError
from appliance.siteops.noshow import request_replacement
from kiosk_ui.access import allow
from kiosk_ui.evaluation import error_texts
from kiosk_ui.forms import ActionForm

bp = Blueprint("committee", __name__, url_prefix="/committee")
VENUE_TZ = ZoneInfo("Asia/Shanghai")


def state_texts() -> dict[str, str]:
    return {"signing_in": _("Signing in"), "electing": _("Electing the chair"), "evaluating": _("Evaluating"),
            "submitted": _("All steps confirmed"), "opinions": _("Opinions"), "finalized": _("Results final"),
            "not_started": _("Not started")}


def _site() -> Any:
    return current_app.extensions["site"]


def _by() -> str:
    return g.user.username


def _back(session: str) -> Any:
    return redirect(url_for("committee.detail", session_id=session))


def _checked() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


@bp.get("/")
@allow("staff", "supervisor", "admin")
def home() -> Any:
    day = _site().clock.now().astimezone(VENUE_TZ).date().isoformat()
    rows = _site().store.reader().execute(
        """SELECT s.id, s.kind, s.section_name, s.start, s.state AS session_state, r.name AS room, e.state, o.state AS opening
           FROM sessions s JOIN rooms r ON r.id = s.room LEFT JOIN evaluations e ON e.session = s.id
           LEFT JOIN openings o ON o.session = s.id
           WHERE s.kind IN ('opening', 'evaluation') AND (s.day = ? OR e.state IS NOT NULL AND e.state != 'finalized')
           ORDER BY s.start""", (day,)).fetchall()
    sessions = [dict(r) for r in rows]
    conn = _site().store.reader()
    for s in sessions:  # held at another venue (远程异地评标): its state as the main venue's screens say
        if s["state"] is None and remote.is_secondary(_site(), conn, s["id"]):
            s["state"] = remote.shown_state(conn, s["id"])
    return render_template("committee_home.html", sessions=sessions, states=state_texts())


def _detail(session: str) -> dict[str, Any]:
    conn = _site().store.reader()
    info = conn.execute("""SELECT s.id, s.section_code, s.section_name, s.state, s.start, r.name AS room FROM sessions s
                           JOIN rooms r ON r.id = s.room WHERE s.id = ? AND s.kind = 'evaluation'""", (session,)).fetchone()
    if info is None:
        abort(404)
    out: dict[str, Any] = {"info": dict(info)}
    held = remote.remote_of(_site(), conn, session)
    if held is not None:  # a remote evaluation (远程异地评标): the link, and each venue's supervisors' sign-off
        out["remote"] = {**(remote.link_state(_site(), conn, session) or {}), "me": held.me, "my_name": held.name(held.me),
                         "signoffs": venue_signoff.signoffs(conn, session, held.venues)}
        if not held.is_main:
            return _secondary(conn, session, out)
    ev = conn.execute("SELECT state, chair, vote_round, template FROM evaluations WHERE session = ?", (session,)).fetchone()
    if ev is None:
        out["state"] = "not_started"
        out["templates"] = committee.templates(_site())
        try:
            out["bids"] = _opening_bids(session)
        except EvaluationError as exc:
            out["bids"], out["bids_problem"] = [], str(exc)
        row = conn.execute("SELECT id FROM sessions WHERE kind = 'opening' AND section_code = ? ORDER BY start DESC LIMIT 1",
                           (info["section_code"],)).fetchone()
        out["opening_session"] = row[0] if row else None
        out["seating"] = seating.before_start(conn, session)
        out["bidder_names"] = dict(conn.execute("SELECT bidder, name FROM session_bidders WHERE session = ?", (session,)).fetchall())
        return out
    out["seating"] = seating.seating(conn, session)
    out["state"] = ev["state"]
    names = {r[0]: r[1] for r in conn.execute("SELECT bidder, name FROM eval_bidders WHERE session = ?", (session,))}
    terminals = dict(conn.execute("SELECT t.person_id, k.name FROM eval_terminals t JOIN kiosks k ON k.id = t.kiosk_id "
                                  "WHERE t.session = ? AND t.person_id IS NOT NULL", (session,)).fetchall())
    open_step = conn.execute("SELECT step FROM eval_steps WHERE session = ? AND state = 'open'", (session,)).fetchone()
    submitted = {r[0] for r in conn.execute("SELECT person_id FROM eval_step_submissions WHERE session = ? AND step = ?",
                                            (session, open_step[0]))} if open_step else set()
    out["members"] = [{"person_id": m["person_id"], "name": m["name_masked"], "role": m["role"],
                       "chair": m["person_id"] == ev["chair"],
                       "terminal": terminals.get(m["person_id"]), "signed_in": bool(m["signed_in"]),
                       "read": bool(m["read_confirmed"]), "submitted": m["person_id"] in submitted,
                       "agreed": bool(m["agreed"]), "signed": bool(m["report_signed"])}
                      for m in conn.execute("""SELECT m.*, p.name_masked FROM eval_members m JOIN people p ON p.id = m.person_id
                                               WHERE m.session = ? AND m.left IS NULL ORDER BY m.person_id""", (session,))]
    steps = {st["id"]: st["name"] for st in committee._loads(ev["template"])["steps"]}
    out["steps"] = [{"id": r[0], "name": steps.get(r[0], r[0]), "state": r[1]} for r in conn.execute(
        "SELECT step, state FROM eval_steps WHERE session = ? ORDER BY position", (session,))]
    out["reopens"] = [{"id": r[0], "step": steps.get(r[1], r[1]), "reason": r[2], "requested": r[3], "approved_by": r[4]}
                      for r in conn.execute("SELECT id, step, reason, requested, approved_by FROM eval_reopens WHERE session = ? "
                                            "ORDER BY id", (session,))]
    out["clarifications"] = [{"id": r[0], "bidder": names.get(r[1], r[1]), "question": r[2], "asked": r[3], "answer": r[4],
                              "visit": r[5]} for r in conn.execute(
        "SELECT id, bidder, question, asked, answer, visit FROM eval_clarifications WHERE session = ? ORDER BY id", (session,))]
    results = conn.execute("SELECT results FROM evaluations WHERE session = ?", (session,)).fetchone()[0]
    if results:
        out["results"] = sorted(({**r, "name": names.get(r["bidder"], r["bidder"])} for r in json.loads(results)),
                                key=lambda r: (r["rank"] is None, r["rank"] or 0, r["bidder"]))
    out["report"] = conn.execute("SELECT pdf_sha256, issued FROM eval_reports WHERE session = ?", (session,)).fetchone()
    return out


def _secondary(conn: Any, session: str, out: dict[str, Any]) -> dict[str, Any]:
    """At a secondary venue the committee is held at the main venue: this venue's members, as
    the main venue's screens for them say, and the evaluation's state from those screens."""
    members, state, issued = [], "not_started", None
    for r in conn.execute("""SELECT r.person_id, r.role, p.name_masked FROM roster r JOIN people p ON p.id = r.person_id
                             WHERE r.session = ? ORDER BY r.person_id""", (session,)).fetchall():
        if r["role"] not in MEMBER_ROLES:
            continue
        shown = remote.screen(_site(), session, r["person_id"])
        me = (shown or {}).get("me") or {}
        state = (shown or {}).get("state", state)
        issued = issued or (shown or {}).get("report")
        members.append({"person_id": r["person_id"], "name": r["name_masked"], "role": r["role"], "chair": bool(me.get("chair")),
                        "signed_in": bool(me.get("signed_in")), "signed": bool(me.get("report_signed")),
                        "pending": remote.pending(conn, session, r["person_id"])})
    return {**out, "secondary": True, "state": state, "members": members, "seating": {}, "report": issued}


def _opening_bids(session: str) -> list[dict[str, Any]]:
    """The prices of the section's signed-off opening record, for this session's bidders."""
    conn = _site().store.reader()
    section = conn.execute("SELECT section_code FROM sessions WHERE id = ?", (session,)).fetchone()[0]
    ours = {r[0] for r in conn.execute("SELECT bidder FROM session_bidders WHERE session = ?", (session,))}
    try:
        bids = opening.bids_for_evaluation(_site(), section)
    except opening.OpeningError as exc:
        raise EvaluationError("no_opening", str(exc)) from exc
    return [b for b in bids if b["bidder"] in ours]


@bp.get("/<session_id>")
@allow("staff", "supervisor", "admin")
def detail(session_id: str) -> Any:
    return render_template("committee_detail.html", d=_detail(session_id), session_id=session_id, states=state_texts(),
                           errors=error_texts(), form=ActionForm())


@bp.post("/<session_id>/start")
@allow("staff", "admin")
def start(session_id: str) -> Any:
    if _site().store.reader().execute("SELECT 1 FROM sessions WHERE id = ? AND kind = 'evaluation'", (session_id,)).fetchone() is None:
        abort(404)
    _checked()
    try:
        template = committee.template_by_id(_site(), request.form.get("template", ""))
        committee.start(_site(), session_id, template, _opening_bids(session_id), by=_by())
        flash(_("The evaluation has begun: members sign in at the room's terminals."))
    except EvaluationError as exc:
        flash(str(exc) if exc.code in ("no_opening", "bad_bids", "no_template", "bad_template")
              else error_texts().get(exc.code, str(exc)))
    return _back(session_id)


def _evaluation_or_404(session_id: str) -> None:
    if _site().store.reader().execute("SELECT 1 FROM sessions WHERE id = ? AND kind = 'evaluation'", (session_id,)).fetchone() is None:
        abort(404)
    _checked()


@bp.post("/<session_id>/replacement/<int:person_id>")
@allow("staff", "admin")
def replacement(session_id: str, person_id: int) -> Any:
    """A replacement draw (补抽) for a member who did not come."""
    _evaluation_or_404(session_id)
    if request_replacement(_site(), session_id, person_id, by=_by()):
        flash(_("Replacement draw requested: the center's newer plan brings the replacement."))
    return _back(session_id)


@bp.post("/<session_id>/leave")
@allow("staff", "admin")
def leave(session_id: str) -> Any:
    """A member leaves the committee while it works: its work stops until a replacement sits."""
    _evaluation_or_404(session_id)
    try:
        person_id = int(request.form.get("person", ""))
    except ValueError:
        abort(400)
    try:
        seating.withdraw(_site(), session_id, person_id, reason=request.form.get("reason", ""), by=_by())
        flash(_("The member has left the committee; a replacement draw is requested. The evaluation waits for the replacement."))
    except EvaluationError as exc:
        flash(error_texts().get(exc.code, str(exc)))
    return _back(session_id)


@bp.post("/<session_id>/seat/<int:person_id>")
@allow("staff", "admin")
def seat(session_id: str, person_id: int) -> Any:
    _evaluation_or_404(session_id)
    try:
        seating.seat(_site(), session_id, person_id, by=_by())
        flash(_("Seated: the replacement signs in at a terminal of the room."))
    except EvaluationError as exc:
        flash(error_texts().get(exc.code, str(exc)))
    return _back(session_id)


def _clarification_session(clarification_id: int) -> str:
    row = _site().store.reader().execute("SELECT session FROM eval_clarifications WHERE id = ?", (clarification_id,)).fetchone()
    if row is None:
        abort(404)
    return row[0]


@bp.post("/clarifications/<int:clarification_id>/visit")
@allow("staff", "supervisor", "admin")
def visit(clarification_id: int) -> Any:
    session = _clarification_session(clarification_id)
    _checked()
    try:
        committee.clarification_visit(_site(), clarification_id, int(request.form.get("people") or 1), by=_by())
    except (EvaluationError, ValueError) as exc:
        flash(str(exc))
    return _back(session)


@bp.post("/clarifications/<int:clarification_id>/answer")
@allow("staff", "supervisor", "admin")
def answer(clarification_id: int) -> Any:
    session = _clarification_session(clarification_id)
    _checked()
    try:
        committee.record_answer(_site(), clarification_id, request.form.get("answer", ""), by=_by())
    except EvaluationError as exc:
        flash(error_texts().get(exc.code, str(exc)))
    return _back(session)


@bp.post("/reopens/<int:request_id>/approve")
@allow("supervisor")
def approve(request_id: int) -> Any:
    row = _site().store.reader().execute("SELECT session FROM eval_reopens WHERE id = ?", (request_id,)).fetchone()
    if row is None:
        abort(404)
    _checked()
    try:
        committee.approve_reopen(_site(), request_id, supervisor=_by())
        flash(_("Approved: the step is open again."))
    except EvaluationError as exc:
        flash(error_texts().get(exc.code, str(exc)))
    return _back(row[0])


@bp.post("/<session_id>/venue-sign")
@allow("supervisor")
def venue_sign(session_id: str) -> Any:
    """A supervisor of this venue signs for its part of a remote evaluation's report."""
    _evaluation_or_404(session_id)
    try:
        outcome = remote.sign_for_venue(_site(), session_id, supervisor=_by(), remark=request.form.get("remark", ""))
        flash(_("Signed for this venue's part of the report.") if outcome == "signed"
              else _("Signed: sent to the main venue."))
    except EvaluationError as exc:
        flash(error_texts().get(exc.code, str(exc)))
    return _back(session_id)


@bp.get("/<session_id>/report.pdf")
@allow("staff", "supervisor", "admin")
def report_pdf(session_id: str) -> Any:
    try:
        data = report.read(_site(), session_id, "pdf")
    except EvaluationError as exc:
        if exc.code == "no_report":
            abort(404)
        raise
    stamp = datetime.now(VENUE_TZ).strftime("%Y%m%d")
    return current_app.response_class(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="report-{session_id}-{stamp}.pdf"'})
