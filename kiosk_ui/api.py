"""The JSON API, versioned under /api/v1, described by /api/v1/openapi.json."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    request,
    stream_with_context,
)
from flask_login import current_user

from appliance.personal import redact_personal_data
from appliance.webserver import DISCONNECTED
from kiosk_ui.access import PUBLIC, accounts, allow, kiosks
from kiosk_ui.i18n import select_locale
from kiosk_ui.openapi import openapi_document
from kiosk_ui.status import collect_status

bp = Blueprint("api", __name__, url_prefix="/api/v1")
KIND = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")


def bad_request(message: str) -> Any:
    return jsonify(error=message), 400


@bp.get("/openapi.json")
@allow(*PUBLIC)
def openapi() -> Any:
    return jsonify(openapi_document())


@bp.get("/status")
@allow("staff", "supervisor", "admin")
def status() -> Any:
    return jsonify(collect_status(current_app.extensions["site"]))


@bp.get("/me")
@allow("kiosk", "staff", "supervisor", "admin")
def me() -> Any:
    return jsonify(role=g.role, username=g.user.username if g.user else None,
                   kiosk=g.kiosk.name if g.kiosk else None, language=select_locale())


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,18}", raw):
        raise ValueError(f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


@bp.get("/journal")
@allow("staff", "supervisor", "admin")
def journal() -> Any:
    try:
        since = _int_arg("since", 0, 0, 2**53 - 1)
        limit = _int_arg("limit", 100, 1, 500)
    except ValueError as exc:
        return bad_request(str(exc))
    kind = request.args.get("kind")
    if kind is not None and not KIND.fullmatch(kind):
        return bad_request("kind must be a dotted lowercase name")
    site = current_app.extensions["site"]
    records = site.journal.records(since=since, kind=kind, limit=limit)
    out = []
    for record in records:
        item = record.as_json()
        item["payload"] = _masked(item["payload"])
        out.append(item)
    return jsonify(records=out, head=site.journal.count())


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return redact_personal_data(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


@bp.get("/events")
@allow("kiosk", "staff", "supervisor", "admin")
def events() -> Any:
    """Server-sent events: ``status`` snapshots whenever the site's state changes."""
    feed = current_app.extensions["live"]
    token = current_user.token if current_user.is_authenticated else None
    kiosk_token = request.cookies.get("appliance_kiosk") if g.kiosk else None
    acc, registry = accounts(), kiosks()

    def still_allowed() -> bool:
        if token is not None:
            return acc.session_user(token, touch=False) is not None
        return kiosk_token is not None and registry.for_token(kiosk_token) is not None

    # A kiosk stands in a public area: it gets a wake-up signal and the clock, not the site's state.
    view = (lambda snapshot: {"time": snapshot["time"], "journal": {"records": snapshot["journal"]["records"]}}) if g.kiosk else None
    client = f"kiosk:{g.kiosk.id}" if g.kiosk else f"session:{hashlib.sha256(str(token).encode()).hexdigest()}"
    slot = feed.admit(client, None if g.kiosk else f"user:{current_user.user.id}")
    if slot is None:
        response = jsonify(error="too_many_streams", message="the live-update streams of every screen are in use")
        response.status_code, response.headers["Retry-After"] = 429, "30"
        return response
    gone = request.environ.get(DISCONNECTED)
    ended = [slot] + ([gone] if gone is not None else [])
    response = Response(stream_with_context(feed.stream(still_allowed, view, ended)), mimetype="text/event-stream")
    response.call_on_close(lambda: feed.release(client, slot))  # however the stream ends, even before it starts
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response
