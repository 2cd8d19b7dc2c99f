"""The console's site operations: session states with a supervisor's confirmation and an
announcement, broadcast calls composed from the roster, and the registers."""

import json

import pytest

from appliance.device_commands import command
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.registers import RegisterError, add_entry, close_entry, complete_entry
from tests.conftest import PASSWORDS
from tests.helpers import csrf_token
from tests.venue import ROOT, todays_plan


@pytest.fixture
def ops(web_site, login):
    load_plan(web_site, parse_plan(json.dumps(todays_plan("test-county-01"), ensure_ascii=False)))
    return web_site, login("staff")


def queued(site, kind="announce"):
    rows = site.store.reader().execute("SELECT id FROM device_commands WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    return [command(site, r[0]) for r in rows]


def test_sessions_page_and_state_changes(ops):
    site, staff = ops
    page = staff.get("/console/sessions")
    html = page.get_data(as_text=True)
    assert "某县第一中学教学楼改造工程施工" in html and "已排期" in html
    token = csrf_token(page)
    assert staff.post("/console/sessions/S-0922-02/state", data={"to": "admitting", "csrf_token": token}).status_code == 302
    staff.post("/console/sessions/S-0922-02/state", data={"to": "in_progress", "csrf_token": token})
    # Suspending needs a reason and a supervisor's password.
    staff.post("/console/sessions/S-0922-02/state", data={"to": "suspended", "reason": "系统故障", "supervisor": "supervisor1",
                                                          "supervisor_password": "wrong-password", "csrf_token": token})
    assert site.store.reader().execute("SELECT state FROM sessions WHERE id = 'S-0922-02'").fetchone()[0] == "in_progress"
    staff.post("/console/sessions/S-0922-02/state", data={"to": "suspended", "reason": "电子评标系统故障", "supervisor": "supervisor1",
                                                          "supervisor_password": PASSWORDS["supervisor"], "csrf_token": token})
    assert site.store.reader().execute("SELECT state FROM sessions WHERE id = 'S-0922-02'").fetchone()[0] == "suspended"
    last = site.journal.records(kind="session.state")[-1].payload
    assert last["confirmed_by"] == "supervisor1" and last["reason"] == "电子评标系统故障"
    announcement = queued(site)[-1]
    assert "暂停" in announcement["args"]["text"] and announcement["args"]["priority"] == "emergency"


def test_broadcast_call_composed_from_the_roster(ops):
    site, staff = ops
    page = staff.get("/console/sessions")
    staff.post("/console/calls/bidder", data={"session": "S-0922-02", "bidder": "B2", "room": "DY1", "csrf_token": csrf_token(page)})
    call = queued(site)[-1]
    assert call["args"] == {"text": "请某某工程有限公司代表到答疑室。", "priority": "call", "purpose": "bidder_call"}
    assert call["target"] == "public,corridor"  # where bidders wait, never the evaluation area


def test_registers_through_the_console(ops):
    site, staff = ops
    page = staff.get("/console/registers/patrol")
    resp = staff.post("/console/registers/patrol", data={"area": "第一评标室", "finding": "门禁正常", "csrf_token": csrf_token(page)})
    assert resp.status_code == 302
    assert "门禁正常" in staff.get("/console/registers/patrol").get_data(as_text=True)
    assert site.journal.records(kind="register.patrol")[0].payload["finding"] == "门禁正常"
    bad = staff.post("/console/registers/materials", data={"csrf_token": csrf_token(page)})
    assert "：请填写。" in bad.get_data(as_text=True)  # the field by its label, in the reader's language


def test_clarification_room_holds_two_people(ops):
    site, _ = ops
    first = add_entry(site, "clarification", {"session": "S-0922-02", "bidder": "B1", "people": "2"}, by="staff1")
    with pytest.raises(RegisterError, match="at most 2"):
        add_entry(site, "clarification", {"session": "S-0922-02", "bidder": "B2", "people": "1"}, by="staff1")
    close_entry(site, first, by="staff1")
    add_entry(site, "clarification", {"session": "S-0922-02", "bidder": "B2", "people": "1"}, by="staff1")
    with pytest.raises(RegisterError, match="not a bidder"):
        add_entry(site, "clarification", {"session": "S-0922-02", "bidder": "B9", "people": "1"}, by="staff1")


@pytest.mark.parametrize("register, values", [
    ("materials", {"session": "S-0922-02", "direction": "in", "description": "投标文件U盘 2 个", "carried_by": "见证人员"}),
    ("sample_inspection", {"session": "S-0922-02", "reason": "查验样品", "escort": "工作人员", "out_time": "10:30"}),
    ("technician", {"organisation": "系统维护公司", "purpose": "设备维护"}),
    ("objection", {"session": "S-0922-01", "raised_by": "某某工程有限公司", "content": "对开标结果有异议"}),
    ("bad_behaviour", {"subject": "某某建设有限公司", "behaviour": "提供虚假材料", "evidence": "核查记录"}),
    ("incident", {"description": "评标室断电", "severity": "high"}),
])
def test_every_register_accepts_an_entry(ops, register, values):
    site, _ = ops
    add_entry(site, register, values, by="staff1")
    assert site.journal.records(kind=f"register.{register}")[-1].payload["by"] == "staff1"


def test_id_numbers_in_register_text_are_masked(ops):
    site, _ = ops
    from tests.helpers import make_id_number

    number = make_id_number()
    add_entry(site, "patrol", {"area": "等候区", "finding": f"捡到身份证 {number}"}, by="staff1")
    payload = site.journal.records(kind="register.patrol")[-1].payload
    assert number not in payload["finding"] and number[:4] + "*" * 10 in payload["finding"]


def test_no_shows_are_flagged_once_and_replaced_from_the_console(ops):
    from datetime import datetime, timedelta

    from appliance.siteops.noshow import flag_no_shows
    from appliance.siteops.sessions import change_state

    site, staff = ops
    change_state(site, "S-0922-02", "admitting", by="staff1")
    start = datetime.fromisoformat(site.store.reader().execute("SELECT start FROM sessions WHERE id = 'S-0922-02'").fetchone()[0]
                                   .replace("Z", "+00:00"))
    real_now = site.clock.now
    try:
        site.clock.now = lambda: start + timedelta(minutes=10)
        assert flag_no_shows(site) == 0  # within the grace time
        site.clock.now = lambda: start + timedelta(minutes=16)
        assert flag_no_shows(site) == 5  # four experts and the tenderer's representative
        assert flag_no_shows(site) == 0  # once
    finally:
        site.clock.now = real_now  # (the staff session would idle out on the moved clock)
    page = staff.get("/console/sessions")
    assert page.get_data(as_text=True).count("未到场") == 5
    person_id = site.store.reader().execute("SELECT person_id FROM no_shows ORDER BY person_id").fetchone()[0]
    staff.post(f"/console/sessions/S-0922-02/replacement/{person_id}", data={"csrf_token": csrf_token(page)})
    request = site.journal.records(kind="replacement_draw")[-1].payload
    assert request == {"session": "S-0922-02", "replaces_person_id": person_id, "reason": "no_show", "requested_by": "staff1"}


def test_gates_page_assisted_check_exit_approval_and_alarms(ops, login):
    site, staff = ops
    expert = next(p for p in todays_plan("test-county-01")["people"] if p["id"] == "P03")
    page = staff.get("/console/gates")
    html = page.get_data(as_text=True)
    assert "人工核验" in html and "无未处理告警" in html
    token = csrf_token(page)
    # A malformed number is refused with the field named, and nothing is decided.
    bad = staff.post("/console/gates/assisted", data={"gate": "G-IN", "id_number": "12345", "document": "unreadable_card",
                                                      "reason": "芯片损坏", "photo_compared": "y", "csrf_token": token})
    assert bad.status_code == 400 and "17位数字" in bad.get_data(as_text=True)
    no_photo = staff.post("/console/gates/assisted", data={"gate": "G-IN", "id_number": expert["id_number"],
                                                           "document": "unreadable_card", "reason": "芯片损坏", "csrf_token": token})
    assert no_photo.status_code == 400 and not site.journal.records(kind="gate.decision")
    done = staff.post("/console/gates/assisted", data={"gate": "G-IN", "id_number": expert["id_number"], "document": "temporary_card",
                                                       "reason": "临时身份证", "photo_compared": "y", "csrf_token": token})
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and "尚未签署承诺书" in html and expert["id_number"] not in html
    assert site.journal.records(kind="gate.assisted")[0].payload["by"] == "staff1"
    # The expert is inside (checked in on the kiosk meanwhile) and leaves without approval: an alarm.
    person_id = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P03'").fetchone()[0]
    with site.store.transaction() as conn:
        conn.execute("INSERT INTO checkins (session, person_id, commitment_signed, locker) VALUES ('S-0922-02', ?, ?, 'bank-a/1')",
                     (person_id, "2026-01-01T00:00:00.000000Z"))
        conn.execute("UPDATE sessions SET state = 'in_progress' WHERE id = 'S-0922-02'")
        conn.execute("INSERT INTO presence (person_id, zone, since) VALUES (?, 'evaluation', '2026-01-01T00:00:00.000000Z')",
                     (person_id,))
    page = staff.get("/console/gates")
    assert "评标区内的专家" in page.get_data(as_text=True) and "批准离场" in page.get_data(as_text=True)
    staff.post("/console/gates/assisted", data={"gate": "G-OUT", "id_number": expert["id_number"], "document": "unreadable_card",
                                                "reason": "芯片损坏", "photo_compared": "y", "csrf_token": token})
    alarm = site.store.reader().execute("SELECT id, kind FROM alarms").fetchone()
    assert alarm[1] == "exit_during_evaluation"
    assert "专家未经批准离开评标区" in staff.get("/console/").get_data(as_text=True)
    supervisor = login("supervisor")
    assert "专家未经批准离开评标区" in supervisor.get("/review/").get_data(as_text=True)
    assert staff.get("/api/v1/status").get_json()["alarms"][0]["kind"] == "exit_during_evaluation"
    # Acknowledging needs a note; then the alarm is gone from every screen.
    staff.post(f"/console/alarms/{alarm[0]}/acknowledge", data={"note": "", "csrf_token": token})
    assert site.store.reader().execute("SELECT acknowledged FROM alarms").fetchone()[0] is None
    staff.post(f"/console/alarms/{alarm[0]}/acknowledge", data={"note": "已联系专家返回", "csrf_token": token})
    assert "无未处理告警" in staff.get("/console/").get_data(as_text=True)
    assert site.journal.records(kind="alarm.acknowledged")[0].payload["note"] == "已联系专家返回"


def test_exit_approval_from_the_console(ops):
    site, staff = ops
    person_id = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P01'").fetchone()[0]
    with site.store.transaction() as conn:
        conn.execute("UPDATE sessions SET state = 'in_progress' WHERE id = 'S-0922-02'")
        conn.execute("INSERT INTO presence (person_id, zone, since) VALUES (?, 'evaluation', '2026-01-01T00:00:00.000000Z')",
                     (person_id,))
    token = csrf_token(staff.get("/console/gates"))
    staff.post(f"/console/gates/exit/S-0922-02/{person_id}", data={"reason": "", "minutes": "30", "csrf_token": token})
    assert not site.journal.records(kind="exit.approved")
    staff.post(f"/console/gates/exit/S-0922-02/{person_id}", data={"reason": "样品查验", "minutes": "30", "csrf_token": token})
    approved = site.journal.records(kind="exit.approved")[0].payload
    assert approved["minutes"] == 30 and approved["by"] == "staff1" and approved["person_id"] == person_id
    assert "批准至" in staff.get("/console/gates").get_data(as_text=True)


def test_room_scheduling_on_the_console(web_site, login):
    # The demo plan on a fixed day: 第一评标室 busy 10:00–17:00, 第一开标室 09:00–10:00.
    text = (ROOT / "demo" / "day-plan.json").read_text(encoding="utf-8").replace("2026-11-22", "2030-01-07")
    load_plan(web_site, parse_plan(text.replace('"demo-county-01"', '"test-county-01"')))
    site, staff, day = web_site, login("staff"), "2030-01-07"
    page = staff.get(f"/console/rooms/?day={day}")
    html = page.get_data(as_text=True)
    assert "第一评标室" in html and "当天没有预约申请" in html
    token = csrf_token(page)
    form = {"section_code": "JL-2026-0931", "section_name": "某镇污水管网改造工程施工", "session_kind": "evaluation",
            "room_kind": "evaluation", "attendees": "7", "duration_min": "240", "day": day, "earliest": "08:00",
            "latest_end": "12:00", "equipment": "recording", "csrf_token": token}
    bad = staff.post("/console/rooms/book", data={**form, "latest_end": "07:00"})
    assert bad.status_code == 400 and "最晚结束时间须晚于最早开始时间" in bad.get_data(as_text=True)
    assert staff.post("/console/rooms/book", data=form).status_code == 302
    staff.post(f"/console/rooms/schedule?day={day}", data={"csrf_token": token})
    html = staff.get(f"/console/rooms/?day={day}").get_data(as_text=True)
    # The only evaluation room is taken by the plan: the refusal is worded for the reader.
    assert "无法安排" in html and "第一评标室：08:00 至 12:00 之间没有连续 240 分钟的空闲" in html
    assert "场次之间需间隔 30 分钟" in html
    booking_id = site.store.reader().execute("SELECT id FROM bookings").fetchone()[0]
    # Staff set the opening room, 15 minutes after its opening ends: placed, with what was waived shown.
    staff.post(f"/console/rooms/{booking_id}/pin?day={day}", data={"room": "KB1", "start": "10:15", "reason": "评标室维修",
                                                                   "csrf_token": token})
    html = staff.get(f"/console/rooms/?day={day}").get_data(as_text=True)
    assert "第一开标室 10:15–14:15" in html and "人工指定：评标室维修" in html and "已豁免：设备, 房间类型, 场次间隔" in html
    assert site.journal.records(kind="booking.pinned")[0].payload["reason"] == "评标室维修"
    # Pinned onto the opening itself: refused, nothing double-booked.
    staff.post(f"/console/rooms/{booking_id}/pin?day={day}", data={"room": "KB1", "start": "09:30", "reason": "再调整",
                                                                   "csrf_token": token})
    html = staff.get(f"/console/rooms/?day={day}").get_data(as_text=True)
    assert "与 S-0922-01（09:00–10:00）时间重叠" in html


def test_fee_sheet_on_the_console(ops):
    site, staff = ops
    card = "6222021234567890128"
    person_id = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P01'").fetchone()[0]
    with site.store.transaction() as conn:
        conn.execute("UPDATE sessions SET state = 'completed', ended = '2026-11-22T08:00:00.000000Z' WHERE id = 'S-0922-02'")
        conn.execute("INSERT INTO checkins (session, person_id, commitment_signed) VALUES ('S-0922-02', ?, '2026-11-22T01:00:00.000000Z')",
                     (person_id,))
    page = staff.get("/console/fees/S-0922-02")
    html = page.get_data(as_text=True)
    assert "劳务费表" in html and "800.00" in html and "未签到" in html  # 7 h: 500 + 3 started hours
    token = csrf_token(page)
    staff.post("/console/fees/S-0922-02/finalize", data={"csrf_token": token})
    assert "请先录入银行卡：缺少 1 张" in staff.get("/console/fees/S-0922-02").get_data(as_text=True)
    staff.post(f"/console/fees/S-0922-02/card/{person_id}", data={"number": card[:-1] + "9", "csrf_token": token})
    assert "银行卡号无效" in staff.get("/console/fees/S-0922-02").get_data(as_text=True)
    staff.post(f"/console/fees/S-0922-02/card/{person_id}", data={"number": card, "csrf_token": token})
    html = staff.get("/console/fees/S-0922-02").get_data(as_text=True)
    assert "622202*********0128" in html and card not in html
    staff.post("/console/fees/S-0922-02/finalize", data={"csrf_token": token})
    html = staff.get("/console/fees/S-0922-02").get_data(as_text=True)
    assert "已由 staff1 于" in html and "本表已锁定" in html
    assert site.journal.records(kind="fees.sheet")[0].payload["total_fen"] == 80000
    # Locked: no second confirmation, no card change through the sheet.
    staff.post("/console/fees/S-0922-02/finalize", data={"csrf_token": token})
    staff.post(f"/console/fees/S-0922-02/card/{person_id}", data={"number": card, "csrf_token": token})
    assert len(site.journal.records(kind="fees.sheet")) == 1
    assert len(site.journal.records(kind="person.bank_card_set")) == 1
    assert staff.get("/console/fees/NO-SUCH").status_code == 404


def test_staff_load_the_day_plan_on_the_console(web_site, login):
    import io

    client = login("staff")
    assert 'href="/console/plan"' in client.get("/console/sessions").get_data(as_text=True)
    plan = todays_plan(web_site.config.site.id)

    def upload(text, name="plan.json"):
        token = csrf_token(client.get("/console/plan"))
        return client.post("/console/plan", data={"csrf_token": token, "file": (io.BytesIO(text.encode()), name)},
                           content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)

    # A mistyped ID number: refused whole, the person named; nothing loaded.
    bad = json.loads(json.dumps(plan))
    bad["people"][0]["id_number"] = bad["people"][0]["id_number"][:-1] + ("0" if bad["people"][0]["id_number"][-1] != "0" else "1")
    page = upload(json.dumps(bad, ensure_ascii=False))
    assert 'id="plan-error"' in page and "P01" in page
    assert web_site.store.reader().execute("SELECT COUNT(*) FROM plans").fetchone()[0] == 0
    assert "请选择 .json 文件" in upload("{}", "plan.txt")  # not a .json file: the form says so
    assert web_site.store.reader().execute("SELECT COUNT(*) FROM plans").fetchone()[0] == 0
    page = upload(json.dumps(plan, ensure_ascii=False))
    assert "2 个场次" in page
    loaded = web_site.journal.records(kind="plan.loaded")[-1].payload
    assert (loaded["version"], loaded["by"]) == (plan["version"], "staff1")
    assert plan["people"][0]["id_number"] not in page  # the ID numbers went in sealed, never shown
    assert "某县第一中学" in client.get("/console/sessions").get_data(as_text=True)
    assert "is not newer than the loaded" in upload(json.dumps(plan, ensure_ascii=False))  # the same version again


def test_an_entry_is_completed_later_once_and_journaled(ops):
    site, staff = ops
    with pytest.raises(RegisterError, match="HH:MM"):
        add_entry(site, "sample_inspection", {"session": "S-0922-02", "reason": "查验样品", "escort": "张工", "out_time": "半小时前"},
                  by="staff1")
    entry = add_entry(site, "sample_inspection", {"session": "S-0922-02", "reason": "查验样品", "escort": "张工", "out_time": "9:05"},
                      by="staff1")
    page = staff.get("/console/registers/sample_inspection").get_data(as_text=True)
    assert "09:05" in page and 'name="field" value="in_time"' in page  # the return time waits to be filled in
    token = csrf_token(staff.get("/console/registers/sample_inspection"))
    staff.post(f"/console/registers/entry/{entry}/complete", data={"field": "in_time", "value": "25:00", "csrf_token": token})
    assert not site.journal.records(kind="register.sample_inspection_completed")  # not a time: refused
    staff.post(f"/console/registers/entry/{entry}/complete", data={"field": "in_time", "value": "9:40", "csrf_token": token})
    done = site.journal.records(kind="register.sample_inspection_completed")[-1].payload
    assert (done["entry"], done["in_time"], done["by"]) == (entry, "09:40", "staff1")
    with pytest.raises(RegisterError, match="filled in already"):
        complete_entry(site, entry, "in_time", "10:00", by="staff1")
    with pytest.raises(RegisterError, match="not a field to fill in later"):
        complete_entry(site, entry, "reason", "改写", by="staff1")  # what was written first stays
    patrol = add_entry(site, "patrol", {"area": "等候区", "finding": "饮水机漏水"}, by="staff1")
    complete_entry(site, patrol, "follow_up", "已报修，11:00 修复", by="staff2")
    assert "已报修" in staff.get("/console/registers/patrol").get_data(as_text=True)


def test_records_pages_refuse_bad_input_clearly(ops):
    """The alarm history, roster and exports: a bad day, kind, format or session is a clear
    refusal (400/404), never a traceback or an empty sheet passed off as real."""
    _, staff = ops
    assert staff.get("/console/alarms?day=2026-13-40").status_code == 400
    assert staff.get("/console/alarms?day=9999-01-01").status_code == 400  # absurd: beyond a year ahead
    assert staff.get("/console/alarms?kind=rm%20-rf").status_code == 400
    assert staff.get("/console/registers/patrol/export.xlsx?day=yesterday").status_code == 400
    assert staff.get("/console/registers/no-such/export.xlsx").status_code == 404
    assert staff.get("/console/registers/patrol/export.doc").status_code == 404
    assert staff.get("/console/sessions/NO-SUCH/roster").status_code == 404
    assert staff.get("/console/sessions/NO-SUCH/signin.xlsx").status_code == 404
    assert staff.get("/console/fees/NO-SUCH/export.xlsx").status_code == 404
    assert staff.get("/console/sessions/S-0922-02/roster").status_code == 200
