"""The staff console (中心工作人员): the site at a glance, and account and kiosk administration."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _

from appliance.kiosks import KioskError
from appliance.personal import PersonalDataError
from kiosk_ui.access import accounts, allow
from kiosk_ui.access import kiosks as kiosk_registry
from kiosk_ui.forms import ActionForm, KioskForm
from kiosk_ui.operations import STATE_TEXT, alarm_labels
from kiosk_ui.status import collect_status

bp = Blueprint("console", __name__, url_prefix="/console")


@bp.get("/")
@allow("staff", "admin")
def home() -> Any:
    site = current_app.extensions["site"]
    status = collect_status(site)
    return render_template("console_home.html", status=status, action=ActionForm(), labels=service_labels(),
                           alarm_labels=alarm_labels(), states=STATE_TEXT, demo_phase=site.store.get_meta("demo_phase"),
                           demo_phases=demo_phase_texts())


def demo_phase_texts() -> dict[str, str]:
    """What the demo day (make run) is doing, for the newcomer at the console."""
    return {
        "waiting_for_login": _("Demo day: it begins now that you are logged in."),
        "opening": _("Demo day: the morning bid opening — bids opened, bidders confirm, the supervisor signs off."),
        "checkin": _("Demo day: experts check in at the evaluation-area gate; watch the gate kiosk and the gates page."),
        "evaluation": _("Demo day: the evaluation — a no-show replaced, a sample inspection, a suspension, the committee at work."),
        "closing": _("Demo day: an expert leaves without approval (an alarm), the session completes, the fee sheet."),
        "finished": _("Demo day: finished. `make demo-reset` plays it again."),
        "already_played": _("Demo day: today's has played already. `make demo-reset` plays it again."),
    }


def service_labels() -> dict[str, str]:
    """Screen words for service names, states and the workers' fixed detail messages."""
    return {
        "web": _("Web"), "devices": _("Devices"), "recorder": _("Recorder"), "sync": _("Sync"),
        "running": _("Running"), "starting": _("Starting"), "stopping": _("Stopping"), "stopped": _("Stopped"),
        "failed": _("Failed"), "stale": _("Not responding"),
        "idcard": _("ID card reader"), "gate": _("Gate"), "locker": _("Locker bank"),
        "connected": _("Connected"), "disconnected": _("Disconnected"),
        # The services' details (appliance.service_detail), %(name)s for each number:
        "devices_summary": _("%(readers)s ID card readers, %(gates)s gates, %(lockers)s locker banks"),
        "devices_summary_simulated": _("%(readers)s ID card readers, %(gates)s gates, %(lockers)s locker banks (simulated)"),
        "recorder_summary": _("%(recording)s of %(total)s cameras recording"),
        "recorder_none": _("No cameras configured yet"),
        "journal_uncovered": _("%(n)s records not yet under a signed checkpoint"),
        "journal_covered": _("Every record under a signed checkpoint"),
        "sync_not_enrolled": _("No provincial center enrolled yet"),
        "sync_waiting": _("Waiting %(seconds)s s before trying the center again"),
        "sync_unreachable": _("The center cannot be reached; next try in %(seconds)s s"),
        "sync_refused": _("Refused by the center; next try in %(seconds)s s"),
        "sync_ok": _("%(acked)s records acknowledged, %(pending)s waiting; %(media)s recordings waiting"),
        "web_serving": _("Serving the screens at %(url)s"),
    }


@bp.get("/admin/users")
@allow("admin")
def users() -> Any:
    return render_template("admin_users.html", users=accounts().list(), action=ActionForm())


def _user_action(user_id: int, change: str) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    user = accounts().get_by_id(user_id)
    if user is None:
        abort(404)
    by = g.user.username
    if change == "unlock":
        accounts().unlock(user.username, by=by)
    elif change in ("disable", "enable"):
        if user.id == g.user.id:
            flash(_("You cannot disable your own account."))
            return redirect(url_for("console.users"))
        accounts().set_disabled(user.username, change == "disable", by=by)
    return redirect(url_for("console.users"))


@bp.post("/admin/users/<int:user_id>/unlock")
@allow("admin")
def unlock_user(user_id: int) -> Any:
    return _user_action(user_id, "unlock")


@bp.post("/admin/users/<int:user_id>/disable")
@allow("admin")
def disable_user(user_id: int) -> Any:
    return _user_action(user_id, "disable")


@bp.post("/admin/users/<int:user_id>/enable")
@allow("admin")
def enable_user(user_id: int) -> Any:
    return _user_action(user_id, "enable")


@bp.route("/admin/kiosks", methods=["GET", "POST"])
@allow("admin")
def kiosks() -> Any:
    form = KioskForm()
    site = current_app.extensions["site"]
    form.reader.choices = [("", _("None"))] + [(r.name, r.name) for r in site.config.devices.idcard]
    form.room.choices = [("", _("None"))] + [(r[0], f"{r[1]} ({r[0]})") for r in site.store.reader().execute(
        "SELECT id, name FROM rooms WHERE kind IN ('evaluation', 'remote_evaluation') ORDER BY id")]
    code = error = None
    if form.validate_on_submit():
        try:
            code = kiosk_registry().add(form.name.data, form.purpose.data, reader=form.reader.data or None,
                                        room=form.room.data or None, by=g.user.username)
        except PersonalDataError:
            error = _("A kiosk name must not contain an ID number or a bank card number.")
        except KioskError as exc:
            error = str(exc)
    return render_template("admin_kiosks.html", form=form, kiosks=kiosk_registry().all(), code=code, error=error,
                           action=ActionForm())


@bp.post("/admin/kiosks/<int:kiosk_id>/<any(disable, enable, code):change>")
@allow("admin")
def kiosk_action(kiosk_id: int, change: str) -> Any:
    """Disable a kiosk (its screen stops at once), enable it again, or give it a new one-time code."""
    if not ActionForm().validate_on_submit():
        abort(400)
    found = [k for k in kiosk_registry().all() if k["id"] == kiosk_id]
    if not found:
        abort(404)
    name, by, code = found[0]["name"], g.user.username, None
    if change == "code":
        try:
            code = kiosk_registry().new_code(name, by=by)
        except KioskError:
            flash(_("Enable the kiosk before giving it a new code."))
    else:
        kiosk_registry().set_disabled(name, change == "disable", by=by)
    if code:
        return render_template("admin_kiosks.html", form=KioskForm(formdata=None), kiosks=kiosk_registry().all(), code=code,
                               error=None, action=ActionForm(), reissued=name)
    return redirect(url_for("console.kiosks"))
