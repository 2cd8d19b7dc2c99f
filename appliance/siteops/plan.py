"""The day plan: what the venue does today, in a documented JSON format — the same format the
provincial center sends down (sync). ``docs/day-plan.schema.json`` is generated from these
models (and a test keeps it current).

The plan names people by the plan's own ids and carries their resident ID numbers, because a
card tap has to be matched to the roster. On loading, each number is sealed and replaced by the
person's row in ``people`` (keyed token); it never reaches the journal or the logs in clear.
Delete the plan file after loading it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date  # noqa: F401  (used by the DayPlan annotation)
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from appliance.canonical import canonical_bytes
from appliance.clock import utc_timestamp
from appliance.people import register_person
from appliance.personal import contains_personal_number, is_valid_id_number, redact_personal_data
from appliance.site import Site

FORMAT = "site-appliance/day-plan/v1"
ROOM_KINDS = ("opening", "evaluation", "remote_evaluation", "clarification", "monitoring", "waiting")
ROOM_KIND_NAMES = {"opening": "开标室", "evaluation": "评标室", "remote_evaluation": "远程异地评标室",
                   "clarification": "答疑室", "monitoring": "监控室", "waiting": "等候区"}
ROLES = ("expert", "tenderer_representative", "supervisor", "witness", "agency_staff",
         "bidder_representative", "site_staff", "technician")


class PlanError(ValueError):
    """A plan that cannot be loaded; the message names the field and the problem."""


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # Names the trading system typed: an ID or bank card number in one is masked on load (a
    # person's own name is sealed instead, see Person).
    _masked: ClassVar[tuple[str, ...]] = ("name", "section_name", "organisation")

    @model_validator(mode="before")
    @classmethod
    def _mask_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.__name__ != "Person":
            data = {k: redact_personal_data(v) if k in cls._masked and isinstance(v, str) else v for k, v in data.items()}
        return data


class Zone(_Item):
    id: str = Field(min_length=1, max_length=64, description="Zone id, e.g. 'evaluation'.")
    name: str = Field(description="Name shown on screens, e.g. '封闭评标区'.")
    closed: bool = Field(default=False, description="A closed area: entry only through its gates, under the access policy.")


class Room(_Item):
    id: str = Field(min_length=1, max_length=64)
    name: str
    kind: Literal["opening", "evaluation", "remote_evaluation", "clarification", "monitoring", "waiting"] = Field(
        description="开标室 opening, 评标室 evaluation, 远程异地评标室 remote_evaluation, 答疑室 clarification, "
        "监控室 monitoring, 等候区 waiting.")
    zone: str = Field(description="The zone the room is in.")
    capacity: int = Field(default=0, ge=0, description="Seats.")
    equipment: list[str] = Field(default_factory=list, description="e.g. 'remote_evaluation', 'recording'.")


class Gate(_Item):
    id: str = Field(min_length=1, max_length=64)
    name: str
    from_zone: str
    to_zone: str
    direction: Literal["in", "out"] = Field(description="'in' enters to_zone; 'out' leaves from_zone.")
    reader: str = Field(description="Name of the ID card reader at this gate (devices.idcard[].name).")
    gate_device: str = Field(description="Name of the gate's relay (devices.gate[].name).")


class Person(_Item):
    id: str = Field(min_length=1, max_length=64, description="The plan's id of the person.")
    name: str = Field(min_length=1, max_length=32)
    id_number: str = Field(pattern=r"^[0-9]{17}[0-9Xx]$", description="Resident ID number (sealed on load).")
    organisation: str = Field(default="", description="For bidders' representatives and agency staff: their company.")


class Bidder(_Item):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(description="Company name, e.g. '某某建设有限公司'.")


class RosterEntry(_Item):
    person: str = Field(description="A person id from 'people'.")
    role: Literal["expert", "tenderer_representative", "supervisor", "witness", "agency_staff",
                  "bidder_representative", "site_staff", "technician"]
    bidder: str | None = Field(default=None, description="For a bidder_representative: the bidder id.")
    venue: str | None = Field(default=None, min_length=1, max_length=64, description=(
        "In a remote evaluation: the site id of the venue the person sits at (default: this plan's site). Only "
        "the main venue's plan names members at other venues."))


class RemoteVenue(_Item):
    site: str = Field(min_length=1, max_length=64, description="The venue's site id.")
    name: str = Field(min_length=1, max_length=64, description="The venue's name on screens, e.g. '长白县公共资源交易中心'.")
    public_key: str = Field(default="", max_length=512, description=(
        "The venue's Ed25519 public key (PEM): its relayed records and screens are verified with it. The center fills "
        "it in from the venue's enrolment when it publishes the plan."))


class RemoteCommittee(_Item):
    main: str = Field(min_length=1, max_length=64, description="The main venue's site id (主会场): it holds the committee.")
    venues: list[RemoteVenue] = Field(min_length=2, max_length=8, description="Every venue of the committee, the main included.")


class Session(_Item):
    id: str = Field(min_length=1, max_length=64)
    kind: Literal["opening", "evaluation"]
    section_code: str = Field(description="The tender section code (BID_SECTION_CODE).")
    section_name: str
    room: str
    start: AwareDatetime
    end: AwareDatetime
    admission_opens_min: int = Field(default=60, ge=0, le=720, description="Minutes before start when admission opens.")
    admission_closes_min: int = Field(default=30, ge=0, le=720, description="Minutes after start when admission closes.")
    bidders: list[Bidder] = Field(default_factory=list)
    roster: list[RosterEntry] = Field(default_factory=list)
    committee_size: int | None = Field(
        default=None, ge=5, le=99, description="An evaluation's committee size (评标委员会成员人数): an odd number, at "
        "least 5 (招标投标法 第三十七条; 7 or more for large government procurements, 财政部令第87号 第四十七条). "
        "Default: the roster's experts and tenderer's representatives, down to an odd number.")
    remote: RemoteCommittee | None = Field(default=None, description=(
        "A remote evaluation (远程异地评标): one committee seated at several venues and linked through the center; "
        "the main venue's plan lists every member with their venue, a secondary venue's plan only its own."))

    @model_validator(mode="after")
    def _times(self) -> "Session":
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.committee_size is not None and self.committee_size % 2 == 0:
            raise ValueError(f"committee_size {self.committee_size}: a committee has an odd number of members (五人以上单数)")
        return self


class DayPlan(_Item):
    format: Literal["site-appliance/day-plan/v1"]
    site_id: str
    date: date
    version: int = Field(ge=1, description="Plans are versioned; a later version replaces an earlier one.")
    zones: list[Zone]
    rooms: list[Room]
    gates: list[Gate] = Field(default_factory=list)
    people: list[Person] = Field(default_factory=list)
    sessions: list[Session] = Field(default_factory=list)
    revoked: list[str] = Field(default_factory=list, description="Person ids revoked by the center (experts withdrawn).")
    blacklisted: list[str] = Field(default_factory=list, description="Person ids on the blacklist.")

    @model_validator(mode="after")
    def _references(self) -> "DayPlan":
        zones = {z.id for z in self.zones}
        rooms = {r.id for r in self.rooms}
        people = {p.id for p in self.people}
        problems = []
        problems += [f"room {r.id}: unknown zone {r.zone}" for r in self.rooms if r.zone not in zones]
        problems += [f"gate {g.id}: unknown zone" for g in self.gates if g.from_zone not in zones or g.to_zone not in zones]
        for s in self.sessions:
            if s.room not in rooms:
                problems.append(f"session {s.id}: unknown room {s.room}")
            bidders = {b.id for b in s.bidders}
            problems += _remote_problems(self.site_id, s)
            for entry in s.roster:
                if entry.person not in people:
                    problems.append(f"session {s.id}: roster names unknown person {entry.person}")
                if entry.role == "bidder_representative" and entry.bidder not in bidders:
                    problems.append(f"session {s.id}: {entry.person} represents an unknown bidder {entry.bidder}")
        for kind, ids in (("revoked", self.revoked), ("blacklisted", self.blacklisted)):
            problems += [f"{kind}: unknown person {p}" for p in ids if p not in people]
        for collection in ("zones", "rooms", "gates", "people", "sessions"):
            ids = [item.id for item in getattr(self, collection)]
            problems += [f"{collection}: duplicate id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
            problems += [f"{collection}: an id must not contain an ID or bank card number" for i in ids if contains_personal_number(i)]
        codes = [s.section_code for s in self.sessions] + [b.id for s in self.sessions for b in s.bidders]
        problems += ["sessions: a section code or bidder id must not contain an ID or bank card number"
                     for c in codes if contains_personal_number(c)]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _remote_problems(site_id: str, s: Session) -> list[str]:
    if s.remote is None:
        return [f"session {s.id}: roster names a venue, but the session is not a remote evaluation"
                for e in s.roster if e.venue not in (None, site_id)][:1]
    venues = [v.site for v in s.remote.venues]
    problems = []
    if s.kind != "evaluation":
        problems.append(f"session {s.id}.remote: only an evaluation is held across venues")
    if len(set(venues)) != len(venues):
        problems.append(f"session {s.id}.remote.venues: a venue is named twice")
    if s.remote.main not in venues or site_id not in venues:
        problems.append(f"session {s.id}.remote: the main venue and this site must be among the venues")
    for e in s.roster:
        if e.venue is not None and e.venue not in venues:
            problems.append(f"session {s.id}: {e.person} sits at {e.venue}, not a venue of the committee")
        elif e.venue not in (None, site_id) and s.remote.main != site_id:
            problems.append(f"session {s.id}: a secondary venue's plan names only its own members ({e.person} sits at {e.venue})")
    return problems


def json_schema() -> dict:
    schema = DayPlan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://site-appliance.invalid/schemas/day-plan-v1.json"
    schema["title"] = "Site appliance day plan, v1"
    return schema


def parse_plan(text: str) -> DayPlan:
    try:
        return DayPlan.model_validate_json(text)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "plan"
            problems.append(f"{where}: {err['msg']}")
        raise PlanError("; ".join(problems[:20])) from exc


def load_plan(site: Site, plan: DayPlan, *, conn: Any = None, by: str | None = None) -> dict[str, int]:
    """Store the plan (replacing an earlier version of the same day) and journal it (``by``: who
    loaded it, when a person did); in the caller's transaction when given one (the feed applies
    a plan and its cursor together)."""
    if plan.site_id != site.config.site.id:
        raise PlanError(f"site_id: the plan is for {plan.site_id!r}, this site is {site.config.site.id!r}")
    current = (conn or site.store.reader()).execute(
        "SELECT MAX(version) FROM plans WHERE day = ?", (plan.date.isoformat(),)).fetchone()[0]
    if current is not None and plan.version <= current:
        raise PlanError(f"version: plan version {plan.version} for {plan.date} is not newer than the loaded {current}")
    bad = [p.id for p in plan.people if not is_valid_id_number(p.id_number.upper())]
    if bad:
        raise PlanError(f"people: the ID number of {', '.join(bad)} fails the GB 11643 check (a typing error?)")
    unkeyed = [f"sessions.{s.id}.remote.venues.{v.site}.public_key" for s in plan.sessions if s.remote
               for v in s.remote.venues if not _is_ed25519_pem(v.public_key)]
    if unkeyed:
        raise PlanError(f"{unkeyed[0]}: an Ed25519 public key (PEM) is required (the center fills it in when it publishes the plan)")
    with site.store.within(conn) as conn:
        return _store_plan(site, conn, plan, by)


def _is_ed25519_pem(text: str) -> bool:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return isinstance(load_pem_public_key(text.encode()), Ed25519PublicKey)
    except (ValueError, TypeError):
        return False


def _planned_committee(session: Session) -> int | None:
    """Without ``committee_size``: the largest odd number of the roster's committee members, at
    least five (a roster of 6 plans a committee of 5 and a reserve)."""
    if session.kind != "evaluation":
        return None
    members = sum(e.role in ("expert", "tenderer_representative") for e in session.roster)
    return max(5, members if members % 2 else members - 1)


def _store_plan(site: Site, conn: Any, plan: DayPlan, by: str | None) -> dict[str, int]:
    person_ids = {p.id: register_person(site, id_number=p.id_number, name=p.name, conn=conn).person_id for p in plan.people}
    # The plan's fingerprint, without personal data: the canonical plan with ID numbers replaced by person rows.
    redacted = plan.model_dump(mode="json")
    for p in redacted["people"]:
        p["id_number"] = f"person:{person_ids[p['id']]}"
        p["name"] = ""
    digest = hashlib.sha256(canonical_bytes(redacted)).hexdigest()
    day = plan.date.isoformat()
    conn.execute("DELETE FROM roster WHERE session IN (SELECT id FROM sessions WHERE day = ?)", (day,))
    conn.execute("DELETE FROM session_bidders WHERE session IN (SELECT id FROM sessions WHERE day = ?)", (day,))
    for z in plan.zones:
        conn.execute("INSERT OR REPLACE INTO zones (id, name, closed) VALUES (?, ?, ?)", (z.id, z.name, int(z.closed)))
    for r in plan.rooms:
        conn.execute("INSERT OR REPLACE INTO rooms (id, name, kind, zone, capacity, equipment) VALUES (?, ?, ?, ?, ?, ?)",
                     (r.id, r.name, r.kind, r.zone, r.capacity, json.dumps(r.equipment)))
    for g in plan.gates:
        conn.execute("INSERT OR REPLACE INTO gates (id, name, from_zone, to_zone, direction, reader, gate_device) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (g.id, g.name, g.from_zone, g.to_zone, g.direction, g.reader, g.gate_device))
    for s in plan.sessions:
        conn.execute(
            """INSERT INTO sessions (id, day, kind, section_code, section_name, room, start, end, admission_opens_min,
                   admission_closes_min, state, committee_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'scheduled', ?)
               ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, section_code = excluded.section_code,
                   section_name = excluded.section_name, room = excluded.room, start = excluded.start, end = excluded.end,
                   admission_opens_min = excluded.admission_opens_min, admission_closes_min = excluded.admission_closes_min,
                   committee_size = excluded.committee_size""",
            (s.id, day, s.kind, s.section_code, s.section_name, s.room, utc_timestamp(s.start), utc_timestamp(s.end),
             s.admission_opens_min, s.admission_closes_min,
             s.committee_size if s.committee_size is not None else _planned_committee(s)))
        for b in s.bidders:
            conn.execute("INSERT INTO session_bidders (session, bidder, name) VALUES (?, ?, ?)", (s.id, b.id, b.name))
        for entry in s.roster:
            conn.execute("INSERT INTO roster (session, person_id, role, bidder, venue) VALUES (?, ?, ?, ?, ?)",
                         (s.id, person_ids[entry.person], entry.role, entry.bidder,
                          entry.venue if entry.venue != plan.site_id else None))
        conn.execute("DELETE FROM remote_sessions WHERE session = ?", (s.id,))
        if s.remote is not None:
            conn.execute("INSERT INTO remote_sessions (session, main, venues) VALUES (?, ?, ?)",
                         (s.id, s.remote.main, json.dumps([v.model_dump() for v in s.remote.venues], ensure_ascii=False)))
    for ref, person_id in person_ids.items():
        conn.execute("INSERT OR REPLACE INTO person_refs (ref, person_id) VALUES (?, ?)", (ref, person_id))
    conn.execute("UPDATE people SET revoked = 0, blacklisted = 0 WHERE id IN (%s)" % ",".join("?" * len(person_ids)),
                 list(person_ids.values()))
    for ref in plan.revoked:
        conn.execute("UPDATE people SET revoked = 1 WHERE id = ?", (person_ids[ref],))
    for ref in plan.blacklisted:
        conn.execute("UPDATE people SET blacklisted = 1 WHERE id = ?", (person_ids[ref],))
    conn.execute("INSERT INTO plans (day, version, sha256, loaded) VALUES (?, ?, ?, ?)",
                 (day, plan.version, digest, utc_timestamp(site.clock.now())))
    from appliance.segments import relink

    for s in plan.sessions:  # footage sealed before the session was planned, or moved, joins it
        relink(site, conn, s.id)
    counts = {"zones": len(plan.zones), "rooms": len(plan.rooms), "gates": len(plan.gates), "people": len(plan.people),
              "sessions": len(plan.sessions), "roster": sum(len(s.roster) for s in plan.sessions)}
    # The sessions by name (no personal data): what the center's pages call them.
    rooms = {r.id: r.name for r in plan.rooms}
    names = {s.id: {"section_code": s.section_code, "section_name": s.section_name, "room": rooms.get(s.room, s.room)}
             for s in plan.sessions}
    # A remote committee's venues with their keys: one venue's journal alone lets an auditor check
    # the other venues' records it embeds (docs/remote-evaluation.md).
    remote = {s.id: {"main": s.remote.main, "venues": [v.model_dump() for v in s.remote.venues]} for s in plan.sessions if s.remote}
    site.journal.append(conn, "plan.loaded", {"day": day, "version": plan.version, "sha256": digest, **counts,
                                              "session_names": names, **({"remote": remote} if remote else {}),
                                              **({"by": by} if by else {})})
    return counts
