"""Room scheduling (场地预约): booking requests are given rooms and times automatically.

A booking asks for a room kind (开标室, 评标室, 远程异地评标室, 答疑室), seats, equipment (for
example ``remote_evaluation``, ``recording``), a duration, and a window — the earliest start and
the latest end. ``schedule`` is pure: given the rooms, the bookings and what is already busy (the
day plan's sessions), it returns an assignment per booking that fits, and for each booking that
does not, the reasons, room by room, so staff see why — structured (``{"code": "seats", "room":
"第二评标室", "seats": 12, "needed": 15}``), worded by ``describe`` for the command line and by the
console in the reader's language.

Rules:

* never two sessions in one room at the same time, and ``buffer_min`` free between two sessions
  in a room (cleaning, equipment checks, and the seeds' separation of parties: 001 annex 3 on
  evaluation rooms kept closed between uses);
* the room's kind is the kind asked for, its seats are enough and it has the equipment asked for;
* the start is on a ``step_min`` grid from the earliest start, and the session ends by the
  latest end;
* placement order: pinned bookings (staff's override) first, then the least slack (the window
  left after the duration), then the larger party, then the request id — each at its earliest
  feasible start, in the smallest room that fits (best fit keeps large rooms free).

Staff override (a pin): a booking pinned to a room and start is placed there. A pin may waive
the seats, the equipment and the buffer — with a reason, journaled — but never an overlap: no
double booking, whoever asks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from appliance.personal import contains_personal_number, redact_personal_data
from appliance.clock import utc_timestamp
from appliance.site import Site

VENUE_TZ = ZoneInfo("Asia/Shanghai")
BOOKABLE_KINDS = ("opening", "evaluation", "remote_evaluation", "clarification")


@dataclass(frozen=True)
class RoomInfo:
    id: str
    name: str
    kind: str
    capacity: int
    equipment: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Booking:
    id: int
    room_kind: str
    attendees: int
    duration_min: int
    earliest: datetime
    latest_end: datetime
    equipment: frozenset[str] = frozenset()
    label: str = ""
    pin_room: str | None = None
    pin_start: datetime | None = None

    @property
    def slack(self) -> timedelta:
        return self.latest_end - self.earliest - timedelta(minutes=self.duration_min)


@dataclass(frozen=True)
class Busy:
    room: str
    start: datetime
    end: datetime
    label: str


@dataclass(frozen=True)
class Assignment:
    booking: int
    room: str
    start: datetime
    end: datetime
    pinned: bool = False
    waived: tuple[str, ...] = ()  # what a pin waived: seats, equipment, buffer


@dataclass
class Unplaced:
    booking: int
    reasons: list[dict[str, Any]] = field(default_factory=list)  # {"code": ..., ...}; see describe()


def _hhmm(moment: datetime) -> str:
    return moment.astimezone(VENUE_TZ).strftime("%H:%M")


def _clashes(room: str, start: datetime, end: datetime, taken: list[Busy], buffer: timedelta) -> list[Busy]:
    return [b for b in taken if b.room == room and start < b.end + buffer and b.start < end + buffer]


def _overlaps(room: str, start: datetime, end: datetime, taken: list[Busy]) -> list[Busy]:
    return _clashes(room, start, end, taken, timedelta(0))


def _fit_problems(room: RoomInfo, booking: Booking) -> list[str]:
    problems = []
    if room.capacity < booking.attendees:
        problems.append("seats")
    if not booking.equipment <= room.equipment:
        problems.append("equipment")
    return problems


def schedule(rooms: list[RoomInfo], bookings: list[Booking], busy: list[Busy], *, buffer_min: int = 30,
             step_min: int = 15) -> tuple[list[Assignment], list[Unplaced]]:
    buffer = timedelta(minutes=buffer_min)
    step = timedelta(minutes=step_min)
    taken = list(busy)
    by_id = {r.id: r for r in rooms}
    assignments: list[Assignment] = []
    unplaced: list[Unplaced] = []
    order = sorted(bookings, key=lambda b: (b.pin_room is None, b.slack, -b.attendees, b.id))
    for booking in order:
        duration = timedelta(minutes=booking.duration_min)
        if booking.pin_room is not None:
            placed, why = _pinned(booking, by_id, taken, buffer)
            if placed is None:
                unplaced.append(Unplaced(booking.id, why))
                continue
            assignments.append(placed)
            taken.append(Busy(placed.room, placed.start, placed.end, booking.label or f"#{booking.id}"))
            continue
        if booking.slack < timedelta(0):
            unplaced.append(Unplaced(booking.id, [{"code": "window_too_short", "from": _hhmm(booking.earliest),
                                                   "to": _hhmm(booking.latest_end), "duration_min": booking.duration_min}]))
            continue
        suitable = sorted((r for r in rooms if r.kind == booking.room_kind and not _fit_problems(r, booking)),
                          key=lambda r: (r.capacity, r.id))
        best: Assignment | None = None
        for room in suitable:
            start = booking.earliest
            while start + duration <= booking.latest_end:
                if not _clashes(room.id, start, start + duration, taken, buffer):
                    if best is None or start < best.start:
                        best = Assignment(booking.id, room.id, start, start + duration)
                    break
                start += step
        if best is None:
            unplaced.append(Unplaced(booking.id, _explain(booking, rooms, taken, buffer)))
            continue
        assignments.append(best)
        taken.append(Busy(best.room, best.start, best.end, booking.label or f"#{booking.id}"))
    return assignments, unplaced


def _pinned(booking: Booking, rooms: dict[str, RoomInfo], taken: list[Busy],
            buffer: timedelta) -> tuple[Assignment | None, list[dict[str, Any]]]:
    room = rooms.get(booking.pin_room or "")
    if room is None or booking.pin_start is None:
        return None, [{"code": "unknown_room", "room": booking.pin_room or ""}]
    start, end = booking.pin_start, booking.pin_start + timedelta(minutes=booking.duration_min)
    overlaps = _overlaps(room.id, start, end, taken)
    if overlaps:
        return None, [{"code": "overlap", "room": room.name, "start": _hhmm(start), "end": _hhmm(end), "label": b.label,
                       "busy_start": _hhmm(b.start), "busy_end": _hhmm(b.end)} for b in overlaps]
    waived = list(_fit_problems(room, booking))
    if room.kind != booking.room_kind:
        waived.append("kind")
    if _clashes(room.id, start, end, taken, buffer):
        waived.append("buffer")
    return Assignment(booking.id, room.id, start, end, pinned=True, waived=tuple(waived)), []


def _explain(booking: Booking, rooms: list[RoomInfo], taken: list[Busy], buffer: timedelta) -> list[dict[str, Any]]:
    of_kind = [r for r in rooms if r.kind == booking.room_kind]
    if not of_kind:
        return [{"code": "no_room_of_kind", "kind": booking.room_kind}]
    reasons: list[dict[str, Any]] = []
    for room in sorted(of_kind, key=lambda r: r.id):
        if room.capacity < booking.attendees:
            reasons.append({"code": "seats", "room": room.name, "seats": room.capacity, "needed": booking.attendees})
        elif not booking.equipment <= room.equipment:
            reasons.append({"code": "equipment", "room": room.name, "missing": sorted(booking.equipment - room.equipment)})
        else:
            clashes = sorted(_clashes(room.id, booking.earliest, booking.latest_end, taken, buffer), key=lambda b: b.start)
            reasons.append({"code": "busy", "room": room.name, "duration_min": booking.duration_min,
                            "from": _hhmm(booking.earliest), "to": _hhmm(booking.latest_end),
                            "busy": [{"label": b.label, "start": _hhmm(b.start), "end": _hhmm(b.end)} for b in clashes],
                            "buffer_min": int(buffer.total_seconds() // 60)})
    return reasons


def describe(reason: dict[str, Any]) -> str:
    """A reason in English (command line, logs); the console words it in the reader's language."""
    code = reason["code"]
    if code == "window_too_short":
        return f"window {reason['from']}–{reason['to']} is shorter than {reason['duration_min']} min"
    if code == "no_room_of_kind":
        return f"no room of kind {reason['kind']}"
    if code == "unknown_room":
        return f"pinned to an unknown room {reason['room']!r}"
    if code == "seats":
        return f"{reason['room']}: {reason['seats']} seats, {reason['needed']} needed"
    if code == "equipment":
        return f"{reason['room']}: lacks {', '.join(reason['missing'])}"
    if code == "overlap":
        return f"{reason['room']}: {reason['start']}–{reason['end']} overlaps {reason['label']} {reason['busy_start']}–{reason['busy_end']}"
    busy = "; ".join(f"{b['label']} {b['start']}–{b['end']}" for b in reason["busy"])
    return (f"{reason['room']}: no free {reason['duration_min']} min between {reason['from']} and {reason['to']} "
            f"(busy: {busy}; +{reason['buffer_min']} min buffer)")


