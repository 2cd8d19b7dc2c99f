"""The registers staff keep on the console (001 annex 3; 004 巡场台账), all journaled.

Each register declares its fields; an entry is validated, stored and journaled
(``register.<name>``) in one transaction. Free text is passed through the ID-number redactor.
The clarification room holds at most two people at once (001 annex 3: 答疑室 "不超过2人"),
enforced when a visit is registered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from appliance.clock import VENUE_TZ, day_bounds, utc_timestamp
from appliance.personal import redact_personal_data
from appliance.site import Site

CLARIFICATION_CAPACITY = 2


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str  # English source text; the console translates it
    kind: str = "text"  # text | choice | int | time (HH:MM, venue time) | session | bidder
    choices: tuple[str, ...] = ()
    required: bool = True
    later: bool = False  # may be filled in after the entry was made (a return time, a follow-up, a response)


REGISTERS: dict[str, tuple[str, tuple[FieldSpec, ...]]] = {
    "materials": ("Materials in and out of the evaluation area", (
        FieldSpec("session", "Session", "session"), FieldSpec("direction", "Direction", "choice", ("in", "out")),
        FieldSpec("description", "Materials"), FieldSpec("carried_by", "Carried by"))),
    "sample_inspection": ("Sample-inspection exits", (
        FieldSpec("session", "Session", "session"), FieldSpec("reason", "Reason"), FieldSpec("escort", "Escort"),
        FieldSpec("out_time", "Out at (HH:MM)", "time"), FieldSpec("in_time", "Back at (HH:MM)", "time", required=False, later=True))),
    "technician": ("Technician entries", (
        FieldSpec("organisation", "Organisation"), FieldSpec("purpose", "Purpose"),
        FieldSpec("session", "Session", "session", required=False))),
    "clarification": ("Clarification-room visits", (
        FieldSpec("session", "Session", "session"), FieldSpec("bidder", "Bidder", "bidder"),
        FieldSpec("people", "People", "int"))),
    "patrol": ("Patrol ledger", (
        FieldSpec("area", "Area"), FieldSpec("finding", "Finding"), FieldSpec("follow_up", "Follow-up", required=False, later=True))),
    "objection": ("Objections and complaints", (
        FieldSpec("session", "Session", "session"), FieldSpec("raised_by", "Raised by"), FieldSpec("content", "Content"),
        FieldSpec("response", "Response", required=False, later=True))),
    "bad_behaviour": ("Bad-behaviour records", (
        FieldSpec("subject", "Subject (company or person)"), FieldSpec("behaviour", "Behaviour"),
        FieldSpec("evidence", "Evidence"), FieldSpec("session", "Session", "session", required=False))),
    "incident": ("Incidents", (
        FieldSpec("description", "Description"), FieldSpec("severity", "Severity", "choice", ("low", "medium", "high")),
        FieldSpec("session", "Session", "session", required=False))),
}


class RegisterError(ValueError):
    """A refused entry: ``field`` (None for the entry as a whole), a ``code`` screens word, and
    the numbers in it (``params``); ``str()`` is the English sentence."""

    def __init__(self, field: str | None, code: str, message: str, **params: Any) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.code, self.params = field, code, params


def _value(spec: FieldSpec, raw: Any) -> Any:
    """A field's value checked and normalised; raises RegisterError naming the field."""
    if spec.kind == "choice" and raw not in spec.choices:
        raise RegisterError(spec.name, "choice", f"one of {', '.join(spec.choices)}", choices=list(spec.choices))
    if spec.kind == "int":
        try:
            raw = int(raw)
        except (TypeError, ValueError) as exc:
            raise RegisterError(spec.name, "whole_number", "a whole number") from exc
        if raw < 1:
            raise RegisterError(spec.name, "at_least_one", "at least 1")
    if spec.kind == "time":
        match = re.fullmatch(r"([01]?[0-9]|2[0-3])[:：]([0-5][0-9])", str(raw))
        if not match:
            raise RegisterError(spec.name, "time", "a time as HH:MM")
        raw = f"{int(match.group(1)):02d}:{match.group(2)}"
    if isinstance(raw, str):
        if len(raw) > 2000:
            raise RegisterError(spec.name, "too_long", "too long (at most 2000 characters)")
        raw = redact_personal_data(raw)
    return raw


