"""The bid opening (开标) on the console: staff record each bidder's attendance, the decryption of
its bid and the opening record table (price and the venue's columns), then each attending
bidder's confirmation or objection; a supervisor signs the record off. The domain is
appliance.evaluation.opening; every act is journaled there. Collusion signals need the bid
files' metadata, which arrives from the trading platform (open_bids' ``metadata``), not by hand.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from appliance.evaluation import opening
from kiosk_ui.access import allow
from kiosk_ui.forms import ActionForm

bp = Blueprint("opening", __name__, url_prefix="/opening")


def _site() -> Any:
    return current_app.extensions["site"]


def _checked() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


def _session_or_404(session_id: str) -> dict[str, Any]:
    row = _site().store.reader().execute(
        """SELECT s.id, s.section_code, s.section_name, s.state, s.start, r.name AS room FROM sessions s
           JOIN rooms r ON r.id = s.room WHERE s.id = ? AND s.kind = 'opening'""", (session_id,)).fetchone()
    if row is None:
        abort(404)
    return dict(row)


def texts() -> dict[str, str]:
    return {"onsite": _("On site"), "remote": _("Remote"), "absent": _("Absent"), "decrypted": _("Decrypted"),
            "failed": _("Decryption failed"), "withdrawn": _("Withdrawn")}


@bp.get("/<session_id>")
@allow("staff", "supervisor", "admin")
def detail(session_id: str) -> Any:
    info = _session_or_404(session_id)
    conn = _site().store.reader()
    bidders = [dict(r) for r in conn.execute("SELECT bidder, name FROM session_bidders WHERE session = ? ORDER BY bidder",
                                             (session_id,))]
    row = conn.execute("SELECT record, record_sha256, state, opened, opened_by, signed_off_by, signed_off FROM openings "
                       "WHERE session = ?", (session_id,)).fetchone()
    record = None
    if row:
        record = {**dict(row), "record": json.loads(row["record"])}
        answers = {r["bidder"]: dict(r) for r in conn.execute(
            "SELECT bidder, attendance, answered, agrees, reason, answered_by FROM opening_bidders WHERE session = ?", (session_id,))}
        for r in record["record"]["rows"]:
            r["answer"] = answers.get(r["bidder"], {})
        record["columns"] = list(dict.fromkeys(f["name"] for r in record["record"]["rows"] for f in r["fields"]))
        for r in record["record"]["rows"]:
            r["values"] = {f["name"]: f["value"] for f in r["fields"]}
    signals = [r.payload for r in _site().journal.records(kind="opening.collusion_signal") if r.payload["session"] == session_id]
    evaluation = conn.execute("SELECT id FROM sessions WHERE kind = 'evaluation' AND section_code = ? ORDER BY start LIMIT 1",
                              (info["section_code"],)).fetchone()
    return render_template("opening.html", s=info, bidders=bidders, record=record, signals=signals, texts=texts(),
                           columns=_site().config.siteops.opening_columns, form=ActionForm(),
                           evaluation=evaluation[0] if evaluation else None)


@bp.post("/<session_id>/record")
@allow("staff", "admin")
def record(session_id: str) -> Any:
    """The opening record, one row per bidder of the session, as read out at the opening."""
    _session_or_404(session_id)
    _checked()
    f = request.form
    conn = _site().store.reader()
    bids = []
    for (bidder,) in conn.execute("SELECT bidder FROM session_bidders WHERE session = ? ORDER BY bidder", (session_id,)):
        fields = {c: f.get(f"{bidder}|col{i}", "").strip() for i, c in enumerate(_site().config.siteops.opening_columns)}
        bids.append({"bidder": bidder, "attendance": f.get(f"{bidder}|attendance", "onsite"),
                     "decryption": f.get(f"{bidder}|decryption", "decrypted"), "price": f.get(f"{bidder}|price", "").strip(),
                     "fields": {k: v for k, v in fields.items() if v}})
    try:
        result = opening.open_bids(_site(), session_id, bids, by=g.user.username)
        flash(_("The opening record is kept (SHA-256 %(sha)s).", sha=result["sha256"][:16] + "…"))
    except opening.OpeningError as exc:
        flash(str(exc))
    return redirect(url_for("opening.detail", session_id=session_id))


@bp.post("/<session_id>/confirm/<bidder>")
@allow("staff", "admin")
def confirm(session_id: str, bidder: str) -> Any:
    """A bidder's representative confirms the record, or objects with the reason (staff enter it
    as the representative says it; an objection also goes to the objections register)."""
    _session_or_404(session_id)
    _checked()
    agrees = request.form.get("agrees") == "yes"
    reason = request.form.get("reason", "")
    from appliance.siteops.registers import RegisterError, add_entry

    try:
        with _site().store.transaction() as conn:  # the confirmation and its objection's entry, together
            opening.confirm(_site(), session_id, bidder, agrees=agrees, by=g.user.username, reason=reason, conn=conn)
            if not agrees:
                name = conn.execute("SELECT name FROM session_bidders WHERE session = ? AND bidder = ?",
                                    (session_id, bidder)).fetchone()[0]
                add_entry(_site(), "objection", {"session": session_id, "raised_by": name, "content": reason},
                          by=g.user.username, conn=conn)
    except (opening.OpeningError, RegisterError) as exc:
        flash(str(exc))
    return redirect(url_for("opening.detail", session_id=session_id))


@bp.post("/<session_id>/sign-off")
@allow("supervisor")
def sign_off(session_id: str) -> Any:
    _session_or_404(session_id)
    _checked()
    try:
        opening.sign_off(_site(), session_id, supervisor=g.user.username)
        flash(_("Signed off: the evaluation takes its prices from this record."))
    except opening.OpeningError as exc:
        flash(str(exc))
    return redirect(url_for("opening.detail", session_id=session_id))
