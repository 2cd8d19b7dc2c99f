"""Log in, log out, choose a language; the front door that sends each role to its screens."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from kiosk_ui.access import PEOPLE, PUBLIC, WebUser, accounts, allow, kiosks, role_home
from kiosk_ui.forms import LanguageForm, LoginForm
from kiosk_ui.i18n import LANG_COOKIE

bp = Blueprint("auth", __name__)

def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.get("/")
@allow(*PUBLIC)
def index() -> Any:
    return redirect(role_home(g.role))


@bp.get("/healthz")
@allow(*PUBLIC)
def healthz() -> Any:
    """For monitoring: are the services up? No personal or site data."""
    from appliance.runtime import ServiceStatus

    services = {row["name"]: row["state"] for row in ServiceStatus(accounts().site).all()}
    return jsonify(ok=all(s == "running" for s in services.values()), services=services)


@bp.route("/login", methods=["GET", "POST"])
@allow(*PUBLIC)
def login() -> Any:
    if g.role in PEOPLE:
        return redirect(role_home(g.role))
    form = LoginForm(next=request.args.get("next", ""))
    message, status = None, 200
    if form.validate_on_submit():
        result = accounts().login(form.username.data, form.password.data, remote=request.remote_addr or "")
        if result.ok and result.user and result.token:
            session.clear()
            login_user(WebUser(result.user, result.token))
            g.role = result.user.role
            return redirect(_safe_next(form.next.data) or role_home(result.user.role))
        if result.outcome in ("address_limited", "busy"):
            message, status = _("Too many login attempts from this computer. Wait a minute and try again."), 429
        else:  # wrong, unknown, locked, disabled: one answer, so the page does not tell which names exist
            message = _("Wrong username or password, or the account is locked after repeated failed logins "
                        "(it unlocks by itself later; an administrator can unlock it sooner).")
    elif request.method == "POST":
        message = _("Enter your username and password.")
    return render_template("login.html", form=form, message=message), status


@bp.post("/logout")
@allow("staff", "supervisor", "admin")
def logout() -> Any:
    accounts().logout(current_user.token)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.post("/lang")
@allow(*PUBLIC)
def language() -> Any:
    form = LanguageForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.index"))
    lang = form.lang.data
    if g.user:
        accounts().set_language(g.user.id, lang)
    elif g.kiosk:
        kiosks().set_language(g.kiosk.id, lang)
    response = make_response(redirect(_safe_next(form.next.data) or url_for("auth.index")))
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                        secure=current_app.config["TLS"])
    return response
