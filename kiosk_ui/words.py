"""What the screens say about the venue's events: every decision and journal kind as a sentence
in the reader's language, with people, gates, rooms, sessions, bidders and devices by the names
people know (masked names and roles; the plan's and the configuration's display names), never
the codes the code uses. `Names` looks names up once per page; `sentence` words one event."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _

from appliance.names import device_labels


def role_texts() -> dict[str, str]:
    return {"expert": _("expert"), "tenderer_representative": _("tenderer's representative"), "supervisor": _("supervisor"),
            "witness": _("witness"), "technician": _("technician"), "site_staff": _("site staff"),
            "bidder_representative": _("bidder's representative"), "agency_staff": _("agency staff")}


def decision_texts() -> dict[str, str]:
    """Screen words for the access policy's reason codes (appliance.siteops.access)."""
    return {
        "allowed": _("Allowed"), "exit": _("Exit"), "exit_approved": _("Approved exit"),
        "exit_during_evaluation": _("Left during the evaluation without approval"),
        "card_invalid": _("Card not valid"), "unknown_person": _("Not known to the site"), "revoked": _("Revoked"),
        "blacklisted": _("Blacklisted"), "already_inside": _("Already inside (no exit recorded)"),
        "not_on_roster": _("Not on today's roster for this area"), "role_not_allowed": _("Role never admitted"),
        "session_closed": _("Session not admitting"), "outside_admission_window": _("Outside the admission window"),
        "conflict_declared": _("Conflict declared"), "commitment_missing": _("Commitment not yet signed (kiosk)"),
        "locker_missing": _("No locker yet"),
    }


def alarm_texts() -> dict[str, str]:
    return {"exit_during_evaluation": _("An expert left the evaluation area without approval"),
            "gate_fault": _("A gate did not open"), "locker_door_left_open": _("A locker door was left open"),
            "camera_offline": _("A camera stopped recording"), "camera_picture": _("A camera's picture is unusable"),
            "camera_clock": _("A camera's clock runs wrong: its footage times come from this box's clock"),
            "disk_warning": _("The recordings disk is filling up"), "disk_critical": _("The recordings disk is nearly full"),
            "feed_refused": _("An item from the provincial center could not be applied"),
            "collusion_signal": _("Bid files share identifying data (a signal to look into)")}


def state_texts() -> dict[str, str]:
    return {"scheduled": _("Scheduled"), "admitting": _("Admitting"), "in_progress": _("In progress"),
            "suspended": _("Suspended"), "completed": _("Completed"), "terminated": _("Terminated")}


class Names:
    """Names for one page: looked up from the store and the configuration once."""

    def __init__(self, site: Any) -> None:
        conn = site.store.reader()
        self.people = dict(conn.execute("SELECT id, name_masked FROM people"))
        self.roles: dict[tuple[str, int], str] = {(s, p): r for s, p, r in conn.execute("SELECT session, person_id, role FROM roster")}
        self.any_role: dict[int, str] = {p: r for _s, p, r in conn.execute("SELECT session, person_id, role FROM roster")}
        self.gates = dict(conn.execute("SELECT id, name FROM gates"))
        self.rooms = dict(conn.execute("SELECT id, name FROM rooms"))
        self.zones = dict(conn.execute("SELECT id, name FROM zones"))
        self.sessions = dict(conn.execute("SELECT id, section_name FROM sessions"))
        self.bidders = {(s, b): n for s, b, n in conn.execute("SELECT session, bidder, name FROM session_bidders")}
        self.bidder_any = {b: n for _s, b, n in conn.execute("SELECT session, bidder, name FROM session_bidders")}
        self.devices = device_labels(site.config)
        self.steps: dict[tuple[str, str], str] = {}
        for session, template in conn.execute("SELECT session, template FROM evaluations"):
            for step in json.loads(template).get("steps", []):
                self.steps[(session, str(step.get("id")))] = str(step.get("name") or step.get("id"))

    def person(self, person_id: Any, session: str | None = None, *, masked_id: str | None = None) -> str:
        """"王** · 评标专家"; someone the site does not know by their masked ID number."""
        if person_id is None or person_id not in self.people:
            return _("someone not registered (ID %(id)s)", id=masked_id) if masked_id else _("someone not registered")
        role = self.roles.get((session, person_id)) if session else None
        role = role or self.any_role.get(person_id)
        return f"{self.people[person_id]} · {role_texts().get(role, role)}" if role else str(self.people[person_id])

    def gate(self, gate_id: Any) -> str:
        return self.gates.get(gate_id, str(gate_id))

    def room(self, room_id: Any) -> str:
        return self.rooms.get(room_id, str(room_id))

    def session(self, session_id: Any) -> str:
        return self.sessions.get(session_id, str(session_id))

    def bidder(self, bidder: Any, session: str | None = None) -> str:
        return self.bidders.get((session, bidder)) or self.bidder_any.get(bidder) or str(bidder)

    def device(self, name: Any) -> str:
        return self.devices.get(name, str(name))

    def step(self, session: str | None, step_id: Any) -> str:
        return self.steps.get((session or "", str(step_id)), str(step_id))