# -- storage -------------------------------------------------------------------------------------

class BookingError(ValueError):
    pass


class BookingRequest(BaseModel):
    """One booking request as a file carries it (``appliance rooms book FILE``: a JSON list)."""

    model_config = ConfigDict(extra="forbid")
    section_code: str = Field(min_length=1, max_length=64)
    section_name: str = Field(min_length=1, max_length=200)
    session_kind: Literal["opening", "evaluation", "clarification"]
    room_kind: Literal["opening", "evaluation", "remote_evaluation", "clarification"]
    attendees: int = Field(ge=1, le=500)
    duration_min: int = Field(ge=15, le=24 * 60)
    earliest: AwareDatetime
    latest_end: AwareDatetime
    equipment: list[str] = Field(default_factory=list, max_length=20)


def parse_requests(text: str) -> list[BookingRequest]:
    try:
        return TypeAdapter(list[BookingRequest]).validate_json(text)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise BookingError("; ".join(problems[:20])) from exc


def _ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def add_booking(site: Site, *, day: str, section_code: str, section_name: str, session_kind: str, room_kind: str,
                attendees: int, duration_min: int, earliest: datetime, latest_end: datetime,
                equipment: list[str] | None = None, by: str) -> int:
    if room_kind not in BOOKABLE_KINDS:
        raise BookingError(f"room kind must be one of {', '.join(BOOKABLE_KINDS)}")
    if session_kind not in ("opening", "evaluation", "clarification"):
        raise BookingError("session kind must be opening, evaluation or clarification")
    if not 1 <= attendees <= 500 or not 15 <= duration_min <= 24 * 60:
        raise BookingError("attendees 1–500, duration 15 minutes to 24 hours")
    if earliest.tzinfo is None or latest_end.tzinfo is None:
        raise BookingError("times need a time zone")
    if latest_end <= earliest:
        raise BookingError("the latest end must be after the earliest start")
    section_code, section_name = section_code.strip(), redact_personal_data(section_name).strip()
    if not section_code or not section_name:
        raise BookingError("the section code and name are required")
    if contains_personal_number(section_code):
        raise BookingError("section code: must not contain a resident ID number or a bank card number")
    equipment = [redact_personal_data(str(e))[:64] for e in (equipment or [])][:20]
    with site.store.transaction() as conn:
        cur = conn.execute(
            """INSERT INTO bookings (day, section_code, section_name, session_kind, room_kind, attendees, equipment,
                   duration_min, earliest, latest_end, state, created_by, created)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)""",
            (day, section_code, section_name, session_kind, room_kind, attendees,
             json.dumps(sorted(set(equipment or []))), duration_min, utc_timestamp(earliest), utc_timestamp(latest_end),
             by, utc_timestamp(site.clock.now())))
        booking_id = int(cur.lastrowid or 0)
        site.journal.append(conn, "booking.requested", {
            "booking": booking_id, "day": day, "section_code": section_code, "session_kind": session_kind,
            "room_kind": room_kind, "attendees": attendees, "equipment": sorted(set(equipment or [])),
            "duration_min": duration_min, "earliest": utc_timestamp(earliest), "latest_end": utc_timestamp(latest_end),
            "by": by})
        return booking_id