def add_entry(site: Site, register: str, values: dict[str, Any], *, by: str, conn: Any = None) -> int:
    """A new entry, validated, stored and journaled (in the caller's transaction when given one)."""
    if register not in REGISTERS:
        raise RegisterError(None, "no_register", f"no register {register!r}")
    _, fields = REGISTERS[register]
    data: dict[str, Any] = {}
    for spec in fields:
        raw = values.get(spec.name)
        raw = raw.strip() if isinstance(raw, str) else raw
        if raw in (None, ""):
            if spec.required:
                raise RegisterError(spec.name, "required", "required")
            continue
        data[spec.name] = _value(spec, raw)
    with site.store.within(conn) as conn:
        if "session" in data and conn.execute("SELECT 1 FROM sessions WHERE id = ?", (data["session"],)).fetchone() is None:
            raise RegisterError("session", "no_session", f"no session {data['session']!r}")
        if register == "clarification":
            if conn.execute("SELECT 1 FROM session_bidders WHERE session = ? AND bidder = ?",
                            (data["session"], data["bidder"])).fetchone() is None:
                raise RegisterError("bidder", "not_bidder", "not a bidder of that session")
            inside = sum(json.loads(d)["people"] for (d,) in conn.execute(
                "SELECT data FROM register_entries WHERE register = 'clarification' AND closed IS NULL"))
            if inside + data["people"] > CLARIFICATION_CAPACITY:
                raise RegisterError("people", "room_full", f"the clarification room holds at most {CLARIFICATION_CAPACITY} "
                                    f"people at once ({inside} inside)", capacity=CLARIFICATION_CAPACITY, inside=inside)
        now = utc_timestamp(site.clock.now())
        cur = conn.execute("INSERT INTO register_entries (register, data, created, by) VALUES (?, ?, ?, ?)",
                           (register, json.dumps(data, ensure_ascii=False), now, by))
        entry = int(cur.lastrowid or 0)
        site.journal.append(conn, f"register.{register}", {"entry": entry, **data, "by": by})
    return entry


def complete_entry(site: Site, entry: int, field: str, value: str, *, by: str) -> None:
    """Fill in a field left open when the entry was made (the expert back from the sample
    inspection, the follow-up of a patrol finding, the response to an objection): once, and
    journaled (``register.<name>_completed``); what was written first is never changed."""
    with site.store.transaction() as conn:
        row = conn.execute("SELECT register, data FROM register_entries WHERE id = ?", (entry,)).fetchone()
        if row is None:
            raise RegisterError(None, "no_entry", "no such entry")
        spec = next((f for f in REGISTERS[row[0]][1] if f.name == field and f.later), None)
        if spec is None:
            raise RegisterError(field, "not_later", "not a field to fill in later")
        data = json.loads(row[1])
        if data.get(field) not in (None, ""):
            raise RegisterError(field, "filled", "filled in already")
        if not value.strip():
            raise RegisterError(field, "required", "required")
        data[field] = _value(spec, value.strip())
        conn.execute("UPDATE register_entries SET data = ? WHERE id = ?", (json.dumps(data, ensure_ascii=False), entry))
        site.journal.append(conn, f"register.{row[0]}_completed", {"entry": entry, field: data[field], "by": by})


def close_entry(site: Site, entry: int, *, by: str, conn: Any = None) -> None:
    """End an open entry (a clarification visit: the people left the room)."""
    with site.store.within(conn) as conn:
        row = conn.execute("SELECT register, closed FROM register_entries WHERE id = ?", (entry,)).fetchone()
        if row is None or row[1] is not None:
            raise RegisterError(None, "no_entry", "no such open entry")
        conn.execute("UPDATE register_entries SET closed = ? WHERE id = ?", (utc_timestamp(site.clock.now()), entry))
        site.journal.append(conn, f"register.{row[0]}_closed", {"entry": entry, "by": by})


def entries(site: Site, register: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = site.store.reader().execute(
        "SELECT id, data, created, by, closed FROM register_entries WHERE register = ? ORDER BY id DESC LIMIT ?", (register, limit))
    return [{"id": r[0], **json.loads(r[1]), "created": r[2], "by": r[3], "closed": r[4]} for r in rows]


def entries_of_day(site: Site, register: str, day: str, limit: int = 2000) -> list[dict[str, Any]]:
    """A register's entries made on ``day`` (venue date), oldest first: the day's ledger as filed."""
    start, end = day_bounds(day, VENUE_TZ)
    rows = site.store.reader().execute(
        "SELECT id, data, created, by, closed FROM register_entries WHERE register = ? AND created >= ? AND created < ? "
        "ORDER BY id LIMIT ?", (register, start, end, limit))
    return [{"id": r[0], **json.loads(r[1]), "created": r[2], "by": r[3], "closed": r[4]} for r in rows]
