"""The supervisors' room (行政监督 / 社会监督员 / 见证员): the journal as evidence and a check that
it is intact; the open alarms (acknowledged by staff on the console); and the footage of each
session — its segments with an integrity check against their sealing records, a timeline of the
session's journal events aligned with the video, bookmarks, and the evidence package."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.clock import utc_timestamp
from appliance.journal import CHECKPOINT_FILE, JournalDamaged
from appliance.names import device_labels
from appliance.personal import contains_personal_number, redact_personal_data
from appliance.siteops.alarms import open_alarms
from appliance.verify import verify_journal
from kiosk_ui import review_overview as overview
from kiosk_ui.access import allow, uploads_up_to
from kiosk_ui.forms import ActionForm, BookmarkForm, EvidenceForm
from kiosk_ui.operations import alarm_labels
from kiosk_ui.words import Names, evidence_problem, remote_evidence_problem, sentence, state_texts

bp = Blueprint("review", __name__, url_prefix="/review")
VENUE_TZ = ZoneInfo("Asia/Shanghai")
PAGE = 50


@bp.get("/")
@allow("supervisor")
def home(result: dict[str, Any] | None = None) -> Any:
    """What a supervisor acts on: today's sessions, open alarms, the journal's integrity and
    the day's events that need a look (review_overview.py)."""
    site = current_app.extensions["site"]
    return render_template("review_home.html", sessions=overview.sessions_today(site), attention=overview.attention(site),
                           integrity=overview.integrity(site), action=ActionForm(), result=result, alarms=open_alarms(site),
                           alarm_labels=alarm_labels(), states=state_texts())


@bp.get("/journal")
@allow("supervisor")
def journal() -> Any:
    """The raw journal, 50 records a page, newest first: for auditors."""
    site = current_app.extensions["site"]
    head = site.journal.count()
    try:
        end = max(0, min(head, int(request.args.get("upto", head))))
    except ValueError:
        abort(400)
    start = max(0, end - PAGE)
    records = list(reversed(_readable_records(site, start, end)))
    return render_template("review_journal.html", records=records, head=head, start=start, redact=redact_personal_data)


def _readable_records(site: Any, start: int, end: int) -> list[Any]:
    """Records (start, end]; a damaged one (altered in the database) is shown as such, in its
    place, so the page — and the verdict of a check just run — stays readable around it."""
    if end <= start:
        return []
    try:
        return site.journal.records(since=start, limit=end - start)
    except JournalDamaged:
        out: list[Any] = []
        for seq in range(start + 1, end + 1):
            try:
                found = site.journal.records(since=seq - 1, limit=1)
            except JournalDamaged:
                found = []
            out += [r for r in found if r.seq == seq] or [{"seq": seq, "damaged": True}]
        return out


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
    return home(result=outcome)


# -- footage ------------------------------------------------------------------------------------

TIMELINE_KINDS = {  # journal kinds shown on a session's timeline, with their screen words
    "gate.decision": _l("Gate"), "checkin.started": _l("Check-in started"), "checkin.commitment_signed": _l("Commitment signed"),
    "checkin.conflict_declared": _l("Conflict declared"), "locker.assigned": _l("Locker assigned"),
    "session.state": _l("Session state"), "session.no_show": _l("No-show"), "replacement_draw.requested": _l("Replacement draw requested"),
    "exit.approved": _l("Exit approved"), "alarm.raised": _l("Alarm"), "gate.assisted": _l("Staff-assisted check"),
    "review.bookmark": _l("Bookmark"), "fees.sheet": _l("Fee sheet"),
    "evaluation.signed_in": _l("Signed in at a terminal"), "evaluation.vote_round": _l("Chair vote"),
    "evaluation.step_confirmed": _l("Step confirmed"), "evaluation.reopen_approved": _l("Step reopened"),
    "evaluation.clarification_asked": _l("Clarification call"), "evaluation.clarification_answered": _l("Clarification answered"),
    "evaluation.revised": _l("Score revised"), "evaluation.results": _l("Results"), "evaluation.report_signed": _l("Report signed"),
    "evaluation.report": _l("Report issued"), "opening.recorded": _l("Opening record"), "opening.signed_off": _l("Opening signed off"),
}