def pin_booking(site: Site, booking_id: int, *, room: str, start: datetime, reason: str, by: str) -> None:
    """Staff's override: this booking goes to this room at this time (checked at the next run)."""
    reason = redact_personal_data(reason).strip()[:300]
    if not reason:
        raise BookingError("an override needs a reason")
    with site.store.transaction() as conn:
        if conn.execute("SELECT 1 FROM rooms WHERE id = ?", (room,)).fetchone() is None:
            raise BookingError(f"no room {room!r}")
        changed = conn.execute("UPDATE bookings SET pin_room = ?, pin_start = ?, pin_reason = ?, state = 'pending' "
                               "WHERE id = ? AND state != 'cancelled'", (room, utc_timestamp(start), reason, booking_id)).rowcount
        if changed != 1:
            raise BookingError("no such booking")
        site.journal.append(conn, "booking.pinned", {"booking": booking_id, "room": room, "start": utc_timestamp(start),
                                                     "reason": reason, "by": by})


def cancel_booking(site: Site, booking_id: int, *, by: str) -> None:
    with site.store.transaction() as conn:
        if conn.execute("UPDATE bookings SET state = 'cancelled' WHERE id = ? AND state != 'cancelled'",
                        (booking_id,)).rowcount != 1:
            raise BookingError("no such booking")
        site.journal.append(conn, "booking.cancelled", {"booking": booking_id, "by": by})


