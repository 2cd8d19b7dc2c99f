"""The Flask app: gate kiosk, staff console, supervisor review, evaluation screens, JSON API.

`create_app(site)` builds one app with a blueprint per audience. Services reach views through
``app.extensions`` (``site``, ``accounts``, ``live``), never module globals.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Request, current_app, g, jsonify, render_template, request
from flask_babel import Babel, get_locale
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from appliance.accounts import Accounts
from appliance.journal import JournalDamaged
from appliance.kiosks import Kiosks
from appliance.personal import PersonalDataError
from appliance.webserver import FALLBACK_ERROR_PAGE, BoundedInt
from kiosk_ui.access import init_access, wants_json
from kiosk_ui.i18n import LANGUAGES, select_locale
from kiosk_ui.live import LiveFeed

log = logging.getLogger(__name__)


TRANSLATIONS = Path(__file__).parent / "translations"
VENUE_TZ = ZoneInfo("Asia/Shanghai")


class ApplianceRequest(Request):
    def _get_file_stream(self, total_content_length: int | None, content_type: str | None, filename: str | None = None,
                         content_length: int | None = None) -> Any:
        """Uploaded files beyond a form's size (an evidence package) are spooled in the data
        folder, on the disk: under systemd's PrivateTmp, /tmp may be memory."""
        if total_content_length is not None and total_content_length <= 500 * 1024:
            return io.BytesIO()
        return tempfile.TemporaryFile("wb+", dir=current_app.extensions["site"].data_dir)


