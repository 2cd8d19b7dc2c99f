"""The evaluation terminal (评标终端) at a desk of the evaluation room: a registered device, no
personal login. A committee member signs in by tapping the ID card on the desk reader
(appliance.evaluation.terminal); from then on every action on this screen is that member's,
checked by the committee's own rules (appliance.evaluation.committee, report, darkbid).

The screen follows the evaluation: project information and the reading confirmation, the chair
vote, the open step (pass/fail or scores, or labels in a dark review), the chair's confirmations,
reopening requests and clarification questions, opinions and revisions, the results, and the
report's signature. It reloads itself when the evaluation moves on (`/evaluation/state`, polled on
the live-update wake-up) unless the member has unsaved marks.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance.evaluation import actions, remote, terminal
from appliance.evaluation.committee import EvaluationError
from appliance.siteops.checkin import VENUE_TZ
from kiosk_ui.access import allow
from kiosk_ui.forms import ActionForm
from kiosk_ui.words import committee_action_texts

bp = Blueprint("evaluation", __name__, url_prefix="/evaluation")


def tap_texts() -> dict[str, str]:
    """What the idle terminal says after a card tap (appliance.evaluation.terminal.REFUSALS)."""
    return {
        "signed_in": _("Signed in"), "card_invalid": _("The card is not valid"),
        "unknown_person": _("You are not registered for today"),
        "no_evaluation": _("No evaluation has begun in this room: please wait for the staff"),
        "evaluation_finished": _("This evaluation is finished: its report is sealed"),
        "not_member": _("You are not a member of this evaluation committee"),
        "not_inside": _("Please pass the evaluation-area gate first"),
        "session_suspended": _("The session is suspended"), "session_terminated": _("The session is terminated"),
        "other_venue": _("The plan seats you at another venue: please sign in there."),
    }


def error_texts() -> dict[str, str]:
    """Screen words for the committee's refusals (EvaluationError codes)."""
    return {
        "not_chair": _("Only the chair may do this."), "wrong_state": _("This cannot be done at this stage of the evaluation."),
        "waiting": _("Not every member has finished yet."), "explanation_needed":
            _("A score far from the other members' needs a written explanation before you submit."),
        "reason_needed": _("Please give the reason."), "incomplete": _("Please mark every bidder on every criterion first."),
        "voted": _("You have voted in this round."), "not_eligible": _("Under this template the tenderer's representative may not chair."),
        "not_signed_in": _("Please sign in first."), "step_not_open": _("This step is not open."),
        "bad_value": _("A score is outside the criterion's range (at most two decimals)."),
        "submitted": _("You have submitted this step; the chair must reopen it for changes."),
        "bidder_out": _("This bidder is no longer under evaluation."), "agreed": _("You have agreed; the chair must ask again."),
        "no_mark": _("There is no such score to revise."), "empty": _("Please write the text."),
        "signature_needed": _("Please sign first."), "unsigned": _("Not every member has signed the report yet."),
        "session_suspended": _("The session is suspended: the evaluation is paused."),
        "session_terminated": _("The session is terminated."), "bad_label": _("Unknown label."),
        "not_confirmed": _("Only a confirmed step can be reopened."), "not_scoring": _("Only scores can be revised."),
        "no_chromium": _("The report cannot be printed on this appliance (chromium is missing)."),
        "no_criterion": _("Unknown criterion."), "unknown": _("Unknown bidder or room."),
        "no_question": _("This question is answered already."), "no_step": _("Unknown step."),
        "not_member": _("You are not a member of this evaluation committee"),
        "no_evaluation": _("No evaluation has begun in this room: please wait for the staff"),
        "evaluation_finished": _("This evaluation is finished: its report is sealed"),
        "committee_incomplete": _("The committee may not work now: it has fewer members than required or an even number "
                                  "(at least five, an odd number: Law on Tendering and Bidding, article 37). The staff are "
                                  "seating a replacement."),
        "reason_required": _("Please give the reason."), "not_candidate": _("Not a replacement on the session's roster."),
        "committee_paused": _("The committee is paused: a venue of the remote evaluation is not connected. Nothing was done."),
        "other_venue": _("The plan seats you at another venue: please sign in there."),
        "not_remote": _("This evaluation is held here, not at another venue."), "unknown_action": _("Unknown action."),
        "venues_unsigned": _("Not yet: a supervisor of every venue signs for the venue's part of the report first."),
        "members_unsigned": _("Not yet: every member seated at this venue signs the report first."),
        "already_signed": _("You have signed for this venue already."), "report_issued": _("The report is issued already."),
        "venue_signed_off": _("Your venue's supervisor has signed for its part already: the signature can no longer change."),
    }


