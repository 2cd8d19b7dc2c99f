"""The access policy of closed areas (the closed evaluation area, 封闭评标区): one pure function.

Rules (../shared/DESIGN.md "Access policy"; 001 annex 3 第十七条 "评标区实行准入制度。评标评审专家须通过
身份核验，领取身份识别牌后方可凭身份证件通过闸机进入所属评标室"; 003 on commitments signed before
entering the evaluation room), checked in this order; the first that fails is the reason:

1. ``card_invalid`` — the card did not read or is outside its validity on that date;
2. ``unknown_person`` — the card's holder is not known to the site;
3. ``revoked`` / ``blacklisted`` — by the latest plan from the center;
4. ``already_inside`` — no second entry without an exit (anti-passback);
5. ``not_on_roster`` — not on today's roster of any session whose room is behind this gate;
6. ``role_not_allowed`` — bidders' representatives and agency staff never enter;
7. ``session_closed`` — the session is completed or terminated (or not admitting: suspended);
8. ``outside_admission_window`` — before admission opens or after it closes (experts), except
   an expert coming back under an exit approval while the evaluation is in progress (the
   approval names the session and expires; 001 annex 3: experts do not leave the evaluation
   area during the evaluation without approval);
9. ``conflict_declared`` / ``commitment_missing`` / ``locker_missing`` — an expert's
   pre-entry steps at the kiosk (a declared conflict decides, whatever else is missing);
10. ``allowed``.

Exits (``direction = out``) are always let through — nobody is locked in — but leaving during an
evaluation in progress without approval sets ``alarm`` (``exit_during_evaluation``); with an
approval the reason is ``exit_approved``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

NEVER_ALLOWED = frozenset({"bidder_representative", "agency_staff"})
ADMITTED_ANY_TIME = frozenset({"supervisor", "witness", "site_staff", "technician"})
EXPERT_ROLES = frozenset({"expert", "tenderer_representative"})
OPEN_STATES = frozenset({"scheduled", "admitting", "in_progress"})


@dataclass(frozen=True)
class RosterSession:
    session: str
    role: str
    state: str  # scheduled | admitting | in_progress | suspended | completed | terminated
    zone: str  # the zone of the session's room
    start: datetime
    admission_opens_min: int
    admission_closes_min: int
    commitment_signed: bool = False
    conflict_declared: bool = False
    locker_assigned: bool = False
    exit_approved: bool = False  # an unused, unexpired exit approval for this session
    returning: bool = False  # left under an exit approval that has not expired, not yet back

    def admission_window(self) -> tuple[datetime, datetime]:
        return (self.start - timedelta(minutes=self.admission_opens_min),
                self.start + timedelta(minutes=self.admission_closes_min))


@dataclass(frozen=True)
class AccessRequest:
    now: datetime
    gate_zone: str  # the closed zone the gate leads into (in) or out of (out)
    direction: str  # in | out
    card_valid: bool
    person_known: bool
    revoked: bool = False
    blacklisted: bool = False
    inside: bool = False  # already inside gate_zone
    roster: tuple[RosterSession, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Decision:
    allow: bool
    reason: str
    session: str | None = None
    alarm: bool = False


def decide(request: AccessRequest) -> Decision:
    if request.direction == "out":
        return _exit(request)
    if not request.card_valid:
        return Decision(False, "card_invalid")
    if not request.person_known:
        return Decision(False, "unknown_person")
    if request.revoked:
        return Decision(False, "revoked")
    if request.blacklisted:
        return Decision(False, "blacklisted")
    if request.inside:
        return Decision(False, "already_inside")
    here = [r for r in request.roster if r.zone == request.gate_zone]
    if not here:
        return Decision(False, "not_on_roster")
    if all(r.role in NEVER_ALLOWED for r in here):
        return Decision(False, "role_not_allowed", here[0].session)
    candidates = [r for r in here if r.role not in NEVER_ALLOWED]
    # Of several sessions, judge the one that fails last: the reason shown is the most useful.
    best = Decision(False, "session_closed", candidates[0].session)
    for entry in sorted(candidates, key=lambda r: r.start):
        verdict = _judge(entry, request.now)
        if verdict.allow:
            return verdict
        if _RANK[verdict.reason] > _RANK[best.reason]:
            best = verdict
    return best


_RANK = {reason: i for i, reason in enumerate(
    ("session_closed", "outside_admission_window", "conflict_declared", "commitment_missing", "locker_missing"))}


def _judge(entry: RosterSession, now: datetime) -> Decision:
    if entry.state not in OPEN_STATES:
        return Decision(False, "session_closed", entry.session)
    if entry.role in ADMITTED_ANY_TIME:
        return Decision(True, "allowed", entry.session)
    opens, closes = entry.admission_window()
    if not opens <= now <= closes and not (entry.returning and entry.state == "in_progress"):
        return Decision(False, "outside_admission_window", entry.session)
    if entry.conflict_declared:
        return Decision(False, "conflict_declared", entry.session)
    if not entry.commitment_signed:
        return Decision(False, "commitment_missing", entry.session)
    if not entry.locker_assigned:
        return Decision(False, "locker_missing", entry.session)
    return Decision(True, "allowed", entry.session)


def _exit(request: AccessRequest) -> Decision:
    evaluating = [r for r in request.roster
                  if r.zone == request.gate_zone and r.state == "in_progress" and r.role in EXPERT_ROLES]
    unapproved = [r for r in evaluating if not r.exit_approved]
    if unapproved:
        return Decision(True, "exit_during_evaluation", unapproved[0].session, alarm=True)
    if evaluating:
        return Decision(True, "exit_approved", evaluating[0].session)
    return Decision(True, "exit", None)
