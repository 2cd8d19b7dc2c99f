"""Who is asking, and may they: the access rule of every route.

Five roles: ``anonymous``, ``kiosk`` (a registered device, no personal login), ``staff``,
``supervisor``, ``admin``. Every view declares its roles with `allow`; a view without a rule is
refused for everyone (fail closed), and the authorization-matrix test fails on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, abort, current_app, g, jsonify, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user

from appliance.accounts import Accounts, User
from appliance.kiosks import Kiosk, Kiosks

log = logging.getLogger(__name__)

ROLES = ("anonymous", "kiosk", "staff", "supervisor", "admin")
PUBLIC = frozenset(ROLES)
PEOPLE = frozenset({"staff", "supervisor", "admin"})
KIOSK_COOKIE = "appliance_kiosk"
F = TypeVar("F", bound=Callable[..., Any])


def allow(*roles: str) -> Callable[[F], F]:
    unknown = set(roles) - PUBLIC
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def mark(view: F) -> F:
        view.allowed_roles = frozenset(roles)  # type: ignore[attr-defined]
        return view

    return mark


def uploads_up_to(limit: int) -> Callable[[F], F]:
    """A view that takes files larger than the app's 1 MB form limit (read before the CSRF check)."""
    def mark(view: F) -> F:
        view.max_upload = limit  # type: ignore[attr-defined]
        return view

    return mark


class WebUser(UserMixin):
    """Flask-Login's user: its id is the server-side session token, so the session cookie
    carries a token the server can revoke, never the account id."""

    def __init__(self, user: User, token: str) -> None:
        self.user = user
        self.token = token

    def get_id(self) -> str:
        return self.token


def accounts() -> Accounts:
    return current_app.extensions["accounts"]


def kiosks() -> Kiosks:
    return current_app.extensions["kiosks"]


def init_access(app: Flask) -> None:
    manager = LoginManager(app)
    manager.session_protection = None  # the server-side session is the protection

    @manager.user_loader
    def load(token: str) -> WebUser | None:
        # The live-update stream and the live sections' refetch (static/live_sections.js) must
        # not keep an idle session alive: only what a person does counts as activity.
        passive = request.endpoint == "api.events" or request.headers.get("X-Live-Section") == "1"
        user = accounts().session_user(token, touch=not passive)
        return WebUser(user, token) if user else None

    @manager.unauthorized_handler
    def unauthorized() -> Any:
        return refuse("anonymous")

    app.before_request(_identify_and_enforce)
    app.after_request(_renew_kiosk_cookie)


def kiosk_cookie_age() -> int:
    return kiosks().token_days * 24 * 3600


def _renew_kiosk_cookie(response: Any) -> Any:
    """A kiosk in use keeps its cookie: each answer to it moves the cookie's end on (the server
    side of the token lapses on the same schedule, `Kiosks.for_token`)."""
    token = request.cookies.get(KIOSK_COOKIE)
    if g.get("kiosk") is not None and token and not response.headers.get("Set-Cookie", "").startswith(KIOSK_COOKIE):
        response.set_cookie(KIOSK_COOKIE, token, max_age=kiosk_cookie_age(), httponly=True, samesite="Strict",
                            secure=current_app.config["TLS"])
    return response


def _identify_and_enforce() -> Any:
    g.user, g.kiosk, g.role = None, None, "anonymous"
    if current_user.is_authenticated:
        g.user = current_user.user
        g.role = current_user.user.role
    else:
        token = request.cookies.get(KIOSK_COOKIE)
        kiosk: Kiosk | None = kiosks().for_token(token) if token else None
        if kiosk:
            g.kiosk, g.role = kiosk, "kiosk"
    if request.endpoint is None:
        return None  # 404 / 405 follow
    view = current_app.view_functions[request.endpoint]
    roles = PUBLIC if request.endpoint == "static" else getattr(view, "allowed_roles", None)
    if roles is None:
        log.error("route %s has no access rule; refused", request.endpoint)
        abort(403)
    if g.role not in roles:
        return refuse(g.role)
    return None


def wants_json() -> bool:
    return request.path.startswith("/api/")


def refuse(role: str) -> Any:
    if role == "anonymous":
        if wants_json():
            return jsonify(error="login required"), 401
        return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
    abort(403)


def role_home(role: str) -> str:
    kiosk = g.get("kiosk")
    return {
        "staff": url_for("console.home"),
        "admin": url_for("console.home"),
        "supervisor": url_for("review.home"),
        "kiosk": url_for("evaluation.home") if kiosk and kiosk.purpose == "evaluation" else url_for("kiosk.idle"),
    }.get(role, url_for("auth.login"))
