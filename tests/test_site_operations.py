"""Day plan, session states and gate taps end to end: simulated reader and gate, the real
drivers, the access policy, decisions journaled before the gate opens."""

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from appliance.accounts import Accounts
from appliance.clock import FixedClock
from appliance.device_service import DeviceService
from appliance.site import open_site
from appliance.siteops.alarms import AlarmError, acknowledge, open_alarms
from appliance.siteops.assisted import AssistedError, assisted_check
from appliance.siteops.exits import ExitError, approve_exit, people_inside
from appliance.siteops.kiosk_checkin import current_prompt
from appliance.siteops.plan import PlanError, json_schema, load_plan, parse_plan
from appliance.siteops.sessions import SessionError, change_state
from tests.venue import card_of

ROOT = Path(__file__).parent.parent
PLAN = json.loads((ROOT / "demo" / "day-plan.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 11, 22, 1, 30, tzinfo=timezone.utc)  # 09:30 in Beijing: admission to S-0922-02 is open


def plan_text(**changes):
    return json.dumps({**PLAN, "site_id": "test-county-01", **changes}, ensure_ascii=False)


def test_schema_in_docs_is_current():
    assert json.loads((ROOT / "docs" / "day-plan.schema.json").read_text()) == json_schema()


def test_bad_plans_are_refused_with_the_field_named():
    with pytest.raises(PlanError, match="sessions.0.end"):
        bad = json.loads(plan_text())
        bad["sessions"][0]["end"] = "not a time"
        parse_plan(json.dumps(bad))
    with pytest.raises(PlanError, match="unknown person P99"):
        bad = json.loads(plan_text())
        bad["sessions"][1]["roster"].append({"person": "P99", "role": "expert"})
        parse_plan(json.dumps(bad))
    with pytest.raises(PlanError, match="id_number"):
        bad = json.loads(plan_text())
        bad["people"][0]["id_number"] = "12345"
        parse_plan(json.dumps(bad))


def test_plan_load_seals_id_numbers_and_journals_a_fingerprint(site, data_dir):
    counts = load_plan(site, parse_plan(plan_text()))
    assert counts == {"zones": 3, "rooms": 4, "gates": 2, "people": 13, "sessions": 2, "roster": 15}
    record = site.journal.records(kind="plan.loaded")[0]
    text = json.dumps([r.as_json() for r in site.journal.records()], ensure_ascii=False)
    assert all(p["id_number"] not in text and p["name"] not in text for p in PLAN["people"])
    assert len(record.payload["sha256"]) == 64
    with pytest.raises(PlanError, match="not newer"):
        load_plan(site, parse_plan(plan_text()))
    with pytest.raises(PlanError, match="site_id"):
        load_plan(site, parse_plan(plan_text(site_id="other-site-01", version=2)))
    typo = json.loads(plan_text(version=2))
    typo["people"][0]["id_number"] = typo["people"][0]["id_number"][:17] + ("1" if typo["people"][0]["id_number"][-1] != "1" else "2")
    with pytest.raises(PlanError, match="P01 fails the GB 11643 check"):
        load_plan(site, parse_plan(json.dumps(typo, ensure_ascii=False)))


def test_session_state_machine_needs_reasons_and_a_supervisor(site):
    load_plan(site, parse_plan(plan_text()))
    Accounts(site).add("super1", "supervisor", "supervisor-password")
    Accounts(site).add("staff1", "staff", "staff-password-1")
    change_state(site, "S-0922-02", "admitting", by="staff1")
    change_state(site, "S-0922-02", "in_progress", by="staff1")
    with pytest.raises(SessionError, match="reason"):
        change_state(site, "S-0922-02", "suspended", by="staff1", confirmed_by="super1")
    with pytest.raises(SessionError, match="not an active supervisor"):
        change_state(site, "S-0922-02", "suspended", by="staff1", reason="系统故障", confirmed_by="staff1")
    change_state(site, "S-0922-02", "suspended", by="staff1", reason="电子评标系统故障", confirmed_by="super1")
    change_state(site, "S-0922-02", "in_progress", by="staff1", reason="故障排除", confirmed_by="super1")
    change_state(site, "S-0922-02", "completed", by="staff1")
    with pytest.raises(SessionError, match="cannot go from completed"):
        change_state(site, "S-0922-02", "in_progress", by="staff1")
    states = [(r.payload["from"], r.payload["to"]) for r in site.journal.records(kind="session.state")]
    assert states[-1] == ("in_progress", "completed") and len(states) == 5


DEVICES = """
[devices]
simulate = true
[[devices.idcard]]
name = "gate-1-reader"
port = "/dev/ttyREADER1"
debounce_s = 0.5
[[devices.idcard]]
name = "gate-1-exit-reader"
port = "/dev/ttyREADER2"
debounce_s = 0.5
[[devices.gate]]
name = "gate-1"
port = "/dev/ttyBUS1"
pulse_ms = 300
passage_timeout_s = 1
"""


@pytest.fixture
def venue(data_dir):
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + DEVICES, encoding="utf-8")
    site = open_site(data_dir, clock=FixedClock(NOW))
    load_plan(site, parse_plan(plan_text()))
    change_state(site, "S-0922-02", "admitting", by="staff1")
    service = DeviceService(site)
    service.start()
    yield site, service
    service.stop()
    site.close()


def tap(site, service, reader_port, person_ref):
    before = len(site.journal.records(kind="gate.decision"))
    sim = service.sims[reader_port]
    sim.place(card_of(person_ref))
    deadline = time.monotonic() + 5
    while len(site.journal.records(kind="gate.decision")) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    sim.remove()
    time.sleep(0.6)  # past the debounce
    return site.journal.records(kind="gate.decision")[-1].payload


def test_gate_taps(venue):
    site, service = venue
    gate_sim = service.sims["/dev/ttyBUS1"]
    # An expert without the kiosk steps is refused; the gate stays shut.
    assert tap(site, service, "/dev/ttyREADER1", "P01")["reason"] == "commitment_missing"
    assert gate_sim.pulses == []
    # After commitment and locker (the kiosk's steps), the expert enters: decision first, then the pulse.
    person_id = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P01'").fetchone()[0]
    with site.store.transaction() as conn:
        conn.execute("INSERT INTO checkins (session, person_id, commitment_signed, locker) VALUES (?, ?, ?, ?)",
                     ("S-0922-02", person_id, "2026-11-22T01:20:00.000000Z", "bank-a/3"))
    decision = tap(site, service, "/dev/ttyREADER1", "P01")
    assert decision["allow"] and decision["reason"] == "allowed" and decision["session"] == "S-0922-02"
    assert len(gate_sim.pulses) == 1
    # No second entry without an exit.
    assert tap(site, service, "/dev/ttyREADER1", "P01")["reason"] == "already_inside"
    # A bidder's representative is refused at the evaluation gate.
    refused = tap(site, service, "/dev/ttyREADER1", "P11")
    assert not refused["allow"] and refused["reason"] == "role_not_allowed"
    assert len(gate_sim.pulses) == 1
    # The supervisor goes in at any time of the session.
    assert tap(site, service, "/dev/ttyREADER1", "P07")["allow"]
    # Exits are recorded; leaving while the evaluation is in progress raises an alarm.
    change_state(site, "S-0922-02", "in_progress", by="staff1")
    leaving = tap(site, service, "/dev/ttyREADER2", "P01")
    assert leaving["allow"] and leaving["alarm"] and leaving["reason"] == "exit_during_evaluation"
    # Nothing personal in the decisions.
    text = json.dumps([r.payload for r in site.journal.records(kind="gate.decision")], ensure_ascii=False)
    assert all(p["id_number"] not in text and p["name"] not in text for p in PLAN["people"])


def _checked_in(site, ref, session="S-0922-02"):
    person_id = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = ?", (ref,)).fetchone()[0]
    with site.store.transaction() as conn:
        conn.execute("INSERT INTO checkins (session, person_id, commitment_signed, locker) VALUES (?, ?, ?, ?)",
                     (session, person_id, "2026-11-22T01:20:00.000000Z", "bank-a/3"))
    return person_id


def test_exit_approval_lets_an_expert_out_and_back_without_an_alarm(venue):
    site, service = venue
    person_id = _checked_in(site, "P01")
    assert tap(site, service, "/dev/ttyREADER1", "P01")["allow"]
    change_state(site, "S-0922-02", "in_progress", by="staff1")
    inside = people_inside(site)
    assert [(p["person_id"], p["approved_until"]) for p in inside] == [(person_id, None)]
    site.clock.advance(timedelta(hours=1, minutes=30))  # long after admission closed
    with pytest.raises(ExitError, match="reason"):
        approve_exit(site, "S-0922-02", person_id, minutes=20, reason=" ", by="staff1")
    approve_exit(site, "S-0922-02", person_id, minutes=20, reason="样品查验", by="staff1")
    assert people_inside(site)[0]["approved_until"] is not None
    out = tap(site, service, "/dev/ttyREADER2", "P01")
    assert out["allow"] and not out["alarm"] and out["reason"] == "exit_approved"
    assert open_alarms(site) == []
    site.clock.advance(timedelta(minutes=10))
    back = tap(site, service, "/dev/ttyREADER1", "P01")
    assert back["allow"] and back["reason"] == "allowed"
    # The approval is used up: leaving again raises the alarm, and coming back is refused.
    again = tap(site, service, "/dev/ttyREADER2", "P01")
    assert again["alarm"] and again["reason"] == "exit_during_evaluation"
    assert tap(site, service, "/dev/ttyREADER1", "P01")["reason"] == "outside_admission_window"
    alarms = open_alarms(site)
    assert [(a["kind"], a["session"]) for a in alarms] == [("exit_during_evaluation", "S-0922-02")]
    assert alarms[0]["person"] and alarms[0]["person"] != PLAN["people"][0]["name"]  # masked
    raised = site.journal.records(kind="alarm.raised")[0].payload
    assert site.journal.records(since=raised["cause_seq"] - 1, limit=1)[0].kind == "gate.decision"
    with pytest.raises(AlarmError, match="say what"):
        acknowledge(site, alarms[0]["id"], by="staff1", note="")
    acknowledge(site, alarms[0]["id"], by="staff1", note="专家返回评标区外已由工作人员陪同")
    assert open_alarms(site) == []
    with pytest.raises(AlarmError, match="no such open alarm"):
        acknowledge(site, alarms[0]["id"], by="staff1", note="again")


def test_staff_assisted_check_is_a_recorded_downgrade(venue):
    site, service = venue
    gate_sim = service.sims["/dev/ttyBUS1"]
    expert = next(p for p in PLAN["people"] if p["id"] == "P02")
    bidder = next(p for p in PLAN["people"] if p["id"] == "P11")
    with pytest.raises(AssistedError, match="GB 11643"):
        assisted_check(site, "G-IN", id_number=expert["id_number"][:17] + "0" if expert["id_number"][-1] != "0"
                       else expert["id_number"][:17] + "1", document="unreadable_card", reason="芯片损坏",
                       photo_compared=True, by="staff1")
    with pytest.raises(AssistedError, match="photo"):
        assisted_check(site, "G-IN", id_number=expert["id_number"], document="unreadable_card", reason="芯片损坏",
                       photo_compared=False, by="staff1")
    # The expert's commitment is missing: refused, and the gate's kiosk gets the check-in screen.
    first = assisted_check(site, "G-IN", id_number=expert["id_number"], document="temporary_card",
                           reason="临时身份证无芯片", photo_compared=True, by="staff1")
    assert first.reason == "commitment_missing"
    assert current_prompt(site, "gate-1-reader").session == "S-0922-02"
    # A bidder's representative is refused however the identity was checked.
    assert assisted_check(site, "G-IN", id_number=bidder["id_number"], document="unreadable_card",
                          reason="读卡失败", photo_compared=True, by="staff1").reason == "role_not_allowed"
    # Once checked in, the assisted check opens the gate through the devices service.
    _checked_in(site, "P02")
    allowed = assisted_check(site, "G-IN", id_number=expert["id_number"], document="unreadable_card",
                             reason="芯片损坏", photo_compared=True, by="staff1")
    assert allowed.allow
    service.step()
    assert len(gate_sim.pulses) == 1
    records = site.journal.records(kind="gate.assisted")
    assert [r.payload["decision"] for r in records] == ["commitment_missing", "role_not_allowed", "allowed"]
    assert all(r.payload["downgrade"] and r.payload["by"] == "staff1" for r in records)
    decisions = [r.payload for r in site.journal.records(kind="gate.decision")]
    assert all(d["via"] == "staff_assisted" for d in decisions)
    text = json.dumps([r.payload for r in site.journal.records()], ensure_ascii=False)
    assert expert["id_number"] not in text and bidder["id_number"] not in text


def test_the_replacement_draw_result_arrives_in_a_newer_plan_and_joins_the_roster(venue):
    site, service = venue
    _checked_in(site, "P01")  # checked in before the update: kept
    replacement = {"id": "P14", "name": "周补抽", "id_number": "220102197404041011"}
    plan = json.loads(plan_text(version=2))
    plan["people"].append(replacement)
    roster = plan["sessions"][1]["roster"]
    roster[:] = [e for e in roster if e["person"] != "P05"] + [{"person": "P14", "role": "expert"}]
    load_plan(site, parse_plan(json.dumps(plan, ensure_ascii=False)))
    # The new expert's card now starts a check-in at the kiosk; the earlier check-in still stands.
    assert tap(site, service, "/dev/ttyREADER1", "P01")["reason"] == "allowed"
    from devices.idcard.text import RESIDENT, CardText
    sim = service.sims["/dev/ttyREADER1"]
    sim.place(CardText(kind=RESIDENT, name="周补抽", sex="1", nation="01", birth="19740404", address="吉林省测试路",
                       id_number=replacement["id_number"], authority="测试公安局", valid_from="20200101", valid_to="长期"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and site.journal.records(kind="gate.decision")[-1].payload["person_id"] is None:
        time.sleep(0.02)
    time.sleep(0.3)
    last = site.journal.records(kind="gate.decision")[-1].payload
    assert last["reason"] == "commitment_missing" and last["session"] == "S-0922-02"
    assert current_prompt(site, "gate-1-reader").session == "S-0922-02"