def _yuan(fen: Any) -> str:
    try:
        return format((Decimal(int(fen)) / 100).quantize(Decimal("0.01")), "f")
    except (TypeError, ValueError, InvalidOperation):
        return "—"


def sentence(kind: str, p: dict[str, Any], n: Names) -> str:
    """One journal event as a sentence people read."""
    s = p.get("session")
    who = n.person(p.get("person_id"), s, masked_id=p.get("id_masked"))
    if kind == "gate.decision":
        return _("%(person)s at %(gate)s: %(decision)s", person=who, gate=n.gate(p.get("gate")),
                 decision=decision_texts().get(p.get("reason", ""), _("a decision")))
    if kind == "gate.assisted":
        return _("%(by)s checked %(person)s by hand at %(gate)s: %(decision)s", by=p.get("by", ""), person=who,
                 gate=n.gate(p.get("gate")), decision=decision_texts().get(p.get("decision", ""), _("a decision")))
    if kind == "checkin.started":
        return _("%(person)s began the commitment at %(gate)s", person=who, gate=n.gate(p.get("gate")))
    if kind == "checkin.commitment_signed":
        return _("%(person)s signed the integrity and recusal commitment", person=who)
    if kind == "checkin.conflict_declared":
        return _("%(person)s declared a conflict of interest with %(bidders)s and does not take part", person=who,
                 bidders="、".join(n.bidder(b, s) for b in p.get("bidders", [])))
    if kind == "locker.assigned":
        return _("%(person)s got locker %(lock)s of %(bank)s", person=who, lock=p.get("lock"), bank=n.device(p.get("bank")))
    if kind == "session.state":
        text = _("%(session)s: %(old)s → %(new)s", session=n.session(s), old=state_texts().get(p.get("from", ""), p.get("from")),
                 new=state_texts().get(p.get("to", ""), p.get("to")))
        return text + (_(" (reason: %(reason)s)", reason=p["reason"]) if p.get("reason") else "")
    if kind == "session.no_show":
        return _("%(person)s did not come", person=who)
    if kind == "replacement_draw.requested":
        return _("A replacement draw was requested for %(person)s", person=n.person(p.get("replaces_person_id"), s))
    if kind == "exit.approved":
        return _("%(person)s may leave the evaluation area for %(minutes)s minutes: %(reason)s", person=who,
                 minutes=p.get("minutes"), reason=p.get("reason", ""))
    if kind == "alarm.raised":
        text = alarm_texts().get(p.get("kind", ""), _("An alarm"))
        return text + (f" · {who}" if p.get("person_id") else "")
    if kind == "review.bookmark":
        return _("Bookmark: %(note)s", note=p.get("note", ""))
    if kind == "fees.sheet":
        return _("The fee sheet was confirmed: %(total)s yuan in all", total=_yuan(p.get("total_fen")))
    if kind == "evaluation.signed_in":
        return _("%(person)s signed in at a terminal", person=who)
    if kind == "evaluation.vote_round":
        if p.get("chair"):
            return _("Round %(round)s of the chair's election: %(person)s is the chair", round=p.get("round"),
                     person=n.person(p["chair"], s))
        return _("Round %(round)s of the chair's election: nobody has more than half; a new round", round=p.get("round"))
    if kind == "evaluation.step_confirmed":
        failed = [n.bidder(b, s) for b, criteria in ((p.get("outcome") or {}).get("failed") or {}).items() if criteria]
        text = _("The chair confirmed the step %(step)s", step=n.step(s, p.get("step")))
        return text + (_(" (not passed: %(bidders)s)", bidders="、".join(failed)) if failed else "")
    if kind == "evaluation.reopen_approved":
        return _("%(by)s approved reopening the step %(step)s", by=p.get("supervisor", ""), step=n.step(s, p.get("step")))
    if kind == "evaluation.clarification_asked":
        return _("The chair asked %(bidder)s for a clarification", bidder=n.bidder(p.get("bidder"), s))
    if kind == "evaluation.clarification_answered":
        return _("%(bidder)s's clarification was recorded", bidder=n.bidder(p.get("bidder"), s))
    if kind == "evaluation.revised":
        return _("%(person)s revised a score of %(bidder)s: %(old)s → %(new)s (%(reason)s)", person=who,
                 bidder=n.bidder(p.get("bidder"), s), old=p.get("from"), new=p.get("to"), reason=p.get("reason", ""))
    if kind in ("evaluation.results", "evaluation.report"):
        ranked = sorted((r for r in p.get("results", []) if r.get("rank")), key=lambda r: r["rank"])
        places = "；".join(_("%(rank)s. %(bidder)s", rank=r["rank"], bidder=n.bidder(r.get("bidder"), s)) for r in ranked[:3])
        head = _("Results") if kind == "evaluation.results" else _("The evaluation report was issued")
        return f"{head}：{places}" if places else head
    if kind == "evaluation.report_signed":
        return (_("%(person)s signed the report, agreeing", person=who) if p.get("agrees")
                else _("%(person)s signed the report with a dissent", person=who))
    if kind == "opening.recorded":
        return _("The opening record: %(n)s bidders", n=len(p.get("rows", [])))
    if kind == "opening.signed_off":
        return _("%(by)s signed off the opening record", by=p.get("supervisor", ""))
    if kind == "evaluation.member_left":
        return _("%(person)s left the committee: %(reason)s", person=who, reason=p.get("reason", ""))
    if kind == "evaluation.member_seated":
        return _("%(person)s was seated on the committee", person=who)
    if kind == "checkin.timed_out":
        return _("A check-in at the kiosk timed out")
    if kind == "evaluation.remote_action" and p.get("action") == "venue_sign":
        return _("%(by)s, a supervisor at this venue, signed for its part of the report; sent to the main venue",
                 by=(p.get("args") or {}).get("supervisor", ""))
    if kind == "evaluation.venue_signed":
        return _("%(by)s signed for the part of %(venue)s in the report", by=p.get("supervisor", ""), venue=p.get("venue_name", ""))
    if kind == "evaluation.remote_action":
        action = committee_action_texts().get(p.get("action", "")) or _("an action")
        return _("%(person)s at this venue: %(action)s, sent to the main venue", person=who, action=action)
    if kind == "evaluation.remote_received":
        return _("An action of a member at %(venue)s arrived (its record %(seq)s)", venue=p.get("origin_name", ""),
                 seq=p.get("origin_seq"))
    if kind == "evaluation.remote_answered":
        done = p.get("outcome") == "applied"
        return (_("The committee applied the action of a member at %(venue)s (its record %(seq)s)", venue=p.get("origin_name", ""),
                  seq=p.get("origin_seq"))
                if done else _("The committee refused the action of a member at %(venue)s (its record %(seq)s)",
                               venue=p.get("origin_name", ""), seq=p.get("origin_seq")))
    if kind == "evaluation.remote_record":
        return _("The committee's record %(seq)s from the main venue %(venue)s", seq=p.get("origin_seq"), venue=p.get("origin_name", ""))
    if kind == "evaluation.remote_refused":
        return _("A message relayed for the remote evaluation was refused: it is not what it claims to be")
    if kind == "evaluation.remote_link":
        venue = p.get("venue_name", "")
        return (_("Remote evaluation: %(venue)s connected again; the committee resumes", venue=venue) if p.get("connected")
                else _("Remote evaluation: %(venue)s not connected; the committee is paused", venue=venue))
    return _("Another event")