def create_app(site: Any, test_config: dict[str, Any] | None = None) -> Flask:
    from appliance.keys import web_secret

    cfg = site.config.web
    tls = cfg.tls_cert is not None
    app = Flask(__name__)
    app.url_map.converters["int"] = BoundedInt  # before any route: an id too large for SQLite is a 404
    app.request_class = ApplianceRequest
    app.config.update(
        SECRET_KEY=cfg.secret_key or web_secret(site.config.paths.keys_dir),
        SESSION_COOKIE_NAME="appliance_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=tls,
        REMEMBER_COOKIE_SECURE=tls,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the (server-side) session
        BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS),
        BABEL_DEFAULT_LOCALE=cfg.default_language,
        BABEL_DEFAULT_TIMEZONE="Asia/Shanghai",
        MAX_CONTENT_LENGTH=1_000_000,
        TLS=tls,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["site"] = site
    app.extensions["accounts"] = Accounts(site)
    app.extensions["kiosks"] = Kiosks(site)
    app.extensions["live"] = LiveFeed(site)
    @app.before_request
    def upload_limit() -> None:
        # Before the CSRF check, which reads the form: a view that takes large files (an
        # evidence package) says so with `access.uploads_up_to`; every other keeps the 1 MB limit.
        # Only for a person the view admits, so nobody else can make the box spool gigabytes.
        view = app.view_functions.get(request.endpoint or "")
        limit = getattr(view, "max_upload", None)
        if limit and current_user.is_authenticated and current_user.user.role in getattr(view, "allowed_roles", ()):
            request.max_content_length = limit

    def body_limit(scope: dict[str, Any]) -> tuple[int, int]:
        """For the web server, before the app sees a request: the most its body may carry (a
        view's `uploads_up_to`, else the forms' limit) and how much is buffered first (a large
        upload only 1 MB: its view refuses anyone but the people it admits before reading on)."""
        form_limit = app.config["MAX_CONTENT_LENGTH"] + (64 << 10)  # multipart framing
        try:
            endpoint, _ = app.url_map.bind("localhost").match(scope["path"], method=scope["method"])
        except Exception:  # 404, 405: the app answers those without a body
            return form_limit, form_limit
        large = getattr(app.view_functions.get(endpoint), "max_upload", None)
        return (large, 1 << 20) if large else (form_limit, form_limit)

    app.extensions["body_limit"] = body_limit
    CSRFProtect(app)
    Babel(app, locale_selector=select_locale)
    init_access(app)

    from kiosk_ui import (
        api,
        auth,
        committee,
        console,
        evaluation,
        fees,
        kiosk,
        opening,
        operations,
        records,
        review,
        rooms,
    )

    for module in (auth, console, operations, records, rooms, fees, opening, committee, review, kiosk, evaluation, api):
        app.register_blueprint(module.bp)

    @app.context_processor
    def globals_for_templates() -> dict[str, Any]:
        locale = str(get_locale() or cfg.default_language)
        return {"site_name": site.config.site.name, "site_id": site.config.site.id, "languages": LANGUAGES,
                "locale": locale, "default_locale": cfg.default_language, "html_lang": "en" if locale.startswith("en") else "zh-CN",
                "role": g.get("role", "anonymous"), "current": g.get("user"), "kiosk_device": g.get("kiosk")}

    @app.template_filter("points")
    def points(value: Any) -> str:
        """An exact decimal (a string from the scoring engine) as the engine rounded it, never
        through a float and never rounded again (a rule rounding to 3 places shows 3): only
        padded to two places when it has fewer (95 → 95.00)."""
        from decimal import Decimal, InvalidOperation

        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return str(value)
        if not number.is_finite():
            return str(value)
        places = -number.as_tuple().exponent  # type: ignore[operator]
        return format(number, "f") if places >= 2 else format(number.quantize(Decimal("0.01")), "f")

    @app.template_filter("service_detail")
    def service_detail(text: str, labels: dict[str, str]) -> str:
        """A service's detail worded from the page's labels (see static/live.js, detailText)."""
        from appliance.service_detail import parse

        key, params = parse(text or "")
        template = labels.get(key)
        if template is None:
            return labels.get(text, text)
        try:
            return template % params
        except (KeyError, TypeError, ValueError):
            return text

    @app.template_filter("clock_time")
    def clock_time(stamp: str, fmt: str = "%H:%M:%S") -> str:
        """UTC RFC 3339 → the venue's wall-clock time (China Standard Time)."""
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(VENUE_TZ).strftime(fmt)

    @app.template_filter("readable_json")
    def readable_json(value: Any) -> str:
        """JSON as people read it: Chinese as Chinese, not \\u escapes (Jinja escapes the HTML)."""
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    @app.after_request
    def security_headers(response: Any) -> Any:
        h = response.headers
        h.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'",
        )
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        # same-origin, not no-referrer: CSRF protection over HTTPS checks the Referer.
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if g.get("role", "anonymous") != "anonymous" and request.endpoint != "static":
            h.setdefault("Cache-Control", "no-store")
        if tls:
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    def error(code: int, title: str) -> Any:
        if wants_json():
            return jsonify(error=title), code
        return render_template("error.html", code=code, title=title), code

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        return error(400, "csrf")

    for code, title in ((400, "bad_request"), (403, "forbidden"), (404, "not_found"), (413, "too_large"),
                        (429, "too_many"), (503, "busy")):
        app.register_error_handler(code, lambda exc, c=code, t=title: error(c, t))

    @app.errorhandler(500)
    def server_error(exc: Any) -> Any:
        """Any failure of a view (Flask hands every unhandled exception here): the translated
        page; if even that cannot be rendered, a page in both languages, never a bare default.
        (Flask has logged the failure already.)"""
        try:
            return error(500, "server_error")
        except Exception:
            log.exception("the error page itself failed")
            return FALLBACK_ERROR_PAGE, 500, {"Content-Type": "text/html; charset=utf-8"}

    @app.errorhandler(PersonalDataError)
    def personal_data(exc: PersonalDataError) -> Any:
        # The last line of defence refused to journal a number in clear: nothing was written.
        log.warning("refused a request carrying personal data in clear (%s)", request.endpoint)
        return error(400, "personal_data")

    @app.errorhandler(JournalDamaged)
    def journal_damaged(exc: JournalDamaged) -> Any:
        # A record altered in the database: the page says so (and which), instead of a crash.
        log.error("%s", exc)
        if wants_json():
            return jsonify(error="journal_damaged", seq=exc.seq), 500
        return render_template("error.html", code=500, title="journal_damaged", seq=exc.seq), 500

    @app.errorhandler(405)
    def method_not_allowed(exc: Any) -> Any:
        body, code = error(405, "method_not_allowed")
        return body, code, {"Allow": ", ".join(sorted(exc.valid_methods or []))}

    return app
