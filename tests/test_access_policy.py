"""The access policy, by example and by property over random rosters and tap sequences."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.siteops.access import (
    NEVER_ALLOWED, AccessRequest, RosterSession, decide,
)

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=timezone.utc)  # 09:00 in Beijing


def expert(**kw):
    base = dict(session="S1", role="expert", state="admitting", zone="evaluation", start=T0,
                admission_opens_min=60, admission_closes_min=30, commitment_signed=True, locker_assigned=True)
    return RosterSession(**{**base, **kw})


def tap(*roster, now=T0 - timedelta(minutes=10), **kw):
    base = dict(now=now, gate_zone="evaluation", direction="in", card_valid=True, person_known=True, roster=tuple(roster))
    return decide(AccessRequest(**{**base, **kw}))


@pytest.mark.parametrize("kwargs, roster, reason", [
    ({"card_valid": False}, [expert()], "card_invalid"),
    ({"person_known": False}, [], "unknown_person"),
    ({"revoked": True}, [expert()], "revoked"),
    ({"blacklisted": True}, [expert()], "blacklisted"),
    ({"inside": True}, [expert()], "already_inside"),
    ({}, [], "not_on_roster"),
    ({}, [expert(zone="opening_area")], "not_on_roster"),
    ({}, [expert(role="bidder_representative")], "role_not_allowed"),
    ({}, [expert(role="agency_staff")], "role_not_allowed"),
    ({}, [expert(state="completed")], "session_closed"),
    ({}, [expert(state="terminated")], "session_closed"),
    ({}, [expert(state="suspended")], "session_closed"),
    ({"now": T0 - timedelta(minutes=61)}, [expert()], "outside_admission_window"),
    ({"now": T0 + timedelta(minutes=31)}, [expert()], "outside_admission_window"),
    ({}, [expert(commitment_signed=False)], "commitment_missing"),
    ({}, [expert(conflict_declared=True)], "conflict_declared"),
    ({}, [expert(locker_assigned=False)], "locker_missing"),
    ({}, [expert()], "allowed"),
    ({"now": T0 + timedelta(hours=5)}, [expert(role="supervisor", state="in_progress")], "allowed"),
])
def test_rules(kwargs, roster, reason):
    decision = tap(*roster, **kwargs)
    assert decision.reason == reason and decision.allow == (reason == "allowed")


def test_exit_during_evaluation_raises_an_alarm_unless_approved():
    leaving = tap(expert(state="in_progress"), direction="out")
    assert leaving.allow and leaving.alarm and leaving.reason == "exit_during_evaluation"
    approved = tap(expert(state="in_progress", exit_approved=True), direction="out")
    assert approved.allow and not approved.alarm and approved.reason == "exit_approved"


def test_coming_back_under_an_exit_approval_passes_the_closed_admission_window():
    late = T0 + timedelta(hours=2)
    assert tap(expert(state="in_progress"), now=late).reason == "outside_admission_window"
    assert tap(expert(state="in_progress", returning=True), now=late).reason == "allowed"
    # Only while the evaluation is in progress, and still every other rule applies.
    assert tap(expert(state="suspended", returning=True), now=late).reason == "session_closed"
    assert tap(expert(state="in_progress", returning=True), now=late, inside=True).reason == "already_inside"
    assert tap(expert(state="completed"), direction="out").alarm is False


# -- properties --------------------------------------------------------------------------------

roles = st.sampled_from(["expert", "tenderer_representative", "supervisor", "witness", "agency_staff",
                         "bidder_representative", "site_staff", "technician"])
states = st.sampled_from(["scheduled", "admitting", "in_progress", "suspended", "completed", "terminated"])
entries = st.builds(
    RosterSession, session=st.sampled_from(["S1", "S2", "S3"]), role=roles, state=states,
    zone=st.sampled_from(["evaluation", "opening_area"]),
    start=st.integers(-240, 240).map(lambda m: T0 + timedelta(minutes=m)),
    admission_opens_min=st.integers(0, 120), admission_closes_min=st.integers(0, 60),
    commitment_signed=st.booleans(), conflict_declared=st.booleans(), locker_assigned=st.booleans(),
    exit_approved=st.booleans(), returning=st.booleans(),
)
requests = st.builds(
    AccessRequest, now=st.integers(-300, 300).map(lambda m: T0 + timedelta(minutes=m)), gate_zone=st.just("evaluation"),
    direction=st.just("in"), card_valid=st.booleans(), person_known=st.booleans(), revoked=st.booleans(),
    blacklisted=st.booleans(), inside=st.booleans(),
    # One entry per session, as the roster table's key (session, person) guarantees.
    roster=st.lists(entries, max_size=4, unique_by=lambda r: r.session).map(tuple),
)


@settings(max_examples=2000)
@given(requests)
def test_whoever_is_admitted_deserves_it(request):
    decision = decide(request)
    if not decision.allow:
        return
    assert request.card_valid and request.person_known and not request.revoked and not request.blacklisted
    assert not request.inside
    entry = next(r for r in request.roster if r.session == decision.session and r.zone == request.gate_zone
                 and r.role not in NEVER_ALLOWED and r.state in ("scheduled", "admitting", "in_progress"))
    if entry.role in ("expert", "tenderer_representative"):
        opens, closes = entry.admission_window()
        assert opens <= request.now <= closes or (entry.returning and entry.state == "in_progress")
        assert entry.commitment_signed and entry.locker_assigned and not entry.conflict_declared


@settings(max_examples=2000)
@given(requests)
def test_bidders_and_agency_staff_never_enter(request):
    only_outsiders = all(r.role in NEVER_ALLOWED for r in request.roster if r.zone == request.gate_zone)
    if only_outsiders:
        assert not decide(request).allow


@settings(max_examples=300)
@given(st.lists(entries, min_size=1, max_size=3, unique_by=lambda r: r.session).map(tuple), st.lists(st.sampled_from(["in", "out"]), max_size=12),
       st.integers(-60, 30))
def test_no_second_entry_without_an_exit(roster, taps, minute):
    """Replay a tap sequence as the gates would: the inside flag follows allowed passages."""
    inside = False
    entries_allowed = 0
    for direction in taps:
        decision = decide(AccessRequest(now=T0 + timedelta(minutes=minute), gate_zone="evaluation", direction=direction,
                                        card_valid=True, person_known=True, inside=inside, roster=roster))
        if direction == "in" and decision.allow:
            assert not inside
            inside, entries_allowed = True, entries_allowed + 1
        elif direction == "out":
            assert decision.allow  # nobody is locked in
            inside = False
    assert entries_allowed <= taps.count("out") + 1
