"""Room scheduling on the console: booking requests for a day, the scheduler's result with its
reasons, and staff's override (appliance.siteops.scheduling)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance.siteops.scheduling import VENUE_TZ, BookingError, add_booking, bookings, cancel_booking, pin_booking, schedule_day
from kiosk_ui.access import allow
from kiosk_ui.forms import ActionForm, BookingForm, PinForm

bp = Blueprint("rooms", __name__, url_prefix="/console/rooms")


def _site() -> Any:
    return current_app.extensions["site"]


def word(reason: dict[str, Any]) -> str:
    """A scheduling reason (appliance.siteops.scheduling) in the reader's language."""
    code = reason["code"]
    if code == "window_too_short":
        return _("The window %(start)s–%(end)s is shorter than %(n)s minutes.", start=reason["from"], end=reason["to"],
                 n=reason["duration_min"])
    if code == "no_room_of_kind":
        return _("The site has no room of this kind.")
    if code == "unknown_room":
        return _("Unknown room %(room)s.", room=reason["room"])
    if code == "seats":
        return _("%(room)s: %(seats)s seats, %(needed)s needed.", room=reason["room"], seats=reason["seats"], needed=reason["needed"])
    if code == "equipment":
        return _("%(room)s: lacks %(what)s.", room=reason["room"], what=", ".join(equipment_words().get(m, m) for m in reason["missing"]))
    if code == "overlap":
        return _("%(room)s: %(start)s–%(end)s overlaps %(label)s %(busy_start)s–%(busy_end)s.", **{
            k: reason[k] for k in ("room", "start", "end", "label", "busy_start", "busy_end")})
    busy = "; ".join(f"{b['label']} {b['start']}–{b['end']}" for b in reason["busy"])
    return _("%(room)s: no free %(n)s minutes between %(start)s and %(end)s (booked: %(busy)s; %(buffer)s minutes kept free "
             "between sessions).", room=reason["room"], n=reason["duration_min"], start=reason["from"], end=reason["to"],
             busy=busy, buffer=reason["buffer_min"])


def waived_words() -> dict[str, str]:
    return {"seats": _("seats"), "equipment": _("equipment"), "buffer": _("time between sessions"), "kind": _("room kind")}


def equipment_words() -> dict[str, str]:
    return {"recording": _("Recording"), "remote_evaluation": _("Remote evaluation")}


def _day() -> date:
    text = request.values.get("day", "")
    try:
        return date.fromisoformat(text) if text else _site().clock.now().astimezone(VENUE_TZ).date()
    except ValueError:
        abort(400)


def _page(day: date, form: BookingForm | None = None) -> Any:
    rooms = [dict(r) for r in _site().store.reader().execute("SELECT id, name, kind, capacity, equipment FROM rooms ORDER BY id")]
    requests = bookings(_site(), day.isoformat())
    words = waived_words()
    for b in requests:
        if b["state"] == "scheduled":
            b["waived_text"] = ", ".join(words.get(w, w) for w in b["explanation"])
    sessions = [dict(r) for r in _site().store.reader().execute(
        "SELECT id, section_name, room, start, end, state FROM sessions WHERE day = ? ORDER BY start", (day.isoformat(),))]
    by_room: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in rooms}
    for s in sessions:
        by_room.setdefault(s["room"], []).append({"label": s["section_name"], "start": s["start"], "end": s["end"], "plan": True})
    for b in requests:
        if b["state"] == "scheduled":
            by_room.setdefault(b["room"], []).append({"label": b["section_name"], "start": b["start"], "end": b["end"], "plan": False})
    for items in by_room.values():
        items.sort(key=lambda x: x["start"])
    if form is None:
        form = BookingForm(formdata=None)
        form.day.data = day
    pin = PinForm(formdata=None)
    pin.room.choices = [(r["id"], r["name"]) for r in rooms]
    return render_template("rooms.html", word=word, day=day, rooms=rooms, requests=requests, by_room=by_room, form=form, pin=pin,
                           action=ActionForm(), prev_day=day - timedelta(days=1), next_day=day + timedelta(days=1))


@bp.get("/")
@allow("staff", "admin")
def home() -> Any:
    return _page(_day())


@bp.post("/book")
@allow("staff", "admin")
def book() -> Any:
    form = BookingForm()
    if not form.validate_on_submit():
        return _page(form.day.data or _day(), form), 400
    day = form.day.data
    earliest = datetime.combine(day, form.earliest.data, VENUE_TZ)
    latest_end = datetime.combine(day, form.latest_end.data, VENUE_TZ)
    if latest_end <= earliest:
        form.latest_end.errors = [_("The latest end must be after the earliest start.")]
        return _page(day, form), 400
    try:
        add_booking(_site(), day=day.isoformat(), section_code=form.section_code.data, section_name=form.section_name.data,
                    session_kind=form.session_kind.data, room_kind=form.room_kind.data, attendees=form.attendees.data,
                    duration_min=form.duration_min.data, earliest=earliest, latest_end=latest_end,
                    equipment=form.equipment.data, by=g.user.username)
    except BookingError as exc:
        form.latest_end.errors = [str(exc)]
        return _page(day, form), 400
    return redirect(url_for("rooms.home", day=day.isoformat()))


@bp.post("/schedule")
@allow("staff", "admin")
def run_schedule() -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    day = _day()
    result = schedule_day(_site(), day.isoformat(), by=g.user.username)
    flash(_("%(placed)s booking(s) placed, %(unplaced)s could not be placed.", placed=len(result["scheduled"]),
            unplaced=len(result["unplaced"])))
    return redirect(url_for("rooms.home", day=day.isoformat()))


@bp.post("/<int:booking_id>/pin")
@allow("staff", "admin")
def pin(booking_id: int) -> Any:
    form = PinForm()
    form.room.choices = [(r[0], r[0]) for r in _site().store.reader().execute("SELECT id FROM rooms")]
    day = _day()
    if not form.validate_on_submit():
        flash(_("An override needs a room, a start time and a reason."))
        return redirect(url_for("rooms.home", day=day.isoformat()))
    try:
        pin_booking(_site(), booking_id, room=form.room.data, start=datetime.combine(day, form.start.data, VENUE_TZ),
                    reason=form.reason.data, by=g.user.username)
        schedule_day(_site(), day.isoformat(), by=g.user.username)
    except BookingError as exc:
        flash(str(exc))
    return redirect(url_for("rooms.home", day=day.isoformat()))


@bp.post("/<int:booking_id>/cancel")
@allow("staff", "admin")
def cancel(booking_id: int) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        cancel_booking(_site(), booking_id, by=g.user.username)
    except BookingError:
        abort(404)
    return redirect(url_for("rooms.home", day=_day().isoformat()))