def _ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def _session_or_404(site: Any, session_id: str) -> dict[str, Any]:
    row = site.store.reader().execute(
        "SELECT s.id, s.section_name, s.section_code, s.state, s.start, s.end, s.room, r.name AS room_name "
        "FROM sessions s JOIN rooms r ON r.id = s.room WHERE s.id = ?", (session_id,)).fetchone()
    if row is None:
        abort(404)
    return dict(row)


@bp.get("/sessions")
@allow("supervisor")
def sessions() -> Any:
    site = current_app.extensions["site"]
    rows = [dict(r) for r in site.store.reader().execute(
        """SELECT s.id, s.day, s.section_name, s.state, s.start, r.name AS room_name,
                  (SELECT COUNT(*) FROM segment_sessions l WHERE l.session = s.id) AS segments
           FROM sessions s JOIN rooms r ON r.id = s.room ORDER BY s.start DESC LIMIT 200""")]
    return render_template("review_sessions.html", sessions=rows)


@bp.get("/footage")
@allow("supervisor")
def footage() -> Any:
    """Footage by room and time, whatever the session (ambient footage too): the segments of the
    room's cameras overlapping the window, and the journal's events of that window."""
    site = current_app.extensions["site"]
    conn = site.store.reader()
    rooms = [dict(r) for r in conn.execute("SELECT DISTINCT s.room AS id, COALESCE(r.name, s.room) AS name FROM segments s "
                                           "LEFT JOIN rooms r ON r.id = s.room ORDER BY s.room")]
    today = site.clock.now().astimezone(VENUE_TZ).date()
    room = request.args.get("room") or (rooms[0]["id"] if rooms else "")
    try:
        day = date.fromisoformat(request.args.get("day") or today.isoformat())
        start = datetime.combine(day, dt_time.fromisoformat(request.args.get("from") or "00:00"), VENUE_TZ)
        end = datetime.combine(day, dt_time.fromisoformat(request.args.get("to") or "23:59"), VENUE_TZ)
    except ValueError:
        abort(400)
    if end <= start:
        abort(400)
    segments = [dict(r) for r in conn.execute(
        """SELECT s.id, s.camera, s.room, s.start, s.end, s.duration_ms, s.sha256, s.seq,
                  (SELECT GROUP_CONCAT(l.session) FROM segment_sessions l WHERE l.segment = s.id) AS sessions
           FROM segments s WHERE s.room = ? AND s.deleted IS NULL AND s.end > ? AND s.start < ? ORDER BY s.camera, s.start
           LIMIT 2000""", (room, utc_timestamp(start), utc_timestamp(end)))]
    for seg in segments:
        seg["start_ms"], seg["end_ms"] = _ms(seg["start"]), _ms(seg["end"])
        seg["url"] = url_for("review.segment_video", segment_id=seg["id"])
    events = []
    names = Names(site)
    for seq, ts, kind, body in conn.execute(
            "SELECT seq, ts, kind, body FROM journal WHERE ts >= ? AND ts < ? AND kind IN (%s) ORDER BY seq LIMIT 1000"
            % ",".join("?" * len(TIMELINE_KINDS)), (utc_timestamp(start), utc_timestamp(end), *TIMELINE_KINDS)):
        events.append({"seq": seq, "ts": ts, "ms": _ms(ts), "kind": kind, "label": str(TIMELINE_KINDS[kind]),
                       "text": _event_text(kind, json.loads(body)["payload"], names)})
    labels = device_labels(site.config)
    for seg in segments:
        seg["camera_label"] = labels.get(seg["camera"], seg["camera"])
    return render_template("review_footage.html", rooms=rooms, room=room, day=day.isoformat(), start=start.strftime("%H:%M"),
                           end=end.strftime("%H:%M"), segments=segments, events=events)


