"""The province's working pages beyond the venue grid (center/ui.py): alarms pushed live and
acknowledged with a note, search across every venue's records, feed management (a day plan, a
replacement-draw result, a template, a revocation to one venue or all), and the center's own
signed log of all these actions (center/log.py). Every action a page takes is appended to
that log in the same transaction as the action itself."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, send_file, stream_with_context, url_for
from flask_babel import gettext as _

from psycopg_pool import PoolClosed

from appliance.clock import VENUE_TZ, utc_timestamp
from appliance.webserver import DISCONNECTED
from center import log as center_log
from center.base import CenterError
from center.db import DatabaseError
from center.ui import _center, _conn, staff_only
from center.views import session_names, venue_names
from center.words import center_alarm_texts, feed_kind_texts, record_kind_texts
from sync.feed import KIND_LANES

bp = Blueprint("center_province", __name__, url_prefix="/center/ui", static_folder="static", static_url_path="/assets")
PAGE = 50
STREAM_S = 600  # a stream ends after ten minutes; the browser reconnects by itself


def _streams() -> threading.BoundedSemaphore:
    """How many live alarm streams this worker holds at once: each holds a thread, so at most
    half of them; the other half stay free for the sites' requests and the pages."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if "center_streams" not in app.extensions:
        app.extensions["center_streams"] = threading.BoundedSemaphore(max(1, app.config.get("CENTER_THREADS", 8) // 2))
    return app.extensions["center_streams"]


# -- alarms ------------------------------------------------------------------------------------

@bp.post("/alarms/<int:alarm_id>/ack")
@staff_only
def acknowledge(alarm_id: int) -> Any:
    note = request.form.get("note", "").strip()
    if not note or len(note) > 500:
        abort(400, description=_("Say what was done (up to 500 characters)."))
    c = _center()
    with c.db.transaction() as conn:
        row = conn.execute("UPDATE alarms SET acknowledged = %s, acknowledged_by = %s, ack_note = %s "
                           "WHERE id = %s AND acknowledged IS NULL RETURNING site, kind",
                           (c.clock.now().isoformat(), g.staff, note, alarm_id)).fetchone()
        if row is None:
            abort(404)
        center_log.append(conn, c.key, c.clock, g.staff, "alarm.acknowledged",
                          {"alarm": alarm_id, "site": row[0], "kind": row[1], "note": note})
    target = request.form.get("next", "")
    return redirect(target if target.startswith("/center/ui") else url_for("center_ui.alarms"))


@bp.get("/alarms/stream")
@staff_only
def alarm_stream() -> Any:
    """Server-sent events: every alarm raised (or raised again) after the stream's cursor. The
    cursor is the event id, so a reconnecting browser (Last-Event-ID) misses none."""
    streams = _streams()
    if not streams.acquire(blocking=False):
        return Response("too many live streams on this worker; the page retries", status=503,
                        headers={"Retry-After": "15"}, mimetype="text/plain")
    c = _center()
    resumed = (request.headers.get("Last-Event-ID") or request.args.get("after") or "")[:40]
    cursor = resumed or c.db.value("SELECT COALESCE(MAX(last_raised), '') FROM alarms")
    venues = venue_names_cached(c)
    words = center_alarm_texts()

    gone = request.environ.get(DISCONNECTED) or threading.Event()

    # A new stream pushes what is raised from now on; a resumed one, what came after its last event.
    sent: set[tuple[int, int]] = set() if resumed else {
        (r[0], r[1]) for r in c.db.all("SELECT id, count FROM alarms WHERE last_raised > %s", (_earlier(cursor),))}

    def events() -> Iterator[str]:
        nonlocal cursor, venues
        try:
            yield "retry: 3000\n\n"
            end = time.monotonic() + STREAM_S
            quiet = time.monotonic()
            while time.monotonic() < end and not gone.is_set():
                try:  # (a window behind the cursor: an alarm stamped before a slower one committed is not missed)
                    rows = c.db.all("SELECT id, site, kind, count, last_raised FROM alarms WHERE last_raised > %s "
                                    "ORDER BY last_raised LIMIT 200", (_earlier(cursor),))
                except (DatabaseError, PoolClosed):  # the database away, or the worker stopping: the browser reconnects
                    return
                for alarm_id, site, kind, count, last_raised in rows:
                    if (alarm_id, count) in sent:
                        continue
                    sent.add((alarm_id, count))
                    cursor = max(cursor, last_raised)
                    venues = venue_names_cached(c, site) if site and site not in venues else venues
                    data = {"id": alarm_id, "site": site, "venue": venues.get(site or "", site or _("unknown sender")),
                            "kind": kind, "words": words.get(kind, kind), "count": count}
                    yield f"id: {cursor}\nevent: alarm\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
                    quiet = time.monotonic()
                if time.monotonic() - quiet > 15:
                    yield ": keep-alive\n\n"
                    quiet = time.monotonic()
                gone.wait(2)
        finally:
            streams.release()

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _earlier(stamp: str, seconds: int = 60) -> str:
    """A timestamp a minute before ``stamp`` (the window a stream looks back over)."""
    try:
        return utc_timestamp(datetime.fromisoformat(stamp.replace("Z", "+00:00")) - timedelta(seconds=seconds))
    except ValueError:
        return stamp


def venue_names_cached(c: Any, site: str | None = None) -> dict[str, str]:
    """The venues' names, read again at most once a minute (or when ``site`` is not among them)."""
    cache = c.__dict__.setdefault("_venue_names", {"at": -1e9, "names": {}})
    if time.monotonic() - cache["at"] > 60 or (site and site not in cache["names"]):
        with c.db.reader() as conn:
            cache.update(at=time.monotonic(), names=venue_names(conn))
    return dict(cache["names"])


# -- legal holds -------------------------------------------------------------------------------

@bp.post("/sites/<site_id>/sessions/<session_id>/hold")
@staff_only
def hold(site_id: str, session_id: str) -> Any:
    """Keep a session's footage beyond the 15 years (a complaint, a case): the hold is recorded,
    set on every object of the session, and written to the center's log."""
    reason = request.form.get("reason", "").strip()
    if not reason or len(reason) > 300:
        abort(400, description=_("Say why the footage must be kept (up to 300 characters)."))
    c = _center()
    stamp = utc_timestamp(c.clock.now())
    with c.db.transaction() as conn:
        if conn.execute("SELECT 1 FROM sites WHERE id = %s", (site_id,)).fetchone() is None:
            abort(404)
        conn.execute("INSERT INTO legal_holds (site, session, reason, placed_by, placed) VALUES (%s, %s, %s, %s, %s)",
                     (site_id, session_id, reason, g.staff, stamp))
        held = conn.execute(
            """UPDATE objects SET legal_hold = %s WHERE sha256 IN (SELECT m.sha256 FROM media m JOIN records r
               ON r.site = m.site AND r.seq = m.seq WHERE m.site = %s AND strpos(r.body, %s) > 0) RETURNING sha256""",
            (stamp, site_id, json.dumps(session_id))).fetchall()
        center_log.append(conn, c.key, c.clock, g.staff, "hold.placed",
                          {"site": site_id, "session": session_id, "reason": reason, "objects": len(held)})
    return redirect(url_for("center_ui.session_footage_page", site_id=site_id, session_id=session_id))


def _package_download(write: Any, download_name: str) -> Any:
    """An evidence package written by ``write(center, path)`` into the center's exports folder,
    sent as a download and removed once sent (a CenterError answers with its status)."""
    import tempfile

    c = _center()
    folder = c.data / "exports"
    folder.mkdir(exist_ok=True)
    handle, name = tempfile.mkstemp(dir=folder, suffix=".zip")
    os.close(handle)
    path = Path(name)
    try:
        write(c, path)
    except CenterError as exc:
        path.unlink(missing_ok=True)
        abort(exc.status, description=str(exc))
    response = send_file(path, mimetype="application/zip", as_attachment=True, download_name=download_name, max_age=0)
    response.call_on_close(lambda: path.unlink(missing_ok=True))
    return response


@bp.post("/sites/<site_id>/sessions/<session_id>/evidence")
@staff_only
def evidence(site_id: str, session_id: str) -> Any:
    """The session's evidence package as the center holds it (center/evidence.py), to download;
    checked offline with `appliance evidence verify`. Written to the center's log."""
    from center.evidence import export

    return _package_download(lambda c, path: export(c, site_id, session_id, path, by=g.staff),
                             f"{site_id}-{session_id}-evidence.zip")


@bp.post("/sessions/<session_id>/remote-evidence")
@staff_only
def remote_evidence(session_id: str) -> Any:
    """A remote evaluation's package: every venue's records and keys (center/evidence.py
    `export_remote`), to download; checked offline with `appliance evidence verify`."""
    from center.evidence import export_remote

    return _package_download(lambda c, path: export_remote(c, session_id, path, by=g.staff),
                             f"{session_id}-remote-evidence.zip")


# -- search ------------------------------------------------------------------------------------

def _day(text: str, field: str, end: bool = False) -> str | None:
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=VENUE_TZ)
    except ValueError:
        abort(400, description=_("%(field)s: a date as YYYY-MM-DD", field=field))
    return utc_timestamp(day + timedelta(days=1) if end else day)


@bp.get("/search")
@staff_only
def search() -> Any:
    """Records of every venue by kind, venue, date range, session, project code (标段编号) or a
    masked name as the screens show it, newest first, a page at a time (keyset paging)."""
    args = {k: request.args.get(k, "").strip()[:100] for k in ("kind", "site", "from", "to", "session", "project", "person")}
    conn = _conn()
    where, params = [], []
    if args["kind"]:
        where.append("kind = %s")
        params.append(args["kind"])
    if args["site"]:
        where.append("site = %s")
        params.append(args["site"])
    start, end = _day(args["from"], _("From")), _day(args["to"], _("To"), end=True)
    if start:
        where.append("ts >= %s")
        params.append(start)
    if end:
        where.append("ts < %s")
        params.append(end)
    sessions = [args["session"]] if args["session"] else []
    if args["project"]:  # the sessions whose plan names this section code
        sessions += [sid for (body,) in conn.execute("SELECT body FROM records WHERE kind = 'plan.loaded'")
                     for sid, names in (json.loads(body)["payload"].get("session_names") or {}).items()
                     if names.get("section_code") == args["project"]]
        if not sessions:
            sessions = ["\x00none"]
    if sessions:
        where.append("session = ANY(%s)")
        params.append(sessions)
    if args["person"] and not (args["site"] or sessions or (start and end)):
        abort(400, description=_("To look for a person, also give a venue, a session or a date range."))
    if args["person"]:  # a masked name as the screens show it (张*伟): never a full name or number
        where.append("strpos(body, %s) > 0")
        params.append(json.dumps(args["person"], ensure_ascii=False)[1:-1])
    before = request.args.get("before", "")
    if before.count("|") == 2:
        ts, site, seq = before.split("|")
        where.append("(ts, site, seq) < (%s, %s, %s)")
        params += [ts, site, int(seq) if seq.isdigit() else 0]
    searched = any(args.values())
    rows = []
    if searched:
        rows = conn.execute(f"SELECT site, seq, kind, ts, session, body FROM records WHERE {' AND '.join(where) or 'TRUE'} "
                            "ORDER BY ts DESC, site DESC, seq DESC LIMIT %s", (*params, PAGE + 1)).fetchall()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    results = [{"site": r[0], "seq": r[1], "kind": r[2], "ts": r[3], "session": r[4], "payload": json.loads(r[5])["payload"]}
               for r in rows]
    next_before = f"{rows[-1][3]}|{rows[-1][0]}|{rows[-1][1]}" if more else None
    kinds = sorted(record_kind_texts())  # (the choices: never a scan of the records)
    names = {site: session_names(conn, site) for site in {r["site"] for r in results}}
    return render_template("center_search.html", args=args, results=results, next_before=next_before, searched=searched,
                           venues=venue_names(conn), kinds=kinds, kind_words=record_kind_texts(), session_names=names)


# -- feed management -----------------------------------------------------------------------------

@bp.route("/feed", methods=["GET", "POST"])
@staff_only
def feed() -> Any:
    """Publish a signed feed item to one venue or to all of them."""
    c = _center()
    message, error, status = None, None, 200
    if request.method == "POST":
        kind, target, text = request.form.get("kind", ""), request.form.get("site", ""), request.form.get("body", "")
        upload = request.files.get("file")
        if upload is not None and upload.filename:
            text = upload.read(1 << 20).decode("utf-8", errors="replace")
        try:
            body = json.loads(text)
        except ValueError as exc:
            body, error, status = None, _("The item is not JSON: %(why)s", why=str(exc)[:200]), 400
        if body is not None:
            sites = [r[0] for r in c.db.all("SELECT id FROM sites WHERE public_key IS NOT NULL AND revoked IS NULL ORDER BY id")]
            targets = sites if target == "*" else [target]
            try:
                with c.db.transaction() as conn:  # every venue's item and the log entry, or none of them
                    done = [c.add_item(site, kind, body, conn=conn) for site in targets]
                    center_log.append(conn, c.key, c.clock, g.staff, "feed.published",
                                      {"kind": kind, "sites": targets, "items": [[d["site"], d["lane"], d["seq"]] for d in done]})
                message = _("Published to %(n)s venues.", n=len(done))
            except CenterError as exc:
                error, status = str(exc), exc.status
    recent = c.db.all("SELECT site, lane, seq, kind, issued FROM feed ORDER BY issued DESC, site, seq DESC LIMIT 50")
    with c.db.reader() as conn:
        venues = venue_names(conn)
    sites = [r[0] for r in c.db.all("SELECT id FROM sites ORDER BY id")]
    return render_template("center_feed.html", kinds=[k for k in feed_kind_texts() if k in KIND_LANES], kind_words=feed_kind_texts(),
                           sites=sites, venues=venues, recent=recent, message=message, error=error), status


# -- the center's own log ------------------------------------------------------------------------

@bp.get("/log")
@staff_only
def log() -> Any:
    c = _center()
    check = center_log.verify(c.db.all("SELECT seq, body, hash, sig FROM center_log ORDER BY seq"), c.key.public_key())
    return render_template("center_log.html", entries=center_log.entries(c.db), check=check, kind_words=feed_kind_texts())
