"""The center's pages for provincial staff (中文 by default, English on request): the sites with
their head and lag, the alarms, the sessions and recordings received, and an inclusion proof
of any record, checked before it is shown.

Logins are the center's own staff (``appliance center staff NAME``), with the venue's account
machinery (`sync.center_accounts`): server-side sessions that logout and a password reset end,
the lockout (five wrong passwords, five minutes) in the database. Forms carry a CSRF token
(Flask-WTF); the API routes of the center are signed by sites instead and are not under CSRF.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import Babel
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect

from psycopg.rows import dict_row

from appliance import merkle
from appliance.clock import utc_timestamp
from center.accounts import CenterStaff
from center.base import CenterError
from center.core import create_once
from center.views import media_object, session_footage, session_names, stream_object, venue_alarms, venue_names
from center.words import center_alarm_texts, detail_texts, record_kind_texts, state_texts, venue_alarm_texts, venue_state_texts

TRANSLATIONS = Path(__file__).resolve().parent.parent / "kiosk_ui" / "translations"
LANGUAGES = {"zh_Hans_CN": "中文", "en": "English"}
LANG_COOKIE = "center_lang"
VENUE_TZ = ZoneInfo("Asia/Shanghai")

bp = Blueprint("center_ui", __name__, url_prefix="/center/ui", template_folder="templates")


def prepare_secrets(center: Any) -> Path:
    """The pages' cookie-signing secret, made once and shared by every worker."""
    secret = center.data / "ui-secret"
    create_once(secret, lambda: secrets.token_bytes(32))
    return secret


def init_ui(app: Flask, center: Any) -> None:
    secret = prepare_secrets(center)
    app.config.update(SECRET_KEY=secret.read_bytes(), SESSION_COOKIE_NAME="center_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None,
                      BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS), BABEL_DEFAULT_LOCALE="zh_Hans_CN",
                      BABEL_DEFAULT_TIMEZONE="Asia/Shanghai")
    csrf = CSRFProtect(app)
    Babel(app, locale_selector=lambda: request.cookies.get(LANG_COOKIE) if request.cookies.get(LANG_COOKIE) in LANGUAGES
          else "zh_Hans_CN")
    app.extensions["center"] = center
    app.extensions["center_staff"] = CenterStaff(center)

    @app.before_request
    def protect() -> None:
        g.staff = app.extensions["center_staff"].session_name(session.get("staff_token"))
        if request.blueprint in ("center_ui", "center_province") and request.method == "POST":
            csrf.protect()

    @app.template_filter("local_time")
    def local_time(stamp: str | None) -> str:
        if not stamp:
            return "—"
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(VENUE_TZ).strftime("%Y-%m-%d %H:%M:%S")

    @app.context_processor
    def globals_for_templates() -> dict[str, Any]:
        lang = request.cookies.get(LANG_COOKIE, "zh_Hans_CN")
        return {"staff": g.get("staff"), "languages": LANGUAGES, "locale": lang,
                "html_lang": "en" if lang == "en" else "zh-CN", "center_alarm_words": center_alarm_texts(),
                "detail_words": detail_texts()}

    @app.after_request
    def security_headers(response: Any) -> Any:
        if request.path.startswith("/center/ui"):
            h = response.headers
            h.setdefault("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "
                         "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
            h.setdefault("X-Content-Type-Options", "nosniff")
            h.setdefault("Cache-Control", "no-store")
        return response

    @app.teardown_request
    def give_back_connection(exc: BaseException | None) -> None:
        hold = g.pop("db_hold", None)
        g.pop("db_conn", None)
        if hold is not None:
            hold.__exit__(None, None, None)

    app.register_blueprint(bp)


def _center() -> Any:
    return current_app.extensions["center"]


def _conn() -> Any:
    """The request's database connection (taken from the pool once, returned when it ends)."""
    if "db_conn" not in g:
        g.db_hold = _center().db.pool.connection()
        g.db_conn = g.db_hold.__enter__()
    return g.db_conn


def _dicts(conn: Any, sql: str, args: Any = ()) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, args).fetchall()