def schedule_day(site: Site, day: str, *, by: str) -> dict[str, Any]:
    """(Re)schedule every open booking of the day around the day plan's sessions; journal the result."""
    cfg = site.config.siteops
    with site.store.transaction() as conn:
        rooms = [RoomInfo(r[0], r[1], r[2], r[3], frozenset(json.loads(r[4] or "[]")))
                 for r in conn.execute("SELECT id, name, kind, capacity, equipment FROM rooms ORDER BY id")]
        busy = [Busy(r[0], _ts(r[1]), _ts(r[2]), r[3]) for r in conn.execute(  # type: ignore[arg-type]
            "SELECT room, start, end, id FROM sessions WHERE day = ? AND state NOT IN ('terminated')", (day,))]
        rows = conn.execute(
            """SELECT id, room_kind, attendees, duration_min, earliest, latest_end, equipment, section_code, pin_room, pin_start
               FROM bookings WHERE day = ? AND state != 'cancelled' ORDER BY id""", (day,)).fetchall()
        bookings = [Booking(r[0], r[1], r[2], r[3], _ts(r[4]), _ts(r[5]), frozenset(json.loads(r[6])),  # type: ignore[arg-type]
                            label=r[7], pin_room=r[8], pin_start=_ts(r[9])) for r in rows]
        assignments, unplaced = schedule(rooms, bookings, busy, buffer_min=cfg.room_buffer_min, step_min=cfg.room_step_min)
        for a in assignments:
            conn.execute("UPDATE bookings SET state = 'scheduled', room = ?, start = ?, end = ?, explanation = ? WHERE id = ?",
                         (a.room, utc_timestamp(a.start), utc_timestamp(a.end), json.dumps(list(a.waived)), a.booking))
        for u in unplaced:
            conn.execute("UPDATE bookings SET state = 'unplaced', room = NULL, start = NULL, end = NULL, explanation = ? "
                         "WHERE id = ?", (json.dumps(u.reasons, ensure_ascii=False), u.booking))
        result = {
            "day": day, "buffer_min": cfg.room_buffer_min,
            "scheduled": [{"booking": a.booking, "room": a.room, "start": utc_timestamp(a.start), "end": utc_timestamp(a.end),
                           "pinned": a.pinned, "waived": list(a.waived)} for a in sorted(assignments, key=lambda a: a.booking)],
            "unplaced": [{"booking": u.booking, "reasons": u.reasons} for u in sorted(unplaced, key=lambda u: u.booking)],
        }
        site.journal.append(conn, "booking.scheduled", {**result, "by": by})
        return result


def bookings(site: Site, day: str) -> list[dict[str, Any]]:
    rows = site.store.reader().execute(
        """SELECT b.*, r.name AS room_name FROM bookings b LEFT JOIN rooms r ON r.id = b.room
           WHERE b.day = ? ORDER BY COALESCE(b.start, b.earliest), b.id""", (day,))
    out = []
    for row in rows:
        item = dict(row)
        item["equipment"] = json.loads(item["equipment"])
        item["explanation"] = json.loads(item["explanation"]) if item["explanation"] else []
        out.append(item)
    return out
