"""The fee sheet of a session on the console (appliance.siteops.fees): experts' time and fees,
bank cards entered by staff (sealed, shown masked), and finalizing the sheet into the journal."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _

from appliance.siteops.fees import FeeError, confirmed_sheet, fee_sheet, finalize_sheet, set_bank_card, yuan
from kiosk_ui.access import allow
from kiosk_ui.forms import ActionForm, BankCardForm

bp = Blueprint("fees", __name__, url_prefix="/console/fees")


def _site() -> Any:
    return current_app.extensions["site"]


def outcome_words() -> dict[str, str]:
    return {"completed": _("Completed"), "terminated": _("Session terminated (reduced)"), "recusal": _("Recusal (travel fee)"),
            "no_show": _("Did not sign in"), "pending": _("Still running")}


@bp.get("/<session_id>")
@allow("staff", "admin")
def sheet(session_id: str) -> Any:
    try:
        data = fee_sheet(_site(), session_id)
    except FeeError:
        abort(404)
    confirmed = confirmed_sheet(_site(), session_id)
    if confirmed:  # locked: the sheet as it was confirmed, no forms
        data = {**data, "lines": confirmed["lines"], "total_fen": confirmed["total_fen"], "complete": True}
    return render_template("fees.html", sheet=data, yuan=yuan, outcomes=outcome_words(), card=BankCardForm(formdata=None),
                           action=ActionForm(), confirmed=confirmed)


@bp.post("/<session_id>/card/<int:person_id>")
@allow("staff", "admin")
def card(session_id: str, person_id: int) -> Any:
    form = BankCardForm()
    roster = _site().store.reader().execute("SELECT 1 FROM roster WHERE session = ? AND person_id = ?",
                                            (session_id, person_id)).fetchone()
    if roster is None:
        abort(404)
    if confirmed_sheet(_site(), session_id):
        flash(_("The fee sheet is confirmed and locked: it cannot be changed."))
    elif not form.validate_on_submit():
        flash(_("Enter the bank card number (16 to 19 digits)."))
    else:
        try:
            masked = set_bank_card(_site(), person_id, form.number.data, by=g.user.username)
            flash(_("Bank card %(masked)s saved.", masked=masked))
        except FeeError:
            flash(_("The bank card number is not valid: check the digits."))
    return redirect(url_for("fees.sheet", session_id=session_id))


@bp.post("/<session_id>/finalize")
@allow("staff", "admin")
def finalize(session_id: str) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        data = fee_sheet(_site(), session_id)
    except FeeError:
        abort(404)
    missing = sum(1 for line in data["lines"] if line["fee_fen"] and not line["bank_card_masked"])
    if confirmed_sheet(_site(), session_id):
        flash(_("The fee sheet is confirmed and locked: it cannot be confirmed again."))
    elif not data["complete"]:
        flash(_("The session is still running: fees are final when it has ended."))
    elif missing:
        flash(_("Enter the bank cards first: %(n)s missing.", n=missing))
    else:
        try:
            record = finalize_sheet(_site(), session_id, by=g.user.username)
            flash(_("Fee sheet finalized: total %(total)s yuan.", total=yuan(record["total_fen"])))
        except FeeError:  # confirmed from another screen meanwhile
            flash(_("The fee sheet is confirmed and locked: it cannot be confirmed again."))
    return redirect(url_for("fees.sheet", session_id=session_id))
