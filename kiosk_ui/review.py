"""The supervisors' room (行政监督 / 社会监督员 / 见证员): the journal as evidence, and a check that
it is intact, and the open alarms (acknowledged by staff on the console). Recordings and the
event timeline arrive with the recording issue."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, g, render_template, request

from appliance.journal import CHECKPOINT_FILE
from appliance.personal import redact_id_numbers
from appliance.verify import verify_journal
from kiosk_ui.access import allow
from kiosk_ui.forms import ActionForm
from kiosk_ui.operations import alarm_labels
from appliance.siteops.alarms import open_alarms

bp = Blueprint("review", __name__, url_prefix="/review")
PAGE = 50


@bp.get("/")
@allow("supervisor")
def home() -> Any:
    site = current_app.extensions["site"]
    head = site.journal.count()
    try:
        end = min(head, int(request.args.get("upto", head)))
    except ValueError:
        abort(400)
    return _page(site, max(0, end), result=None)


def _page(site: Any, end: int, result: dict[str, Any] | None) -> Any:
    """Records (end - PAGE, end], newest first."""
    start = max(0, end - PAGE)
    records = list(reversed(site.journal.records(since=start, limit=end - start))) if end > start else []
    return render_template(
        "review_home.html", records=records, head=site.journal.count(), start=start,
        latest=site.journal.latest_checkpoint(), action=ActionForm(), result=result, redact=redact_id_numbers,
        alarms=open_alarms(site), alarm_labels=alarm_labels(),
    )


@bp.post("/verify")
@allow("supervisor")
def verify() -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    site = current_app.extensions["site"]
    note_path = site.data_dir / CHECKPOINT_FILE
    note = note_path.read_text(encoding="utf-8") if note_path.exists() else None
    result = verify_journal(site.store.reader(), site.config.site.id, site.public_key, latest_note=note)
    outcome = result.as_json()
    site.journal.record("journal.verified", {**outcome, "by": g.user.username})
    return _page(site, site.journal.count(), result=outcome)