@bp.route("/evidence/verify", methods=["GET", "POST"])
@allow("supervisor")
@uploads_up_to(8 << 30)  # a package carries its footage: far above the forms' limit
def verify_evidence() -> Any:
    """Check an evidence package (a ZIP from any site): what `appliance evidence verify` does,
    plus whether it was signed by this site's key. Journaled as ``review.evidence_verified``."""
    import tempfile

    from appliance.evidence import EvidenceError
    from appliance.evidence import verify as verify_package
    from appliance.evidence_remote import is_remote, verify_remote
    from appliance.keys import fingerprint
    from appliance.segments import sha256_file

    site = current_app.extensions["site"]
    form = EvidenceForm()
    result = refusal = None
    if form.validate_on_submit() and contains_personal_number(form.file.data.filename or ""):
        refusal = _("The file's name contains an ID number or a bank card number. Rename the file and check it again.")
    elif form.validate_on_submit():
        with tempfile.NamedTemporaryFile(suffix=".zip", dir=site.data_dir) as tmp:
            form.file.data.save(tmp)  # spooled in the data folder by the app's request class, copied in blocks
            tmp.flush()
            digest = sha256_file(Path(tmp.name))
            try:  # from any site: checked with its own key, whose fingerprint is compared with ours
                if is_remote(Path(tmp.name)):  # a remote evaluation's: every venue's package, each with its key
                    report = verify_remote(Path(tmp.name)).as_json()
                    report.update(records=sum(v.get("records", 0) for v in report["venues"]), key_fingerprint="",
                                  segments=sum(v.get("segments", 0) for v in report["venues"]))
                else:
                    report = verify_package(Path(tmp.name)).as_json()
            except EvidenceError as exc:  # not a ZIP at all
                report = {"ok": False, "records": 0, "segments": 0, "problems": [str(exc)], "details": [{"code": "not_zip"}],
                          "key_fingerprint": ""}
            mine = fingerprint(site.public_key)
            ours = report["key_fingerprint"] == mine or any(v.get("key_fingerprint") == mine for v in report.get("venues", []))
        worded = remote_evidence_problem if report.get("remote") else evidence_problem
        result = {**report, "this_site": ours, "name": form.file.data.filename, "sha256": digest,
                  "problem_texts": [worded(d) for d in report["details"]]}
        site.journal.record("review.evidence_verified", {"file": (form.file.data.filename or "")[:200], "sha256": result["sha256"],
                                                         "ok": report["ok"], "this_site": ours,
                                                         "problems": len(report["problems"]), "by": g.user.username})
    return render_template("review_evidence.html", form=form, result=result, refusal=refusal), 400 if refusal else 200


@bp.get("/sessions/<session_id>")
@allow("supervisor")
def session(session_id: str) -> Any:
    site = current_app.extensions["site"]
    info = _session_or_404(site, session_id)
    segments = [dict(r) for r in site.store.reader().execute(
        """SELECT s.id, s.camera, s.room, s.start, s.end, s.duration_ms, s.sha256, s.seq FROM segments s
           JOIN segment_sessions l ON l.segment = s.id WHERE l.session = ? AND s.deleted IS NULL ORDER BY s.camera, s.start""",
        (session_id,))]
    for seg in segments:
        seg["start_ms"], seg["end_ms"] = _ms(seg["start"]), _ms(seg["end"])
        seg["url"] = url_for("review.segment_video", segment_id=seg["id"])
    events = []
    names = Names(site)
    for seq, ts, kind, payload in _session_events(site, session_id):
        if kind in TIMELINE_KINDS:
            events.append({"seq": seq, "ts": ts, "ms": _ms(ts), "kind": kind, "label": str(TIMELINE_KINDS[kind]),
                           "text": _event_text(kind, payload, names)})
    labels = device_labels(site.config)
    for seg in segments:
        seg["camera_label"] = labels.get(seg["camera"], seg["camera"])
    cameras = sorted({s["camera"] for s in segments})
    return render_template("review_session.html", session=info, segments=segments, events=events, cameras=cameras,
                           action=ActionForm(), bookmark=BookmarkForm(formdata=None),
                           verified=_verified.get(session_id, {}))


def _session_events(site: Any, session_id: str) -> list[tuple[int, str, str, dict[str, Any]]]:
    from appliance.evidence import session_records

    out = []
    for seq, body, _h, _s in session_records(site, session_id):
        obj = json.loads(body)
        out.append((seq, obj["ts"], obj["kind"], obj["payload"]))
    return out


def _event_text(kind: str, payload: dict[str, Any], names: Names) -> str:
    """The event as a sentence, people and places by name (masked names: never in clear)."""
    return redact_personal_data(sentence(kind, payload, names))


_verified: dict[str, dict[int, bool]] = {}  # session → segment id → intact, from the last check on this screen


