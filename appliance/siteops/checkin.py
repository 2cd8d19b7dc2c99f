"""A card tap at a gate: gather the facts, ask the access policy, journal the decision durably
(together with the presence change), and only then let the caller open the gate.

Runs inside the devices service, in-process, so a tap never waits on another process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from datetime import datetime
from zoneinfo import ZoneInfo

from appliance.clock import utc_timestamp
from appliance.personal import mask_id_number
from appliance.siteops.access import AccessRequest, Decision, RosterSession, decide
from appliance.siteops.alarms import raise_alarm
from appliance.siteops.exits import EXIT_FACTS, record_use
from appliance.site import Site

VENUE_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class GateInfo:
    id: str
    direction: str
    zone: str  # the closed zone entered (in) or left (out)
    gate_device: str


def gate_for_reader(site: Site, reader: str) -> GateInfo | None:
    row = site.store.reader().execute(
        "SELECT id, direction, from_zone, to_zone, gate_device FROM gates WHERE reader = ?", (reader,)).fetchone()
    if row is None:
        return None
    return GateInfo(row[0], row[1], row[3] if row[1] == "in" else row[2], row[4])


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def gate_tap(site: Site, gate: GateInfo, *, id_number: str, card_valid: bool, card_kind: str,
             then: Any = None) -> Decision:
    """A card tap: find the person by keyed token, decide, journal. ``then(conn, decision,
    person_id)`` runs in the same transaction (e.g. to open a kiosk check-in prompt)."""
    token = site.personal.token("person.id_number", id_number.upper())
    with site.store.transaction() as conn:
        person = conn.execute("SELECT id FROM people WHERE id_token = ?", (token,)).fetchone()
        person_id = person[0] if person else None
        decision = decide_in_transaction(site, conn, gate, person_id, card_valid=card_valid,
                                         card_kind=card_kind, id_masked=mask_id_number(id_number))
        if then is not None:
            then(conn, decision, person_id)
        return decision


def decide_in_transaction(site: Site, conn: Any, gate: GateInfo, person_id: int | None, *, card_valid: bool,
                          card_kind: str, id_masked: str, via: str = "card") -> Decision:
    """Gather the facts, decide, update presence and journal ``gate.decision`` — all inside the
    caller's transaction, so the decision is durable before anyone opens the gate."""
    now = site.clock.now()
    now_ts = utc_timestamp(now)
    day = now.astimezone(VENUE_TZ).date().isoformat()
    # Few statements on purpose: a tap comes after an idle pause, when each one costs most.
    person = conn.execute(
        """SELECT p.id, p.revoked OR EXISTS (SELECT 1 FROM center_bars b WHERE b.token = p.id_token AND b.kind = 'revocation'
                                              AND b.lifted IS NULL),
                  p.blacklisted OR EXISTS (SELECT 1 FROM center_bars b WHERE b.token = p.id_token AND b.kind = 'blacklist'
                                           AND b.lifted IS NULL),
                  EXISTS (SELECT 1 FROM presence pr WHERE pr.person_id = p.id AND pr.zone = ?)
           FROM people p WHERE p.id = ?""", (gate.zone, person_id)).fetchone() if person_id else None
    roster: tuple[RosterSession, ...] = ()
    if person is not None:
        rows = conn.execute(
            f"""SELECT r.session, r.role, s.state, rm.zone, s.start, s.admission_opens_min, s.admission_closes_min,
                       c.commitment_signed, c.conflict_declared, c.locker, {EXIT_FACTS}
                FROM roster r JOIN sessions s ON s.id = r.session JOIN rooms rm ON rm.id = s.room
                LEFT JOIN checkins c ON c.session = r.session AND c.person_id = r.person_id
                WHERE r.person_id = ? AND s.day = ?""", (now_ts, now_ts, person[0], day)).fetchall()
        roster = tuple(RosterSession(session=r[0], role=r[1], state=r[2], zone=r[3], start=_ts(r[4]),
                                     admission_opens_min=r[5], admission_closes_min=r[6],
                                     commitment_signed=r[7] is not None, conflict_declared=bool(r[8]),
                                     locker_assigned=r[9] is not None, exit_approved=bool(r[10]), returning=bool(r[11]))
                       for r in rows)
        out_on_approval = {r[0] for r in rows if r[12]}
    decision = decide(AccessRequest(
        now=now, gate_zone=gate.zone, direction=gate.direction, card_valid=card_valid,
        person_known=person is not None, revoked=bool(person and person[1]), blacklisted=bool(person and person[2]),
        inside=bool(person and person[3]), roster=roster))
    if decision.allow and person is not None:
        # An approved exit taken, or the return from one: marked on the approval.
        if decision.session is not None and ((gate.direction == "out" and decision.reason == "exit_approved")
                                             or (gate.direction == "in" and decision.session in out_on_approval)):
            record_use(conn, now_ts, person[0], decision.session, gate.direction)
        if gate.direction == "in":
            conn.execute("INSERT OR REPLACE INTO presence (person_id, zone, since) VALUES (?, ?, ?)",
                         (person[0], gate.zone, utc_timestamp(now)))
        else:
            conn.execute("DELETE FROM presence WHERE person_id = ? AND zone = ?", (person[0], gate.zone))
    record = site.journal.append(conn, "gate.decision", {
        "gate": gate.id, "direction": gate.direction, "zone": gate.zone, "allow": decision.allow,
        "reason": decision.reason, "session": decision.session, "alarm": decision.alarm,
        "person_id": person[0] if person else None, "id_masked": id_masked, "card_kind": card_kind, "via": via})
    if decision.alarm:
        raise_alarm(site, conn, decision.reason, seq=record.seq, session=decision.session,
                    person_id=person[0] if person else None, detail={"gate": gate.id})
    return decision


def gate_by_id(site: Site, gate_id: str) -> GateInfo | None:
    row = site.store.reader().execute(
        "SELECT id, direction, from_zone, to_zone, gate_device FROM gates WHERE id = ?", (gate_id,)).fetchone()
    return GateInfo(row[0], row[1], row[3] if row[1] == "in" else row[2], row[4]) if row else None
