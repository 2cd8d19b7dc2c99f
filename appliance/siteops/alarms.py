"""Alarms: what staff and supervisors must see now, not find later in the journal.

An alarm is raised in the same transaction as the record that caused it (``alarm.raised`` names
that record's sequence number) and stays on the console and the supervisors' screens — pushed
by the live feed — until someone acknowledges it with a note (``alarm.acknowledged``). Kinds:

* ``exit_during_evaluation`` — an expert left the closed evaluation area during an evaluation in
  progress without an exit approval (001 annex 3: 评标期间未经批准不得离开评标区);
* ``gate_fault`` — a gate did not open for an allowed passage;
* ``locker_door_left_open`` — a locker door we opened stayed open too long;
* ``camera_offline`` — a camera's recorder got no new segment for ``recording.stall_s`` (the
  recording has a gap: 001 art. 25 requires full recording);
* ``camera_picture`` — a camera's picture is black, covered, blurred or frozen (see
  appliance/camera_health.py; a snapshot is kept);
* ``camera_clock`` — a camera's stream clock disagrees with the wall clock (its segments hold
  more or less time than passed; their spans are then taken from the wall clock);
* ``disk_warning`` / ``disk_critical`` — the recordings disk is ``recording.disk_warn_pct`` /
  ``disk_critical_pct`` full (see appliance/retention.py).
"""

from __future__ import annotations

import json
from typing import Any

from appliance.clock import VENUE_TZ, day_bounds, utc_timestamp
from appliance.personal import redact_personal_data
from appliance.site import Site

KINDS = ("exit_during_evaluation", "gate_fault", "locker_door_left_open", "camera_offline", "camera_picture",
         "camera_clock", "disk_warning", "disk_critical", "feed_refused", "collusion_signal")


class AlarmError(ValueError):
    pass


def raise_alarm(site: Site, conn: Any, kind: str, *, seq: int | None, session: str | None = None,
                person_id: int | None = None, detail: dict[str, Any] | None = None) -> int:
    """Inside the caller's transaction."""
    if kind not in KINDS:
        raise AlarmError(f"unknown alarm kind {kind!r}")
    cur = conn.execute(
        "INSERT INTO alarms (kind, raised, seq, session, person_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (kind, utc_timestamp(site.clock.now()), seq, session, person_id, json.dumps(detail or {}, ensure_ascii=False)))
    alarm_id = int(cur.lastrowid or 0)
    site.journal.append(conn, "alarm.raised", {"alarm": alarm_id, "kind": kind, "cause_seq": seq, "session": session,
                                               "person_id": person_id, "detail": detail or {}})
    return alarm_id


def acknowledge(site: Site, alarm_id: int, *, by: str, note: str) -> None:
    note = redact_personal_data(note).strip()[:500]
    if not note:
        raise AlarmError("say what was done about the alarm")
    with site.store.transaction() as conn:
        changed = conn.execute(
            "UPDATE alarms SET acknowledged = ?, acknowledged_by = ?, note = ? WHERE id = ? AND acknowledged IS NULL",
            (utc_timestamp(site.clock.now()), by, note, alarm_id)).rowcount
        if changed != 1:
            raise AlarmError("no such open alarm")
        site.journal.append(conn, "alarm.acknowledged", {"alarm": alarm_id, "by": by, "note": note})


def open_alarms(site: Site, limit: int = 50) -> list[dict[str, Any]]:
    """Open alarms, newest first, with what a screen needs (names masked)."""
    rows = site.store.reader().execute(
        """SELECT a.id, a.kind, a.raised, a.seq, a.session, a.detail, p.name_masked, s.section_name
           FROM alarms a LEFT JOIN people p ON p.id = a.person_id LEFT JOIN sessions s ON s.id = a.session
           WHERE a.acknowledged IS NULL ORDER BY a.id DESC LIMIT ?""", (limit,))
    return [{"id": r[0], "kind": r[1], "raised": r[2], "seq": r[3], "session": r[4], "detail": json.loads(r[5]),
             "person": r[6] or "", "section": r[7] or ""} for r in rows]


def alarm_history(site: Site, day: str, kind: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """The alarms raised on ``day`` (venue date), newest first, open and handled, with who
    acknowledged each, when, and their note."""
    start, end = day_bounds(day, VENUE_TZ)
    rows = site.store.reader().execute(
        """SELECT a.id, a.kind, a.raised, a.seq, a.session, a.detail, p.name_masked, s.section_name,
                  a.acknowledged, a.acknowledged_by, a.note
           FROM alarms a LEFT JOIN people p ON p.id = a.person_id LEFT JOIN sessions s ON s.id = a.session
           WHERE a.raised >= ? AND a.raised < ? AND (? IS NULL OR a.kind = ?) ORDER BY a.id DESC LIMIT ?""",
        (start, end, kind, kind, limit))
    return [{"id": r[0], "kind": r[1], "raised": r[2], "seq": r[3], "session": r[4], "detail": json.loads(r[5]),
             "person": r[6] or "", "section": r[7] or "", "acknowledged": r[8], "acknowledged_by": r[9] or "",
             "note": r[10] or ""} for r in rows]