def committee_action_texts() -> dict[str, str]:
    """A committee member's actions in words (appliance.evaluation.actions)."""
    return {"sign_in": _("Sign-in"), "read": _("Project information read"), "vote": _("Vote for the chair"),
            "marks": _("Marks"), "confirm": _("Confirm the step"), "reopen": _("Request to reopen a step"),
            "clarify": _("Clarification question"), "opinions": _("Ask for opinions"), "revise": _("Revised score"),
            "agree": _("Agreement"), "finalize": _("Confirm the results"), "sign": _("Report signature"),
            "issue": _("Issue the report"), "venue_sign": _("A supervisor's sign-off for the venue's part")}


def remote_evidence_problem(d: dict[str, Any]) -> str:
    """One problem of a remote evaluation's package (appliance.evidence_remote ``details``) in words."""
    code, venue = d.get("code"), str(d.get("venue", ""))
    if code == "venue_problem":
        return f"{venue}：{evidence_problem(d.get('detail') or {})}"
    texts = {
        "remote_manifest": _("The package's list of venues (remote.json) is incomplete, altered, or not signed by the center's key."),
        "remote_center_key": _("The package is signed by another center key than the one pinned."),
        "venues_missing": _("The main venue's records name venues whose records the package does not hold: %(venues)s",
                            venues=d.get("venues", "")),
        "venue_package": _("The package of %(venue)s is missing, altered, or not of this session.", venue=venue),
        "embedded": _("Record %(seq)s of %(venue)s embeds another venue's record that does not verify.", seq=d.get("seq"), venue=venue),
    }
    return texts.get(str(code), _("Another problem (see the command-line check for details)."))