def _refused(exc: EvaluationError) -> None:
    flash(error_texts().get(exc.code, str(exc)))


def _terminal() -> Any:
    kiosk = g.kiosk
    if kiosk is None or kiosk.purpose != "evaluation":
        abort(404)
    return kiosk


def _site() -> Any:
    return current_app.extensions["site"]


def _seat() -> tuple[str, int]:
    """The member this terminal acts for; a terminal nobody is signed in at acts for no one. The
    form must have been drawn for this very seating: a screen left open when another member
    tapped in acts for nobody."""
    kiosk_id = _terminal().id
    seated = terminal.seat(_site(), kiosk_id)
    if seated is None:  # signed out meanwhile (or moved to another terminal, or left the area)
        flash(_("Nobody is signed in at this terminal."))
        abort(redirect(url_for("evaluation.home")))
    if request.form.get("seat") != terminal.seat_token(_site(), kiosk_id):
        flash(_("This screen was for another sign-in: nothing was done. Please check and act again."))
        abort(redirect(url_for("evaluation.home")))
    return seated


def _act(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A state-changing button: CSRF checked, the committee's refusal shown, back to the screen."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        fn(*args, **kwargs)
    except EvaluationError as exc:
        _refused(exc)
    return redirect(url_for("evaluation.home"))


def _do(session: str, me: int, action: str, args: dict[str, Any]) -> Any:
    """A member's action (appliance.evaluation.actions), CSRF checked. At a secondary venue of a
    remote committee it is journaled here and sent to the main venue, which holds the committee
    (held, and shown as not yet delivered, while the link is down)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    site = _site()
    if remote.is_secondary(site, site.store.reader(), session):
        try:
            remote.forward(site, session, me, action, args, terminal=_terminal().name)
        except EvaluationError as exc:
            _refused(exc)
        else:
            paused = remote.away(site.store.reader(), session)
            flash(_("The link is down: your action is held and will be delivered when it returns.") if paused
                  else _("Sent to the main venue."))
        return redirect(url_for("evaluation.home"))
    try:
        result = actions.perform(site, session, me, action, args)
    except EvaluationError as exc:
        detailed = (action == "marks" and exc.code in ("incomplete", "explanation_needed", "reason_needed")
                    and not actions.dark_under_way(site, session, args["step"]))
        # The details name bidders and criteria; in a dark review still under way the bidders
        # must stay unknown to the member, so only the general reason is said.
        flash(error_texts().get(exc.code, str(exc)) + (f" ({exc})" if detailed else ""))
        return redirect(url_for("evaluation.home"))
    if action == "marks":
        for problem in result["problems"]:
            text = error_texts().get(problem["code"], problem["message"])
            flash(f"{problem['field']}: {text}" if problem["field"] else text)
        if not result["problems"] and not result["submitted"]:
            flash(_("Saved."))
    return redirect(url_for("evaluation.home"))


@bp.get("/")
@allow("kiosk")
def home() -> Any:
    kiosk = _terminal()
    site = _site()
    seated = terminal.seat(site, kiosk.id)
    if seated is None:
        conn = site.store.reader()
        room = conn.execute("SELECT name FROM rooms WHERE id = ?", (kiosk.room,)).fetchone() if kiosk.room else None
        session = terminal.current_session(conn, kiosk.room)
        section = conn.execute("SELECT section_name FROM sessions WHERE id = ?", (session,)).fetchone() if session else None
        today = site.clock.now().astimezone(VENUE_TZ).date().isoformat()
        return render_template("evaluation_home.html", room=room[0] if room else None, section=section[0] if section else None,
                               open=session is not None, finished=terminal.finished_today(conn, kiosk.room, today),
                               tap=terminal.last_tap(site, kiosk.id), taps=tap_texts(),
                               fingerprint=terminal.fingerprint(site, kiosk.id))
    session, me = seated
    conn = site.store.reader()
    if remote.is_secondary(site, conn, session):
        # A secondary venue of a remote committee: the screen the main venue sent for this
        # member, this venue's own view of the link, and the member's actions not yet answered.
        s = remote.screen(site, session, me)
        if s is None:
            abort(503)  # (current_session admits no sign-in before the main venue's first screens)
        # This venue's own view of the links, beside what the main venue's screen says (its venues' sign-offs).
        s = {**s, "remote": {**(s.get("remote") or {}), **(remote.link_state(site, conn, session) or {})},
             "pending": remote.pending(conn, session, me)}
        if s.get("open_step") and s.get("marks") is not None:  # what the member typed and sent, until the main venue has it
            s["marks"] = {**s["marks"], **remote.marks_on_the_way(conn, session, me, s["open_step"]["id"])}
    else:
        s = terminal.screen(site, session, me)
    return render_template("evaluation_terminal.html", s=s, form=ActionForm(), actions_named=committee_action_texts(), errors=error_texts(),
                           seat=terminal.seat_token(site, kiosk.id), fingerprint=terminal.fingerprint(site, kiosk.id))


@bp.get("/state")
@allow("kiosk")
def state() -> Any:
    """A short fingerprint of what this terminal shows: the screen reloads when it changes."""
    return jsonify(fingerprint=terminal.fingerprint(_site(), _terminal().id))


@bp.post("/signout")
@allow("kiosk")
def signout() -> Any:
    kiosk = _terminal()
    _seat()
    return _act(terminal.sign_out, _site(), kiosk.id, kiosk.name)


@bp.post("/read")
@allow("kiosk")
def read() -> Any:
    session, me = _seat()
    return _do(session, me, "read", {})


@bp.post("/vote")
@allow("kiosk")
def vote() -> Any:
    session, me = _seat()
    try:
        candidate = int(request.form.get("candidate", ""))
    except ValueError:
        flash(_("Choose a candidate."))
        return redirect(url_for("evaluation.home"))
    return _do(session, me, "vote", {"candidate": candidate})


@bp.post("/steps/<step>/marks")
@allow("kiosk")
def marks(step: str) -> Any:
    """Every mark on the form (``m|bidder|criterion`` with ``x|…`` its reason or explanation; in
    a dark review ``d|criterion|label`` and ``dx|…``), saved, or submitted with the step."""
    session, me = _seat()
    fields = {k: v for k, v in request.form.items() if k.split("|")[0] in ("m", "x", "d", "dx")}
    return _do(session, me, "marks", {"step": step, "fields": fields, "submit": request.form.get("action") == "submit"})


@bp.post("/steps/<step>/confirm")
@allow("kiosk")
def confirm(step: str) -> Any:
    session, me = _seat()
    return _do(session, me, "confirm", {"step": step})


@bp.post("/steps/<step>/reopen")
@allow("kiosk")
def reopen(step: str) -> Any:
    session, me = _seat()
    return _do(session, me, "reopen", {"step": step, "reason": request.form.get("reason", "")})


@bp.post("/clarify")
@allow("kiosk")
def clarify() -> Any:
    session, me = _seat()
    f = request.form
    return _do(session, me, "clarify", {"bidder": f.get("bidder", ""), "question": f.get("question", ""), "room": f.get("room", "")})


@bp.post("/opinions")
@allow("kiosk")
def opinions() -> Any:
    session, me = _seat()
    return _do(session, me, "opinions", {})


@bp.post("/revise")
@allow("kiosk")
def revise() -> Any:
    session, me = _seat()
    f = request.form
    return _do(session, me, "revise", {k: f.get(k, "") for k in ("step", "bidder", "criterion", "value", "reason")})


@bp.post("/agree")
@allow("kiosk")
def agree() -> Any:
    session, me = _seat()
    return _do(session, me, "agree", {})


@bp.post("/finalize")
@allow("kiosk")
def finalize() -> Any:
    session, me = _seat()
    return _do(session, me, "finalize", {})


@bp.post("/sign")
@allow("kiosk")
def sign() -> Any:
    session, me = _seat()
    value = request.form.get("signature", "")
    prefix = "data:image/png;base64,"
    return _do(session, me, "sign", {"signature_png": value[len(prefix):] if value.startswith(prefix) else "",
                                     "agrees": request.form.get("opinion") != "dissent", "dissent": request.form.get("dissent", "")})


@bp.post("/issue")
@allow("kiosk")
def issue() -> Any:
    session, me = _seat()
    return _do(session, me, "issue", {})
