"""What staff follow and file during the day: a session's check-in roster (live, and as a
sign-in sheet), each register (台账) and the fee sheet (劳务费发放表) printed or exported, and
the alarm history with who handled each alarm, when, and the note."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _

from appliance.siteops.alarms import alarm_history
from appliance.siteops.attendance import session_roster
from appliance.siteops.checkin import VENUE_TZ
from appliance.siteops.fees import FeeError, confirmed_sheet, fee_sheet, yuan
from appliance.siteops.registers import REGISTERS, entries_of_day
from kiosk_ui.access import allow
from kiosk_ui.fees import outcome_words
from kiosk_ui.operations import FIELD_TEXT, REGISTER_TEXT, STATE_TEXT, _register_rows
from kiosk_ui.sheets import Sheet, send, signature_lines
from kiosk_ui.words import alarm_texts, role_texts

bp = Blueprint("records", __name__, url_prefix="/console")


def _site() -> Any:
    return current_app.extensions["site"]


def _local(stamp: str | None, fmt: str = "%H:%M") -> str:
    if not stamp:
        return ""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(VENUE_TZ).strftime(fmt)


def status_texts() -> dict[str, str]:
    return {"inside": _("In the area"), "left": _("Left"), "checked_in": _("Checked in, not inside"),
            "not_arrived": _("Not arrived"), "recused": _("Recused"), "no_show": _("No-show")}


def _roster_or_404(session_id: str) -> dict[str, Any]:
    data = session_roster(_site(), session_id)
    if data is None:
        abort(404)
    return data


def _details(info: dict[str, Any]) -> list[tuple[str, str]]:
    return [(_("Section"), f"{info['section_name']}（{info['section_code']}）"), (_("Room"), info["room"] or ""),
            (_("Date"), info["day"]), (_("Time"), f"{_local(info['start'])}–{_local(info['end'])}")]


@bp.get("/sessions/<session_id>/roster")
@allow("staff", "admin", "supervisor")
def roster(session_id: str) -> Any:
    data = _roster_or_404(session_id)
    return render_template("session_roster.html", r=data, roles=role_texts(), statuses=status_texts(),
                           states=STATE_TEXT, local=_local)


@bp.get("/sessions/<session_id>/signin.<fmt>")
@allow("staff", "admin", "supervisor")
def signin_sheet(session_id: str, fmt: str) -> Any:
    """The sign-in sheet (签到表): everyone on the roster with their arrival, check-in and exit,
    and a column to sign on paper."""
    data = _roster_or_404(session_id)
    roles, statuses = role_texts(), status_texts()
    rows = [[str(i), p["name_masked"], roles.get(p["role"], p["role"]) + (f"（{p['bidder_name']}）" if p["bidder_name"] else ""),
             _local(p["first_in"]), _local(p["signed"]), _local(p["last_out"]), statuses[p["status"]], ""]
            for i, p in enumerate(data["people"], start=1)]
    sheet = Sheet(title=_("Sign-in sheet"), venue=_site().config.site.name, details=_details(data["session"]),
                  columns=[_("No."), _("Name"), _("Role"), _("Arrived"), _("Commitment signed"), _("Left at"), _("Status"),
                           _("Signature")],
                  rows=rows, signatures=signature_lines(), landscape=True)
    return send(sheet, fmt, f"{_('Sign-in sheet')}-{data['session']['section_code']}")


@bp.get("/registers/<name>/export.<fmt>")
@allow("staff", "admin", "supervisor")
def register_export(name: str, fmt: str) -> Any:
    """A register (台账) of one day (``?day=YYYY-MM-DD``, today by default), as filed."""
    if name not in REGISTERS:
        abort(404)
    day = _day_arg()
    fields = REGISTERS[name][1]
    rows = _register_rows(name, entries_of_day(_site(), name, day))
    sheet = Sheet(title=str(REGISTER_TEXT[name]), venue=_site().config.site.name, details=[(_("Date"), day)],
                  columns=[_("No."), _("Recorded at"), *[str(FIELD_TEXT.get(f.name, f.name)) for f in fields], _("Recorded by")],
                  rows=[[str(i), _local(e["created"]), *[e["shown"][f.name] for f in fields], e["by"]]
                        for i, e in enumerate(rows, start=1)],
                  signatures=signature_lines(), landscape=len(fields) > 3,
                  note="" if rows else _("No entries on this day."))
    return send(sheet, fmt, f"{REGISTER_TEXT[name]}-{day}")


@bp.get("/fees/<session_id>/export.<fmt>")
@allow("staff", "admin")
def fee_sheet_export(session_id: str, fmt: str) -> Any:
    """The fee sheet (劳务费发放表) as the finance office takes it: the confirmed record once
    confirmed (locked), marked as a draft before."""
    try:
        data = fee_sheet(_site(), session_id)
    except FeeError:
        abort(404)
    confirmed = confirmed_sheet(_site(), session_id)
    lines = confirmed["lines"] if confirmed else data["lines"]
    total = confirmed["total_fen"] if confirmed else data["total_fen"]
    outcomes = outcome_words()
    info = _roster_or_404(session_id)["session"]
    rows = [[str(i), line["name_masked"], outcomes.get(line["outcome"], line["outcome"]),
             f"{line['minutes'] // 60}:{line['minutes'] % 60:02d}" if line["minutes"] else "", yuan(line["fee_fen"]),
             line["bank_card_masked"] or "", ""] for i, line in enumerate(lines, start=1)]
    rows.append(["", _("Total"), "", "", yuan(total), "", ""])
    note = (_("Confirmed by %(by)s at %(time)s, journal record %(seq)s.", by=confirmed["confirmed_by"],
              time=_local(confirmed["confirmed"], "%Y-%m-%d %H:%M"), seq=confirmed["seq"]) if confirmed
            else _("DRAFT: not confirmed; the figures may still change."))
    sheet = Sheet(title=_("Expert fee sheet"), venue=_site().config.site.name, details=_details(info),
                  columns=[_("No."), _("Expert"), _("Outcome"), _("Time"), _("Fee (yuan)"), _("Bank card"), _("Signature")],
                  rows=rows, signatures=signature_lines(), note=note)
    return send(sheet, fmt, f"{_('Expert fee sheet')}-{info['section_code']}")


def _day_arg() -> str:
    today = _site().clock.now().astimezone(VENUE_TZ).date()
    raw = request.args.get("day") or today.isoformat()
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        abort(400)
    if not date(2000, 1, 1) <= day <= today + timedelta(days=366):
        abort(400)
    return day.isoformat()


@bp.get("/alarms")
@allow("staff", "admin", "supervisor")
def alarms() -> Any:
    """Every alarm of a day, open and handled, with who acknowledged it, when and the note;
    filtered by day and kind."""
    day = _day_arg()
    kinds = alarm_texts()
    kind = request.args.get("kind") or None
    if kind is not None and kind not in kinds:
        abort(400)
    return render_template("alarm_history.html", day=day, kind=kind, kinds=kinds,
                           alarms=alarm_history(_site(), day, kind), local=_local)
