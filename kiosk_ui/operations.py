"""Site operations on the staff console: today's sessions and their state, broadcast calls
composed from the roster, and the registers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.device_commands import queue_command
from appliance.siteops.alarms import AlarmError, acknowledge, open_alarms
from appliance.siteops.assisted import AssistedError, assisted_check
from appliance.siteops.calls import CallError, announce, bidder_zones, call_bidder
from appliance.siteops.calls import history as call_history
from appliance.siteops.exits import ExitError, approve_exit, people_inside
from appliance.siteops.noshow import open_no_shows, request_replacement
from appliance.siteops.registers import REGISTERS, RegisterError, add_entry, close_entry, complete_entry, entries
from appliance.siteops.sessions import TRANSITIONS, SessionError, change_state
from kiosk_ui.access import accounts, allow
from kiosk_ui.forms import AcknowledgeForm, ActionForm, AssistedCheckForm, ExitApprovalForm, PlanUploadForm
from kiosk_ui.words import Names, alarm_texts, decision_texts

bp = Blueprint("operations", __name__, url_prefix="/console")
VENUE_TZ = ZoneInfo("Asia/Shanghai")

STATE_TEXT = {"scheduled": _l("Scheduled"), "admitting": _l("Admitting"), "in_progress": _l("In progress"),
              "suspended": _l("Suspended"), "completed": _l("Completed"), "terminated": _l("Terminated")}
REGISTER_TEXT = {
    "materials": _l("Materials in and out of the evaluation area"), "sample_inspection": _l("Sample-inspection exits"),
    "technician": _l("Technician entries"), "clarification": _l("Clarification-room visits"), "patrol": _l("Patrol ledger"),
    "objection": _l("Objections and complaints"), "bad_behaviour": _l("Bad-behaviour records"), "incident": _l("Incidents"),
}
FIELD_TEXT = {
    "session": _l("Session"), "direction": _l("Direction"), "description": _l("Description"), "carried_by": _l("Carried by"),
    "reason": _l("Reason"), "escort": _l("Escort"), "out_time": _l("Out at (HH:MM)"), "in_time": _l("Back at (HH:MM)"),
    "organisation": _l("Organisation"), "purpose": _l("Purpose"), "bidder": _l("Bidder"), "people": _l("People"),
    "area": _l("Area"), "finding": _l("Finding"), "follow_up": _l("Follow-up"), "raised_by": _l("Raised by"),
    "content": _l("Content"), "response": _l("Response"), "subject": _l("Subject (company or person)"),
    "behaviour": _l("Behaviour"), "evidence": _l("Evidence"), "severity": _l("Severity"),
}
CHOICE_TEXT = {"in": _l("Into the evaluation area"), "out": _l("Out of the evaluation area"), "low": _l("Low"),
               "medium": _l("Medium"), "high": _l("High")}


def call_error_text(exc: Exception) -> str:
    """A refused announcement in the reader's words (appliance.siteops.calls raises English)."""
    text = str(exc)
    if text.startswith("text: at most"):
        return _("The announcement is too long: at most %(n)s characters.", n=200)
    return {"text: write what is to be announced": _("Write what is to be announced."),
            "zones: choose at least one of the venue's zones": _("Choose at least one zone to play in."),
            "no zone to play in": _("No zone to play in: the day plan has no open zone."),
            "unknown bidder or room": _("Unknown bidder or room.")}.get(text, text)


def register_error_text(exc: RegisterError) -> str:
    """A refused register entry in the reader's words, the field by its label."""
    field = str(FIELD_TEXT.get(exc.field, exc.field)) if exc.field else ""
    texts = {
        "required": _("%(field)s: please fill this in.", field=field),
        "choice": _("%(field)s: choose one of the options.", field=field),
        "whole_number": _("%(field)s: a whole number, please.", field=field),
        "at_least_one": _("%(field)s: at least 1.", field=field),
        "time": _("%(field)s: a time as HH:MM, e.g. 14:30.", field=field),
        "too_long": _("%(field)s: too long (at most 2000 characters).", field=field),
        "no_session": _("%(field)s: no such session.", field=field),
        "not_bidder": _("%(field)s: not a bidder of that session.", field=field),
        "room_full": _("The clarification room holds at most %(capacity)s people at once (%(inside)s inside now).",
                       capacity=exc.params.get("capacity", 2), inside=exc.params.get("inside", 0)),
        "no_entry": _("There is no such entry."), "not_later": _("%(field)s: this is not filled in later.", field=field),
        "filled": _("%(field)s: filled in already.", field=field),
    }
    return texts.get(exc.code, str(exc))


