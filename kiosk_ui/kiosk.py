"""The gate kiosk (闸机人证核验终端): a registered device, no personal login. The card-tap flow
arrives with site operations; for now the idle screen and device enrolment."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, make_response, redirect, render_template, url_for

from kiosk_ui.access import KIOSK_COOKIE, PUBLIC, accounts, allow
from kiosk_ui.forms import EnrolForm

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")


@bp.get("/")
@allow("kiosk")
def idle() -> Any:
    return render_template("kiosk_idle.html")


@bp.route("/enrol", methods=["GET", "POST"])
@allow(*PUBLIC)
def enrol() -> Any:
    form = EnrolForm()
    failed = False
    if form.validate_on_submit():
        enrolled = accounts().enroll_kiosk(form.code.data)
        if enrolled:
            kiosk, token = enrolled
            target = url_for("evaluation.home") if kiosk.purpose == "evaluation" else url_for("kiosk.idle")
            response = make_response(redirect(target))
            response.set_cookie(KIOSK_COOKIE, token, max_age=10 * 365 * 24 * 3600, httponly=True,
                                samesite="Strict", secure=current_app.config["TLS"])
            return response
        failed = True
    return render_template("kiosk_enrol.html", form=form, failed=failed)