@bp.post("/sessions/<session_id>/verify")
@allow("supervisor")
def verify_footage(session_id: str) -> Any:
    """Re-hash each segment of the session against its sealing record in the journal."""
    if not ActionForm().validate_on_submit():
        abort(400)
    from appliance.segments import recordings_dir, sha256_file

    site = current_app.extensions["site"]
    _session_or_404(site, session_id)
    results: dict[int, bool] = {}
    for seg_id, path, seq in site.store.reader().execute(
            "SELECT s.id, s.path, s.seq FROM segments s JOIN segment_sessions l ON l.segment = s.id WHERE l.session = ?",
            (session_id,)):
        record = site.journal.records(since=seq - 1, limit=1)[0]
        try:
            results[seg_id] = record.kind == "recording.segment" and sha256_file(recordings_dir(site) / path) == record.payload["sha256"]
        except OSError:
            results[seg_id] = False
    _verified[session_id] = results
    site.journal.record("review.footage_verified", {"session": session_id, "by": g.user.username, "segments": len(results),
                                                    "intact": sum(results.values())})
    return redirect(url_for("review.session", session_id=session_id))


@bp.get("/segments/<int:segment_id>/video")
@allow("supervisor")
def segment_video(segment_id: int) -> Any:
    from appliance.segments import recordings_dir

    site = current_app.extensions["site"]
    row = site.store.reader().execute("SELECT path FROM segments WHERE id = ? AND deleted IS NULL", (segment_id,)).fetchone()
    if row is None:
        abort(404)
    path = recordings_dir(site) / row[0]
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="video/mp4", conditional=True, max_age=3600)  # byte ranges: the video element seeks


@bp.post("/sessions/<session_id>/bookmarks")
@allow("supervisor")
def add_bookmark(session_id: str) -> Any:
    form = BookmarkForm()
    site = current_app.extensions["site"]
    _session_or_404(site, session_id)
    cameras = {c.name for c in site.config.recording.cameras}
    if form.validate_on_submit() and form.camera.data not in cameras | {""}:
        abort(400)
    if form.validate_on_submit():
        at = datetime.fromtimestamp(form.at_ms.data / 1000, timezone.utc)
        site.journal.record("review.bookmark", {"session": session_id, "at": utc_timestamp(at), "camera": form.camera.data,
                                                "note": redact_personal_data(form.note.data.strip()), "by": g.user.username})
    return redirect(url_for("review.session", session_id=session_id))


@bp.post("/sessions/<session_id>/evidence")
@allow("supervisor")
def evidence(session_id: str) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    from appliance.evidence import export

    site = current_app.extensions["site"]
    _session_or_404(site, session_id)
    folder = site.data_dir / "evidence"
    folder.mkdir(exist_ok=True)
    out = folder / f"{session_id}-{site.clock.now().strftime('%Y%m%dT%H%M%SZ')}.zip"
    export(site, session_id, out, by=g.user.username)
    return send_file(out, mimetype="application/zip", as_attachment=True, download_name=out.name)


# -- live view ----------------------------------------------------------------------------------


@bp.get("/live")
@allow("supervisor")
def live() -> Any:
    """The monitoring room (监控室): every camera's current picture, refreshed every two seconds
    from its sub-stream by the recorder while someone watches, however many are watching."""
    site = current_app.extensions["site"]
    labels = device_labels(site.config)
    cameras = [{**dict(r), "label": labels.get(r["name"], r["name"])} for r in site.store.reader().execute(
        "SELECT c.name, c.room, r.name AS room_name FROM camera_streams c LEFT JOIN rooms r ON r.id = c.room ORDER BY c.room, c.name")]
    return render_template("review_live.html", cameras=cameras)


@bp.get("/live/<name>.jpg")
@allow("supervisor")
def live_frame(name: str) -> Any:
    """A camera's latest picture, as the recorder keeps it (appliance/live_pictures.py): this
    request only asks for it and reads the file, it never waits for a decoder; 503 while there
    is no fresh one (the recorder just started on it, or the camera is off)."""
    from appliance.live_pictures import latest, want
    from appliance.segments import recordings_dir

    site = current_app.extensions["site"]
    if site.store.reader().execute("SELECT 1 FROM camera_streams WHERE name = ?", (name,)).fetchone() is None:
        abort(404)
    folder = recordings_dir(site) / name
    want(folder)
    picture = latest(folder)
    if picture is None:
        abort(503)
    response = current_app.response_class(picture, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "no-store"
    return response
