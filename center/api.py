"""The center's HTTP API for sites (enrolment, the journal, the feed, recordings by tus) and the
server it runs behind. Every request of a site is signed (RFC 9421): the server's precheck
refuses one with an unknown or revoked key, a stale date, a used nonce or a signature that does
not verify before reading its body; the view checks the body's digest and records the nonce
(docs/sync-protocol.md)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import Flask, Request, g, jsonify, request
from http_message_signatures import (
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from appliance.clock import utc_timestamp
from appliance.webserver import BoundedInt, wsgi_environ
from center import tus
from center.base import CENTER_NAME, SIGNATURE_MAX_AGE, CenterError
from center.core import Center
from center.core import refusal as refusal_of
from center.db import Unavailable
from center.relay import MAX_WAIT_S
from sync.feed import PAGE_ITEMS
from sync.requestbody import raw_body
from sync.statements import sign_media_held


def signed_sha256(header: str) -> bytes:
    """The sha-256 member of a Content-Digest field (RFC 9530: a structured dictionary of
    byte sequences, ``sha-256=:<base64>:``); refused when there is none."""
    match = re.search(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/]*={0,2}):", header)
    if not match:
        raise CenterError(401, "bad_signature", "a Content-Digest with sha-256 is required")
    return base64.b64decode(match.group(1))


class _SiteKeys(HTTPSignatureKeyResolver):
    def __init__(self, center: Center) -> None:
        self.center = center

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        return self.center.site_key(key_id)

    def resolve_private_key(self, key_id: str) -> Any:  # pragma: no cover - the center never signs requests
        raise NotImplementedError


SITE_PATH = re.compile(r"/center/v1/sites/([^/]+)/.+")
REQUIRED_COMPONENTS = ("@method", "@authority", "@target-uri", "content-digest")


def _verifier(center: Center) -> HTTPMessageVerifier:
    return HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=_SiteKeys(center))


def site_precheck(center: Center) -> Any:
    """The server's precheck (called before a byte of a request's body is read): a request to a
    site's API is refused unless the center admits it (`Center.precheck`: enrolled, unrevoked,
    fresh, a new nonce) and its RFC 9421 signature verifies over the signed components; the
    body's digest is the view's to check once the body is in. A forged signature with a huge
    body costs the center its headers only."""
    verifier = _verifier(center)

    def precheck(scope: dict[str, Any]) -> tuple[int, str] | tuple[int, str, list[tuple[str, str]]] | None:
        if not scope["path"].startswith("/center/v1/sites/") or scope["method"] == "OPTIONS":
            return None  # (an OPTIONS may carry no body: center_body_limit)
        match = SITE_PATH.fullmatch(scope["path"])
        if match is None:  # no site's API at all: not worth reading a body for
            return refusal_of(CenterError(404, "not_found", "no such resource"))
        refusal = center.precheck(scope, match.group(1))
        if refusal is None:
            try:
                verifier.verify(Request(wsgi_environ(scope)), max_age=SIGNATURE_MAX_AGE,
                                require_components=REQUIRED_COMPONENTS, body=None)
            except (HTTPMessageSignaturesException, InvalidSignature, KeyError, ValueError) as exc:
                refusal = refusal_of(CenterError(401, "bad_signature", f"request signature: {exc}"))
        if refusal is not None and "/media/uploads" in scope["path"]:
            return (*refusal, [("Tus-Resumable", "1.0.0")])  # every tus answer carries it, refusals too
        return refusal

    return precheck


def create_center_app(center: Center) -> Flask:
    from center.province import bp as province_pages
    from center.ui import init_ui

    app = Flask("center", static_folder=str(Path(__file__).resolve().parent.parent / "kiosk_ui" / "static"),
                static_url_path="/center/static")
    app.url_map.converters["int"] = BoundedInt
    app.config["MAX_CONTENT_LENGTH"] = 64 << 20  # a journal batch or a tus chunk, with room
    init_ui(app, center)
    app.register_blueprint(province_pages)
    verifier = _verifier(center)

    def authenticated(site_id: str, *, streamed_body: bool = False) -> None:
        """RFC 9421: the request is signed by the site's key (keyid = site id), covering the
        method, authority, target URI, content digest and a nonce, created within 5 minutes.
        ``streamed_body``: the caller reads the body itself (a tus PATCH of any length) and
        checks it against the signed Content-Digest (``g.signed_sha256``) as it goes."""
        try:
            center.site_key(site_id)  # unknown or revoked: refused and alarmed before anything else
        except CenterError as exc:  # (the server's precheck does this already, before the body is read)
            center.alarm(None, exc.code, {"site_tried": site_id[:64], "path": request.path[:200]}, source=request.remote_addr)
            raise
        try:
            results = verifier.verify(request, max_age=SIGNATURE_MAX_AGE, require_components=REQUIRED_COMPONENTS,
                                      body=None if streamed_body else raw_body())
        except (HTTPMessageSignaturesException, InvalidSignature, KeyError, ValueError) as exc:
            raise CenterError(401, "bad_signature", f"request signature: {exc}") from exc
        params = results[0].parameters
        if streamed_body:
            g.signed_sha256 = signed_sha256(request.headers.get("Content-Digest", ""))
        if params.get("keyid") != site_id:
            raise CenterError(401, "bad_signature", "signed by another site's key")
        nonce = params.get("nonce")
        if not nonce or center.seen_nonce(site_id, str(nonce)):
            raise CenterError(401, "replay", "a nonce is required and must be new")

    @app.errorhandler(CenterError)
    def refused(exc: CenterError) -> Any:
        return jsonify({"error": exc.code, "message": str(exc)}), exc.status

    @app.errorhandler(Unavailable)
    def database_away(exc: Unavailable) -> Any:
        # The database restarted or is failing over: nothing was half-applied (the transaction
        # rolled back); the site sends again at its next round.
        return jsonify({"error": "unavailable", "message": "the center's database is not reachable just now"}), 503

    @app.post("/center/v1/enroll")
    def enroll() -> Any:
        data = request.get_json(silent=True) or {}
        if not all(isinstance(data.get(k), str) for k in ("site_id", "token", "public_key")):
            raise CenterError(400, "bad_request", "site_id, token and public_key are required")
        return jsonify(center.enroll(data["site_id"], data["token"], data["public_key"], source=request.remote_addr))

    def body() -> dict[str, Any]:
        try:
            data = json.loads(raw_body())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise CenterError(400, "bad_request", "a JSON object is expected")
        return data

    @app.post("/center/v1/sites/<site_id>/head")
    def head(site_id: str) -> Any:
        authenticated(site_id)
        return jsonify(center.head(site_id, body().get("local_size")))

    @app.post("/center/v1/sites/<site_id>/feed/<lane>")
    def feed(site_id: str, lane: str) -> Any:
        """A page of the lane after the site's cursor (POST: the request is signed with its body)."""
        authenticated(site_id)
        data = body()
        after, limit = data.get("after"), data.get("limit", PAGE_ITEMS)
        if not isinstance(after, int) or not isinstance(limit, int) or after < 0:
            raise CenterError(400, "bad_request", "after (the site's cursor, an integer >= 0) is required")
        return jsonify(center.feed_page(site_id, lane, after, limit))

    @app.post("/center/v1/sites/<site_id>/feed/<lane>/snapshot")
    def feed_snapshot(site_id: str, lane: str) -> Any:
        authenticated(site_id)
        return jsonify(center.feed_snapshot(site_id, lane))

    @app.post("/center/v1/sites/<site_id>/media/status")
    def media_status(site_id: str) -> Any:
        authenticated(site_id)
        data = body()
        seqs, challenge = data.get("seqs"), data.get("challenge")
        if not isinstance(seqs, list) or len(seqs) > 5000 or not all(isinstance(s, int) for s in seqs):
            raise CenterError(400, "bad_request", "seqs: a list of at most 5000 record numbers")
        if not isinstance(challenge, str) or not 16 <= len(challenge) <= 128:
            raise CenterError(400, "bad_request", "challenge: the site's random string (16 to 128 characters)")
        held = center.media_status(site_id, seqs)
        # Signed: the site frees footage on this answer (sync/statements.py).
        return jsonify({"held": held, **sign_media_held(center.key, site_id, challenge, held, utc_timestamp(center.clock.now()))})

    tus.register(app, center, authenticated)

    @app.post("/center/v1/sites/<site_id>/journal")
    def journal(site_id: str) -> Any:
        authenticated(site_id)
        return jsonify(center.accept(site_id, body()))

    @app.post("/center/v1/sites/<site_id>/relay/send")
    def relay_send(site_id: str) -> Any:
        """A remote committee's messages from this venue to the others (center/relay.py)."""
        authenticated(site_id)
        return jsonify(center.relay_send(site_id, body().get("messages")))

    @app.post("/center/v1/sites/<site_id>/relay/poll")
    def relay_poll(site_id: str) -> Any:
        """This venue's relayed messages after its cursor, waiting up to wait_s (long polling)."""
        authenticated(site_id)
        data = body()
        after, wait_s = data.get("after"), data.get("wait_s", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise CenterError(400, "bad_request", "after (the last relayed message applied, an integer >= 0) is required")
        if not isinstance(wait_s, (int, float)) or isinstance(wait_s, bool) or not 0 <= wait_s <= MAX_WAIT_S:
            raise CenterError(400, "bad_request", f"wait_s: seconds to wait for a message, 0 to {MAX_WAIT_S:g}")
        return jsonify(center.relay_poll(site_id, after, float(wait_s)))

    @app.get("/center/v1/key")
    def key() -> Any:
        return jsonify({"center_name": CENTER_NAME, "center_public_key": center.public_pem})

    return app


def center_server(center: Center, host: str, port: int, *, threads: int = 16, tls: tuple[Path, Path] | None = None,
                  name: str = "center") -> Any:
    """The center's app behind the server no slow or hostile client can stop (appliance.webserver):
    requests signed by a site are checked from their headers before a byte of body is read."""
    from appliance.webserver import WebServer

    spool = center.data / "spool"
    spool.mkdir(exist_ok=True)
    if center.config.alarm_webhook:
        from center.webhook import WebhookDelivery

        WebhookDelivery(center, center.config.alarm_webhook).start()
    app = create_center_app(center)
    app.config["CENTER_THREADS"] = threads  # (the live streams leave threads for requests: center/province.py)
    return WebServer(app, host, port, threads=threads, tls=tls, spool_dir=spool, max_waiting=threads,
                     precheck=site_precheck(center), body_limit=center_body_limit, name=name)


def center_body_limit(scope: dict[str, Any]) -> tuple[int, int]:
    """A tus PATCH may carry up to a whole segment (buffered 64 MiB at a time); a journal batch up
    to 64 MiB; enrolment and the staff pages' forms little."""
    path, method = scope["path"], scope["method"]
    if method in ("OPTIONS", "GET", "HEAD"):
        return 0, 0
    if method == "PATCH" and "/media/uploads/" in path:
        return tus.MAX_SIZE + (1 << 20), 64 << 20
    if path.startswith("/center/v1/sites/"):
        return 64 << 20, 64 << 20
    return 1 << 20, 1 << 20