def evidence_problem(d: dict[str, Any]) -> str:
    """One problem of an evidence package's check (appliance.evidence ``details``) in words."""
    code = d.get("code")
    file = str(d.get("file", "")).removeprefix("segments/")
    if code == "segment_altered":
        spans = "、".join(_("bytes %(a)s–%(b)s", a=a, b=b) for a, b in d.get("spans", []))
        text = _("Footage %(file)s differs from what record %(seq)s sealed", file=file, seq=d.get("seq"))
        if spans:
            text += _(": changed in %(spans)s", spans=spans)
        if d.get("size") != d.get("sealed"):
            text += _("; it is %(size)s bytes, %(sealed)s were sealed", size=d.get("size"), sealed=d.get("sealed"))
        return text
    texts = {
        "not_zip": _("This file is not an evidence package (not a ZIP file)."),
        "too_many_entries": _("The package holds %(n)s files: more than any package holds.", n=d.get("n")),
        "parts_missing": _("Parts of the package are missing: %(parts)s.", parts=d.get("parts")),
        "part_too_large": _("%(part)s would be %(size)s bytes unpacked, more than %(limit)s: not read.", part=d.get("part"),
                            size=d.get("size"), limit=d.get("limit")),
        "manifest_unreadable": _("The package's list of contents (manifest) or its key cannot be read."),
        "not_pinned_key": _("The package is signed with key %(key)s, not the expected %(pinned)s.", key=d.get("key"),
                            pinned=d.get("pinned")),
        "manifest_signature": _("The site's signature on the list of contents does not match: altered, or another key."),
        "part_unreadable": _("%(part)s cannot be read.", part=d.get("part")),
        "manifest_malformed": _("The list of contents (manifest) is malformed."),
        "records_missing": _("Journal records %(records)s listed in the package are missing or altered.", records=d.get("records")),
        "records_unlisted": _("Journal records %(records)s are not in the package's list.", records=d.get("records")),
        "extra_file": _("%(file)s is in the package but not in its list of contents.", file=d.get("file")),
        "checkpoint_invalid": _("The signed checkpoint does not verify."),
        "line_too_long": _("Journal line %(line)s is too long: the rest was not read.", line=d.get("line")),
        "too_many_problems": _("Too many problems: the journal was not read beyond line %(line)s.", line=d.get("line")),
        "line_unreadable": _("Journal line %(line)s cannot be read.", line=d.get("line")),
        "record_altered": _("Journal record %(seq)s was altered.", seq=d.get("seq")),
        "record_signature": _("The site's signature on journal record %(seq)s does not match.", seq=d.get("seq")),
        "record_unproven": _("Journal record %(seq)s is not proven in the signed checkpoint.", seq=d.get("seq")),
        "segment_unchecked": _("Footage %(file)s was not checked (too many problems already).", file=file),
        "segment_unsealed": _("Footage %(file)s is not sealed by a verified record (record %(seq)s).", file=file, seq=d.get("seq")),
        "segment_missing": _("Footage %(file)s is missing.", file=file),
        "segment_size": _("Footage %(file)s is %(size)s bytes, %(sealed)s were sealed: not read.", file=file, size=d.get("size"),
                          sealed=d.get("sealed")),
        "segment_damaged": _("Footage %(file)s is damaged in the package.", file=file),
        "more_problems": _("… and %(n)s more problems.", n=d.get("n")),
        "duplicate_entries": _("The package holds two files of the same name: which one is meant cannot be told."),
    }
    return texts.get(str(code), _("Another problem (see the command-line check for details)."))
