"""The OpenAPI 3.1 document of /api/v1 (served at /api/v1/openapi.json).

Authentication is the browser session (cookie ``appliance_session``) or a registered kiosk's
device cookie (``appliance_kiosk``); requests without one get 401. The live-update stream
``/api/v1/events`` (text/event-stream) is described in docs/web.md rather than here, since
OpenAPI has no schema for a never-ending stream.
"""

from __future__ import annotations

from typing import Any

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
SERVICE = {
    "type": "object",
    "required": ["name", "state", "detail", "pid", "heartbeat"],
    "properties": {
        "name": {"type": "string"},
        "state": {"enum": ["starting", "running", "failed", "stopping", "stopped", "stale"]},
        "detail": {"type": "string"},
        "pid": {"type": "integer"},
        "heartbeat": {"type": "string"},
    },
}
DEVICE = {
    "type": "object",
    "required": ["name", "label", "kind", "state", "detail", "updated"],
    "properties": {"name": {"type": "string"}, "label": {"type": "string", "description": "the name people read"},
                   "kind": {"enum": ["idcard", "gate", "locker"]},
                   "state": {"type": "string"}, "detail": {"type": "string"}, "updated": {"type": "string"}},
}
STATUS = {
    "type": "object",
    "required": ["site", "time", "clock", "journal", "services", "devices", "sync", "sessions_today", "alarms"],
    "properties": {
        "site": {"type": "object", "required": ["id", "name"],
                 "properties": {"id": {"type": "string"}, "name": {"type": "string"}}},
        "time": {"type": "string"},
        "clock": {"type": "object", "required": ["synchronized", "max_error_ms"],
                  "properties": {"synchronized": {"type": ["boolean", "null"]},
                                 "max_error_ms": {"type": ["number", "null"]}}},
        "journal": {"type": "object", "required": ["records", "head", "head_ts", "checkpoint_size"],
                    "properties": {"records": {"type": "integer", "minimum": 0},
                                   "head": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                   "head_ts": {"type": ["string", "null"]},
                                   "checkpoint_size": {"type": "integer", "minimum": 0},
                                   "key_fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$",
                                                       "description": "SHA-256 of the site's raw Ed25519 public key"},
                                   "key_fingerprint_grouped": {"type": "string",
                                                               "description": "the same in groups of four, as printed and shown"}}},
        "services": {"type": "array", "items": SERVICE},
        "devices": {"type": "array", "items": DEVICE},
        "sync": {"type": "object", "required": ["state"], "properties": {
            "state": {"enum": ["not_connected", "enrolled"]}, "center": {"type": "string"},
            "acked": {"type": "integer"}, "pending": {"type": "integer"}, "last_success": {"type": ["string", "null"]}}},
        "remote_screens": {"type": ["integer", "null"],
                           "description": "the version of the newest screens a remote committee's main venue sent here"},
        "sessions_today": {"type": "array", "items": {
            "type": "object", "required": ["id", "kind", "section_name", "state", "start", "room"],
            "properties": {"id": {"type": "string"}, "kind": {"enum": ["opening", "evaluation"]},
                           "section_name": {"type": "string"}, "state": {"type": "string"},
                           "start": {"type": "string"}, "room": {"type": "string"}}}},
        "alarms": {"type": "array", "description": "Open alarms, newest first (names masked).", "items": {
            "type": "object", "required": ["id", "kind", "raised", "session", "section", "person"],
            "properties": {"id": {"type": "integer"}, "kind": {"type": "string"}, "raised": {"type": "string"},
                           "session": {"type": ["string", "null"]}, "section": {"type": "string"},
                           "person": {"type": "string"}}}},
    },
}
RECORD = {
    "type": "object",
    "required": ["seq", "ts", "kind", "payload", "prev", "hash", "sig"],
    "properties": {
        "seq": {"type": "integer", "minimum": 1},
        "ts": {"type": "string"},
        "kind": {"type": "string"},
        "payload": {"type": "object"},
        "prev": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "sig": {"type": "string"},
    },
}
ME = {
    "type": "object",
    "required": ["role", "username", "kiosk", "language"],
    "properties": {
        "role": {"enum": ["kiosk", "staff", "supervisor", "admin"]},
        "username": {"type": ["string", "null"]},
        "kiosk": {"type": ["string", "null"]},
        "language": {"enum": ["zh_Hans_CN", "en"]},
    },
}


def _responses(ok_schema: dict[str, Any], *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": ok_schema}}}}
    for code in codes:
        out[str(code)] = {"description": {400: "Bad request", 401: "Login required", 403: "Not allowed for this role"}[code],
                          "content": {"application/json": {"schema": ERROR}}}
    return out


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Site appliance API", "version": "1.0.0",
                 "description": "JSON API of the site appliance of a county public resource trading venue."},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "appliance_session"},
            "kiosk": {"type": "apiKey", "in": "cookie", "name": "appliance_kiosk"},
        }},
        "security": [{"session": []}, {"kiosk": []}],
        "paths": {
            "/api/v1/status": {"get": {
                "operationId": "getStatus", "summary": "Site, clock, services, journal head, sync state",
                "description": "Roles: staff, supervisor, admin.",
                "security": [{"session": []}],
                "responses": _responses(STATUS, 401, 403)}},
            "/api/v1/me": {"get": {
                "operationId": "getMe", "summary": "Who the caller is",
                "description": "Roles: kiosk, staff, supervisor, admin.",
                "responses": _responses(ME, 401)}},
            "/api/v1/journal": {"get": {
                "operationId": "listJournal", "summary": "Journal records in order, personal data masked",
                "description": "Roles: staff, supervisor, admin.",
                "security": [{"session": []}],
                "parameters": [
                    {"name": "since", "in": "query",
                     "schema": {"type": "integer", "minimum": 0, "maximum": 2**53 - 1, "default": 0},
                     "description": "Return records after this seq."},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}},
                    {"name": "kind", "in": "query",
                     "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_.]{0,63}$"},
                     "description": "Only this kind or its sub-kinds (e.g. 'auth' matches 'auth.login')."},
                ],
                "responses": {**_responses({"type": "object", "required": ["records", "head"],
                                             "properties": {"records": {"type": "array", "items": RECORD},
                                                            "head": {"type": "integer"}}}, 400, 401, 403)}}},
        },
    }
