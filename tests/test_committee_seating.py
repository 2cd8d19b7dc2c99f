"""The committee's size (招标投标法 第三十七条: 评标委员会……成员人数为五人以上单数): an evaluation does
not start short of the plan's number or with an even number, stops when a member leaves, and goes
on once the replacement the center drew is seated."""

from __future__ import annotations

import json

import pytest

from appliance.evaluation import committee as ev
from appliance.evaluation import seating
from appliance.siteops.plan import PlanError, load_plan, parse_plan
from tests.test_evaluation import BIDS, SESSION, TEMPLATE, people, refused, site  # noqa: F401  (the site fixture)
from tests.test_site_operations import plan_text


def recuse(site, person):  # noqa: F811
    with site.store.transaction() as conn:
        conn.execute("INSERT INTO checkins (session, person_id, conflict_declared) VALUES (?, ?, 1)", (SESSION, person))


def test_a_committee_of_four_after_a_recusal_does_not_start(site):  # noqa: F811
    (p02,) = people(site, "P02")
    recuse(site, p02)
    refused("committee_incomplete", ev.start, site, SESSION, TEMPLATE, BIDS, by="staff1")
    with site.store.transaction() as conn:
        seen = seating.before_start(conn, SESSION)
    assert (seen["sitting"], seen["required"]) == (4, 5) and "5" in seen["problem"]
    assert [(m["person_id"], m["why"], m["replacement_requested"]) for m in seen["missing"]] == [(p02, "recused", True)]


def test_a_reserve_beyond_the_plans_number_waits_and_can_be_seated(site):  # noqa: F811
    """Six present for a committee of five: five sit (never an even six), the last expert of
    the roster stays a candidate, seated when a member leaves."""
    from appliance.evaluation import seating

    plan = json.loads(plan_text())
    for s in plan["sessions"]:
        s["bidders"].append({"id": "B3", "name": "某某路桥有限公司"})
        if s["id"] == SESSION:
            s["roster"].append({"person": "P05", "role": "expert"})  # six members, committee_size 5
    load_plan(site, parse_plan(json.dumps({**plan, "version": 2}, ensure_ascii=False)))
    ev.start(site, SESSION, TEMPLATE, BIDS, by="staff1")
    (p05,) = people(site, "P05")
    conn = site.store.reader()
    seated = {r[0] for r in conn.execute("SELECT person_id FROM eval_members WHERE session = ?", (SESSION,))}
    assert len(seated) == 5 and p05 not in seated
    assert [c["person_id"] for c in seating.candidates(conn, SESSION)] == [p05]


def test_a_plan_asking_for_an_even_committee_is_refused():
    plan = json.loads(plan_text())
    plan["sessions"][1]["committee_size"] = 6
    with pytest.raises(PlanError, match="committee_size"):
        parse_plan(json.dumps(plan, ensure_ascii=False))
    plan["sessions"][1]["committee_size"] = 3
    with pytest.raises(PlanError, match="committee_size"):
        parse_plan(json.dumps(plan, ensure_ascii=False))


def test_a_member_leaving_stops_the_work_until_the_replacement_sits(site):  # noqa: F811
    p01, p02, p03, p04, p06 = members = people(site, "P01", "P02", "P03", "P04", "P06")
    ev.start(site, SESSION, TEMPLATE, BIDS, by="staff1")
    for person in members:
        ev.sign_in(site, SESSION, person)
        ev.confirm_read(site, SESSION, person)
    seating.withdraw(site, SESSION, p03, reason="评审中发现与投标人B2存在利害关系", by="staff1")
    refused("committee_incomplete", ev.vote, site, SESSION, p01, p02)
    assert [r.payload["reason"] for r in site.journal.records(kind="replacement_draw.requested")] == ["left_committee"]
    # The center's newer plan brings P05; staff seat them; they sign in and the vote goes on.
    plan = json.loads(plan_text())
    for s in plan["sessions"]:
        s["bidders"].append({"id": "B3", "name": "某某路桥有限公司"})
        if s["id"] == SESSION:
            s["roster"].append({"person": "P05", "role": "expert"})
    load_plan(site, parse_plan(json.dumps({**plan, "version": 2}, ensure_ascii=False)))
    (p05,) = people(site, "P05")
    with site.store.transaction() as conn:
        assert [c["person_id"] for c in seating.candidates(conn, SESSION)] == [p05]
    seating.seat(site, SESSION, p05, by="staff1")
    refused("not_member", ev.vote, site, SESSION, p03, p02)  # who left no longer acts
    ev.sign_in(site, SESSION, p05)
    for voter in (p01, p02, p04, p06, p05):
        ev.vote(site, SESSION, voter, p02)
    assert ev._state(site.store.reader(), SESSION) == ("evaluating", p02)
