"""The gate kiosk (闸机人证核验终端): a registered device, no personal login. The idle screen shows
each decision at its gate; an expert's first entry opens the commitment, signature and conflict
declaration (appliance.siteops.kiosk_checkin); `/kiosk/enrol` enrols any kiosk device."""

from __future__ import annotations

import base64
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from appliance.siteops.kiosk_checkin import (
    PROMPT_TTL,
    CheckinError,
    abandon_prompt,
    commitment_text,
    complete,
    current_prompt,
    last_decision,
)
from kiosk_ui.access import KIOSK_COOKIE, PUBLIC, allow, kiosk_cookie_age, kiosks
from kiosk_ui.forms import CheckinForm, EnrolForm
from kiosk_ui.words import role_texts

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")


@bp.get("/")
@allow("kiosk")
def idle() -> Any:
    return render_template("kiosk_idle.html", reasons=reason_texts(), next_steps=next_steps(), roles=role_texts(),
                           timed_out=request.args.get("timeout") == "1")


def reason_texts() -> dict[str, str]:
    """What the kiosk says for each decision of the access policy."""
    return {
        "allowed": _("Please pass"), "exit": _("Goodbye"), "exit_during_evaluation": _("Leaving during the evaluation: staff are alerted"),
        "card_invalid": _("The card is not valid"), "unknown_person": _("You are not registered for today"),
        "revoked": _("Your assignment was withdrawn"), "blacklisted": _("Entry not permitted"),
        "already_inside": _("You are already inside"), "not_on_roster": _("You are not on today's list for this area"),
        "role_not_allowed": _("Bidders and agency staff may not enter the evaluation area"),
        "session_closed": _("Your session is not admitting"), "outside_admission_window": _("Admission is not open now"),
        "commitment_missing": _("Please sign the commitment first"), "conflict_declared": _("Conflict of interest declared"),
        "locker_missing": _("Your phone and bag are not in a locker yet"),
    }


def next_steps() -> dict[str, str]:
    """What the person does next, under the result: every refusal names a next step."""
    see_staff = _("Please see the staff at the service desk.")
    steps = {reason: see_staff for reason in reason_texts()}
    steps.update({
        "allowed": _("Walk through the gate now."), "exit": "",
        "exit_during_evaluation": _("Please wait here: the staff are on their way."),
        "card_invalid": _("Try the card again, or see the staff at the service desk with another ID."),
        "outside_admission_window": _("Please wait until admission opens, or see the staff at the service desk."),
        "locker_missing": _("Put your phone and bag in your locker, close it, then tap your card again."),
        "role_not_allowed": _("Please wait in the public hall; you will be called. For help, see the staff."),
    })
    return steps


@bp.get("/prompt")
@allow("kiosk")
def prompt() -> Any:
    """Is an expert's first-entry check-in waiting at this kiosk's reader? (polled on live updates)"""
    kiosk = g.kiosk
    site = current_app.extensions["site"]
    found = current_prompt(site, kiosk.reader) if kiosk.reader else None
    decision = last_decision(site, kiosk.reader) if kiosk.reader else None
    return jsonify(prompt=found.id if found else None, decision=decision)


def _prompt_or_404(prompt_id: int) -> Any:
    kiosk = g.kiosk
    found = current_prompt(current_app.extensions["site"], kiosk.reader) if kiosk.reader else None
    if found is None or found.id != prompt_id:
        abort(404)
    return found


@bp.route("/checkin/<int:prompt_id>", methods=["GET", "POST"])
@allow("kiosk")
def checkin(prompt_id: int) -> Any:
    """The integrity and recusal commitment, the signature and the conflict declaration."""
    site = current_app.extensions["site"]
    found = _prompt_or_404(prompt_id)
    form = CheckinForm()
    form.conflicts.choices = [(b["id"], b["name"]) for b in found.bidders]
    error = None
    if form.validate_on_submit():
        try:
            signature = _png_from_data_url(form.signature.data)
            result = complete(site, prompt_id, reader=g.kiosk.reader, signature_png=signature,
                              conflicts=list(form.conflicts.data or []))
            return render_template("kiosk_result.html", result=result, prompt=found)
        except CheckinError as exc:
            error = str(exc)
    opened = last_decision(site, g.kiosk.reader, within_s=PROMPT_TTL.total_seconds())
    return render_template("kiosk_checkin.html", prompt=found, form=form, error=error,
                           commitment=commitment_text(site), opened_seq=opened["seq"] if opened else 0)


@bp.post("/checkin/<int:prompt_id>/abandon")
@allow("kiosk")
def abandon(prompt_id: int) -> Any:
    """The check-in screen timed out with nobody at it: the prompt ends (journaled), so the
    gate screen does not send the next person back to it."""
    _prompt_or_404(prompt_id)
    abandon_prompt(current_app.extensions["site"], prompt_id, reader=g.kiosk.reader)
    return jsonify(ok=True)


def _png_from_data_url(value: str | None) -> bytes:
    prefix = "data:image/png;base64,"
    if not value or not value.startswith(prefix):
        raise CheckinError("a signature is required")
    try:
        return base64.b64decode(value[len(prefix):], validate=True)
    except ValueError as exc:
        raise CheckinError("the signature could not be read") from exc


@bp.route("/enrol", methods=["GET", "POST"])
@allow(*PUBLIC)
def enrol() -> Any:
    form = EnrolForm()
    failed = False
    remote = request.remote_addr or ""
    if form.validate_on_submit():
        enrolled = kiosks().enroll(form.code.data, remote=remote)
        if enrolled:
            kiosk, token = enrolled
            target = url_for("evaluation.home") if kiosk.purpose == "evaluation" else url_for("kiosk.idle")
            response = make_response(redirect(target))
            response.set_cookie(KIOSK_COOKIE, token, max_age=kiosk_cookie_age(), httponly=True,
                                samesite="Strict", secure=current_app.config["TLS"])
            return response
        failed = True
    wait_min = int(kiosks().enrol_wait_s(remote) // 60) + 1 if kiosks().enrol_wait_s(remote) else 0
    status = 429 if wait_min else 200
    return render_template("kiosk_enrol.html", form=form, failed=failed, wait_min=wait_min), status