def staff_only(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not g.get("staff"):
            return redirect(url_for("center_ui.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)
    return wrapper


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error, status = None, 200
    if request.method == "POST":
        name, password = request.form.get("name", "").strip(), request.form.get("password", "")
        outcome, token = current_app.extensions["center_staff"].login(name, password, request.remote_addr or "")
        if outcome == "ok" and token:
            session.clear()
            session["staff_token"] = token
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/center/ui") else url_for("center_ui.sites"))
        # Wrong, unknown, locked and disabled read the same: the page does not tell which names exist.
        error, status = {
            "address_limited": (_("Too many login attempts from this computer. Wait a minute and try again."), 429),
            "busy": (_("Too many login attempts from this computer. Wait a minute and try again."), 429),
        }.get(outcome, (_("Wrong name or password, or the login is locked after repeated failures "
                            "(it unlocks by itself after a few minutes; an administrator can unlock it sooner)."), 401))
    return render_template("center_login.html", error=error), status


@bp.post("/logout")
def logout() -> Any:
    token = session.get("staff_token")
    if token:
        current_app.extensions["center_staff"].logout(token)
    session.clear()
    return redirect(url_for("center_ui.login"))


@bp.post("/language")
def language() -> Any:
    lang = request.form.get("lang", "")
    target = request.form.get("next", "")
    response = redirect(target if target.startswith("/center/ui") else url_for("center_ui.sites"))
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


def site_rows(center: Any = None) -> list[dict[str, Any]]:
    """Every venue with its state: in sync, behind, diverged, silent, revoked, not enrolled."""
    sql = """SELECT s.id, s.enrolled, s.revoked, s.size, s.head, s.last_seen, s.reported_size, s.reported_at,
                  (SELECT COALESCE(SUM(count), 0) FROM alarms a WHERE a.site = s.id AND a.acknowledged IS NULL) AS alarms,
                  (SELECT fingerprint FROM site_keys k WHERE k.site = s.id AND k.generation = s.generation) AS fingerprint,
                  (SELECT COUNT(*) FROM media m WHERE m.site = s.id) AS media,
                  (SELECT COALESCE(SUM(size), 0) FROM media m WHERE m.site = s.id) AS media_bytes
           FROM sites s ORDER BY s.id"""
    if center is None:
        rows = _dicts(_conn(), sql)
    else:
        with center.db.reader() as conn:
            rows = _dicts(conn, sql)
    out = []
    c = center or _center()
    now = c.clock.now()
    silent_after = timedelta(hours=c.config.silent_after_hours)
    for r in rows:
        item = dict(r)
        item["lag"] = None if r["reported_size"] is None else max(0, r["reported_size"] - r["size"])
        last = datetime.fromisoformat(r["last_seen"].replace("Z", "+00:00")) if r["last_seen"] else None
        item["silent_h"] = int((now - last).total_seconds() // 3600) if last and now - last > silent_after else None
        # diverged: the site says it has fewer records than the center holds (an old image)
        item["sync_state"] = ("revoked" if r["revoked"] else "not_enrolled" if not r["enrolled"]
                              else "unknown" if item["lag"] is None else "diverged" if r["reported_size"] < r["size"]
                              else "in_sync" if item["lag"] == 0 else "behind")
        # What the grid colours a venue by, the worst first.
        item["state"] = (item["sync_state"] if item["sync_state"] in ("revoked", "not_enrolled", "diverged")
                         else "silent" if item["silent_h"] is not None
                         else "alarm" if r["alarms"] else item["sync_state"])
        out.append(item)
    return out


@bp.get("/")
@staff_only
def sites() -> Any:
    rows = site_rows()
    if request.args.get("format") == "json":
        return jsonify(rows)
    return render_template("center_sites.html", sites=rows, venues=venue_names(_conn()), venue_states=venue_state_texts())


@bp.get("/alarms")
@staff_only
def alarms() -> Any:
    conn = _conn()
    rows = [r | {"detail": json.loads(r["detail"])} for r in _dicts(
        conn, "SELECT id, site, kind, detail, raised, count, last_raised, source, acknowledged, acknowledged_by, ack_note FROM alarms "
        "ORDER BY acknowledged IS NOT NULL, last_raised DESC, id DESC LIMIT 500")]
    venue = venue_alarms(conn)
    sessions = {site: session_names(conn, site) for site in {a["site"] for a in venue}}
    return render_template("center_alarms.html", alarms=rows, venue_alarms=venue, venues=venue_names(conn),
                           session_names=sessions, alarm_words=venue_alarm_texts())


@bp.get("/sites/<site_id>")
@staff_only
def site(site_id: str) -> Any:
    info = next((s for s in site_rows() if s["id"] == site_id), None)
    if info is None:
        abort(404)
    conn = _conn()
    sessions: dict[str, dict[str, Any]] = {}
    for seq, body in conn.execute("SELECT seq, body FROM records WHERE site = %s AND kind = 'session.state' ORDER BY seq",
                                  (site_id,)):
        payload = json.loads(body)["payload"]
        s = sessions.setdefault(payload["session"], {"id": payload["session"], "states": [], "segments": 0, "received": 0})
        s["states"].append({"to": payload["to"], "ts": json.loads(body)["ts"], "seq": seq})
    recordings = []
    for seq, body in conn.execute("SELECT seq, body FROM records WHERE site = %s AND kind = 'recording.segment' ORDER BY seq DESC",
                                  (site_id,)):
        payload = json.loads(body)["payload"]
        if not payload["sessions"]:
            continue
        held = conn.execute("SELECT received FROM media WHERE site = %s AND seq = %s", (site_id, seq)).fetchone()
        recordings.append({"seq": seq, **{k: payload[k] for k in ("camera", "room", "start", "end", "size", "sha256", "sessions")},
                           "received": held[0] if held else None})
        for session_id in payload["sessions"]:
            if session_id in sessions:
                sessions[session_id]["segments"] += 1
                sessions[session_id]["received"] += 1 if held else 0
    site_alarms = [r | {"detail": json.loads(r["detail"])} for r in _dicts(
        conn, "SELECT id, kind, detail, raised, count, last_raised, source, acknowledged, acknowledged_by, ack_note FROM alarms WHERE site = %s "
        "ORDER BY last_raised DESC, id DESC LIMIT 100", (site_id,))]
    receipt = conn.execute("SELECT size, note, issued FROM receipts WHERE site = %s ORDER BY size DESC LIMIT 1", (site_id,)).fetchone()
    names = session_names(conn, site_id)
    return render_template("center_site.html", state_text=state_texts(), site=info, sessions=list(sessions.values()), recordings=recordings[:200],
                           recordings_total=len(recordings), alarms=site_alarms, receipt=receipt,
                           keys=_center().key_generations(site_id), venue=venue_names(conn).get(site_id, site_id),
                           names=names, venue_alarms=venue_alarms(conn, site_id, limit=100),
                           session_names={site_id: names}, alarm_words=venue_alarm_texts())


@bp.get("/sites/<site_id>/sessions/<session_id>")
@staff_only
def session_footage_page(site_id: str, session_id: str) -> Any:
    """A session's footage as the center holds it: every sealed segment in time order, played here."""
    conn = _conn()
    if conn.execute("SELECT 1 FROM sites WHERE id = %s", (site_id,)).fetchone() is None:
        abort(404)
    segments = session_footage(conn, site_id, session_id)
    name = session_names(conn, site_id).get(session_id, {})
    timeline = [{"seq": seq, "kind": kind, "ts": ts, "payload": json.loads(body)["payload"]} for seq, kind, ts, body in conn.execute(
        "SELECT seq, kind, ts, body FROM records WHERE session = %s AND site = %s ORDER BY ts, seq LIMIT 2000",
        (session_id, site_id))]
    report = next((t["payload"] for t in reversed(timeline) if t["kind"] == "evaluation.report"), None)
    holds = conn.execute("SELECT reason, placed_by, placed FROM legal_holds WHERE site = %s AND session = %s AND lifted IS NULL",
                         (site_id, session_id)).fetchall()
    remote = [r[0] for r in conn.execute("SELECT site FROM remote_sessions WHERE session = %s ORDER BY main DESC, site",
                                         (session_id,))]  # a remote evaluation: its venues
    return render_template("center_session.html", site_id=site_id, venue=venue_names(conn).get(site_id, site_id),
                           session_id=session_id, name=name, segments=segments, timeline=timeline, report=report,
                           kind_words=record_kind_texts(), state_text=state_texts(), holds=holds,
                           remote_venues=[venue_names(conn).get(v, v) for v in remote] if site_id in remote else [])


@bp.get("/sites/<site_id>/media/<int:seq>")
@staff_only
def media(site_id: str, seq: int) -> Any:
    """One received segment's bytes (ranges served, so the player can seek)."""
    found = media_object(_conn(), site_id, seq)
    if found is None:
        abort(404)
    return stream_object(_center().footage, found[0], found[1])


@bp.get("/sites/<site_id>/proof")
@staff_only
def proof(site_id: str) -> Any:
    try:
        seq = int(request.args.get("seq", ""))
    except ValueError:
        return render_template("center_proof.html", site_id=site_id, error=_("Give a record number.")), 400
    try:
        result = _center().prove(site_id, seq)
    except CenterError as exc:
        return render_template("center_proof.html", site_id=site_id, error=str(exc)), exc.status
    except merkle.ProofError as exc:  # the stored records do not give the receipt's root: say so, loudly
        return render_template("center_proof.html", site_id=site_id, error=f"proof does not verify: {exc}"), 500
    if request.args.get("format") == "json":
        response = jsonify(result)
        response.headers["Content-Disposition"] = f'attachment; filename="{site_id}-record-{seq}-proof.json"'
        return response
    return render_template("center_proof.html", site_id=site_id, proof=result, checked=utc_timestamp(_center().clock.now()))