def _register_rows(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry's values as people read them: sessions and bidders by name, choices in words."""
    names = Names(_site())
    fields = REGISTERS[name][1]
    out = []
    for e in rows:
        shown = {}
        for f in fields:
            value = e.get(f.name)
            if value in (None, ""):
                shown[f.name] = ""
            elif f.kind == "session":
                shown[f.name] = names.session(value)
            elif f.kind == "bidder":
                shown[f.name] = names.bidder(value, e.get("session"))
            elif f.kind == "choice":
                shown[f.name] = str(CHOICE_TEXT.get(value, value))
            else:
                shown[f.name] = str(value)
        out.append({**e, "shown": shown})
    return out


ANNOUNCE = {"suspended": "{name}暂停，请在场人员原地等候通知。", "in_progress": "{name}恢复进行。",
            "terminated": "{name}终止。"}


alarm_labels = alarm_texts  # (the names other modules import)
decision_labels = decision_texts


def _site() -> Any:
    return current_app.extensions["site"]


def _today_sessions() -> list[dict[str, Any]]:
    day = _site().clock.now().astimezone(VENUE_TZ).date().isoformat()
    rows = _site().store.reader().execute(
        """SELECT s.id, s.kind, s.section_name, s.start, s.end, s.state, r.name AS room FROM sessions s
           JOIN rooms r ON r.id = s.room WHERE s.day = ? ORDER BY s.start""", (day,))
    out = []
    for row in rows:
        item = dict(row)
        item["bidders"] = [dict(b) for b in _site().store.reader().execute(
            "SELECT bidder, name FROM session_bidders WHERE session = ? ORDER BY bidder", (item["id"],))]
        item["next"] = sorted(TRANSITIONS[item["state"]])
        out.append(item)
    return out


@bp.get("/sessions")
@allow("staff", "admin")
def sessions() -> Any:
    rooms = [dict(r) for r in _site().store.reader().execute("SELECT id, name, kind FROM rooms ORDER BY id")]
    return render_template("sessions.html", sessions=_today_sessions(), states=STATE_TEXT, action=ActionForm(),
                           no_shows=open_no_shows(_site()),
                           rooms=rooms, venue_time=lambda ts: datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(VENUE_TZ).strftime("%H:%M"))


@bp.post("/sessions/<session_id>/state")
@allow("staff", "admin")
def session_state(session_id: str) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    to = request.form.get("to", "")
    reason = request.form.get("reason", "").strip()
    supervisor = request.form.get("supervisor", "").strip() or None
    if supervisor is not None and not accounts().confirm(supervisor, request.form.get("supervisor_password", ""),
                                                         role="supervisor", remote=request.remote_addr or ""):
        flash(_("The supervisor's confirmation failed."))
        return redirect(url_for("operations.sessions"))
    try:
        change_state(_site(), session_id, to, by=g.user.username, reason=reason, confirmed_by=supervisor)
    except SessionError as exc:
        flash(str(exc))
        return redirect(url_for("operations.sessions"))
    if to in ANNOUNCE and reason:
        name = _site().store.reader().execute("SELECT section_name FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]
        queue_command(_site(), "announce", "all", {"text": ANNOUNCE[to].format(name=name), "priority": "emergency"},
                      requested_by=g.user.username)
    return redirect(url_for("operations.sessions"))


@bp.post("/sessions/<session_id>/replacement/<int:person_id>")
@allow("staff", "admin")
def replacement(session_id: str, person_id: int) -> Any:
    """File a replacement-draw request (补抽) for a flagged no-show."""
    if not ActionForm().validate_on_submit():
        abort(400)
    request_replacement(_site(), session_id, person_id, by=g.user.username)
    flash(_("Replacement draw requested."))
    return redirect(url_for("operations.sessions"))


@bp.post("/calls/bidder")
@allow("staff", "admin")
def call() -> Any:
    """A broadcast call composed from the roster: "请××公司代表到答疑室"."""
    if not ActionForm().validate_on_submit():
        abort(400)
    session_id, bidder, room = request.form.get("session", ""), request.form.get("bidder", ""), request.form.get("room", "")
    try:
        call = call_bidder(_site(), session_id, bidder, room, by=g.user.username)
    except CallError:
        abort(400)
    _flash_call(call)
    return redirect(request.form.get("back") == "calls" and url_for("operations.calls") or url_for("operations.sessions"))


def _flash_call(call: dict[str, Any]) -> None:
    where = "、".join(call["zone_names"])
    if call["speakers"]:
        flash(_("Call sent: “%(text)s” plays in %(zones)s (speakers: %(speakers)s).", text=call["text"], zones=where,
                speakers="、".join(call["speakers"])))
    else:
        flash(_("Call sent: “%(text)s” plays in %(zones)s.", text=call["text"], zones=where))


@bp.route("/calls", methods=["GET", "POST"])
@allow("staff", "admin")
def calls() -> Any:
    """Broadcast (广播): call a bidder's representative, announce free text to chosen zones, and
    the day's calls with where each played."""
    form = ActionForm()
    error = None
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            _flash_call(announce(_site(), request.form.get("text", ""), request.form.getlist("zones"), by=g.user.username))
            return redirect(url_for("operations.calls"))
        except CallError as exc:
            error = call_error_text(exc)
    conn = _site().store.reader()
    zones = [dict(r) for r in conn.execute("SELECT id, name, closed FROM zones ORDER BY closed, id != 'public', id")]
    rooms = [dict(r) for r in conn.execute("SELECT id, name, kind FROM rooms ORDER BY id")]
    return render_template("calls.html", zones=zones, rooms=rooms, sessions=_today_sessions(), history=call_history(_site()),
                           action=form, error=error,
                           bidder_zone_names=[z["name"] for z in zones if z["id"] in bidder_zones(conn)])


@bp.route("/registers/<name>", methods=["GET", "POST"])
@allow("staff", "admin")
def register(name: str) -> Any:
    if name not in REGISTERS:
        abort(404)
    form = ActionForm()
    error = None
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            add_entry(_site(), name, request.form.to_dict(), by=g.user.username)
            return redirect(url_for("operations.register", name=name))
        except RegisterError as exc:
            error = register_error_text(exc)
    return render_template("register.html", name=name, title=REGISTER_TEXT[name], fields=REGISTERS[name][1],
                           field_text=FIELD_TEXT, entries=_register_rows(name, entries(_site(), name)), sessions=_today_sessions(),
                           registers=REGISTER_TEXT, action=form, error=error, choice_text=CHOICE_TEXT,
                           today=_site().clock.now().astimezone(VENUE_TZ).date().isoformat())


@bp.post("/registers/entry/<int:entry_id>/complete")
@allow("staff", "admin")
def complete(entry_id: int) -> Any:
    """A field filled in later (a return time, a follow-up, a response)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        complete_entry(_site(), entry_id, request.form.get("field", ""), request.form.get("value", ""), by=g.user.username)
    except RegisterError as exc:
        flash(register_error_text(exc))
    return redirect(request.referrer or url_for("operations.register", name="patrol"))


@bp.post("/registers/entry/<int:entry_id>/close")
@allow("staff", "admin")
def close(entry_id: int) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        close_entry(_site(), entry_id, by=g.user.username)
    except RegisterError:
        abort(404)
    return redirect(request.referrer or url_for("operations.register", name="clarification"))


def _recent_decisions(limit: int = 20) -> list[dict[str, Any]]:
    rows = _site().store.reader().execute(
        "SELECT seq, ts, body FROM journal WHERE kind = 'gate.decision' ORDER BY seq DESC LIMIT ?", (limit,))
    names = Names(_site())
    out = []
    for seq, ts, body in rows:
        payload = json.loads(body)["payload"]
        out.append({"seq": seq, "ts": ts, **{k: payload.get(k) for k in ("gate", "direction", "allow", "reason", "id_masked", "via")},
                    "gate_name": names.gate(payload.get("gate")),
                    "person": names.person(payload.get("person_id"), payload.get("session"), masked_id=payload.get("id_masked"))})
    return out


def _gates_page(assisted: AssistedCheckForm | None = None, result: Any = None) -> Any:
    gates = [dict(r) for r in _site().store.reader().execute("SELECT id, name, direction FROM gates ORDER BY id")]
    form = assisted or AssistedCheckForm()
    form.gate.choices = [(g["id"], g["name"]) for g in gates]
    return render_template("gates.html", alarms=open_alarms(_site()), alarm_labels=alarm_labels(), inside=people_inside(_site()),
                           gates=gates, assisted=form, result=result, exit_form=ExitApprovalForm(formdata=None),
                           ack_form=AcknowledgeForm(formdata=None), decisions=_recent_decisions(), reasons=decision_labels())


@bp.get("/gates")
@allow("staff", "admin")
def gates() -> Any:
    """Alarms, who is inside the evaluation area (with exit approvals), the staff-assisted check."""
    return _gates_page()


@bp.post("/gates/assisted")
@allow("staff", "admin")
def assisted() -> Any:
    form = AssistedCheckForm()
    form.gate.choices = [(r[0], r[0]) for r in _site().store.reader().execute("SELECT id FROM gates")]
    if not form.validate_on_submit():
        return _gates_page(form), 400
    try:
        decision = assisted_check(_site(), form.gate.data, id_number=form.id_number.data, document=form.document.data,
                                  reason=form.reason.data, photo_compared=bool(form.photo_compared.data), by=g.user.username)
    except AssistedError as exc:
        form.id_number.errors = [str(exc)]
        return _gates_page(form), 400
    return _gates_page(AssistedCheckForm(formdata=None), result=decision)


@bp.post("/gates/exit/<session_id>/<int:person_id>")
@allow("staff", "admin")
def exit_approval(session_id: str, person_id: int) -> Any:
    form = ExitApprovalForm()
    if not form.validate_on_submit():
        flash(_("An exit approval needs a reason and 1 to 240 minutes."))
        return redirect(url_for("operations.gates"))
    try:
        approve_exit(_site(), session_id, person_id, minutes=form.minutes.data, reason=form.reason.data, by=g.user.username)
        flash(_("Exit approved."))
    except ExitError as exc:
        flash(str(exc))
    return redirect(url_for("operations.gates"))


@bp.post("/alarms/<int:alarm_id>/acknowledge")
@allow("staff", "admin")
def acknowledge_alarm(alarm_id: int) -> Any:
    form = AcknowledgeForm()
    if not form.validate_on_submit():
        flash(_("Say what was done about the alarm."))
        return redirect(url_for("operations.gates"))
    try:
        acknowledge(_site(), alarm_id, by=g.user.username, note=form.note.data)
    except AlarmError:
        abort(404)
    return redirect(url_for("operations.gates"))


@bp.route("/plan", methods=["GET", "POST"])
@allow("staff", "admin")
def plan() -> Any:
    """Load a day plan file on the console (what `appliance plan load` does): checked whole, the
    problem named by its field, ID numbers sealed on load, journaled with the staff member."""
    from appliance.siteops.plan import PlanError, load_plan, parse_plan

    form = PlanUploadForm()
    error = None
    if form.validate_on_submit():
        try:
            text = form.file.data.read().decode("utf-8")
            day_plan = parse_plan(text)
            counts = load_plan(_site(), day_plan, by=g.user.username)
            flash(_("Plan version %(version)s for %(day)s loaded: %(sessions)s sessions, %(people)s people.",
                    version=day_plan.version, day=day_plan.date.isoformat(), sessions=counts["sessions"], people=counts["people"]))
            return redirect(url_for("operations.plan"))
        except UnicodeDecodeError:
            error = _("The file is not UTF-8 text.")
        except PlanError as exc:
            error = str(exc)
    loaded = [dict(r) for r in _site().store.reader().execute(
        "SELECT day, version, sha256, loaded FROM plans ORDER BY loaded DESC LIMIT 20")]
    return render_template("plan.html", form=form, error=error, loaded=loaded)
