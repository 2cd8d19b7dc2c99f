"""The evaluation terminals through the web app (Flask's client) with the real devices service:
members sign in by tapping cards on the desks' readers (SAM simulators on pseudo-terminals),
refusals are shown and journaled, one member per terminal; marks typed on the screen, a dark
review by label, a suspended session pausing the screens, the committee page for staff and
supervisors. The whole evaluation in a real browser is tests/test_browser_evaluation.py."""

import hashlib
import json
import re
import time

import pytest

from appliance.accounts import Accounts

from appliance.kiosks import Kiosks
from appliance.clock import FixedClock
from appliance.device_service import DeviceService
from appliance.evaluation import committee as ev
from appliance.evaluation import darkbid, terminal
from appliance.site import open_site
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from kiosk_ui import create_app
from tests.conftest import PASSWORDS
from tests.helpers import csrf_token
from tests.test_evaluation import BIDS, SESSION, TEMPLATE
from tests.test_kiosk_checkin import LOCKERS
from tests.test_site_operations import DEVICES, NOW, PLAN, plan_text
from tests.venue import card_of, enter_evaluation_area

DESKS = "".join(f"""
[[devices.idcard]]
name = "pb1-desk-{i}"
port = "/dev/ttyDESK{i}"
debounce_s = 0.3
""" for i in (1, 2))
MEMBERS = ("P01", "P02", "P03", "P04", "P06")


@pytest.fixture
def room(data_dir):
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + DEVICES + LOCKERS + DESKS, encoding="utf-8")
    site = open_site(data_dir, clock=FixedClock(NOW))
    plan = json.loads(plan_text())
    for s in plan["sessions"]:
        s["bidders"].append({"id": "B3", "name": "某某路桥有限公司"})
    load_plan(site, parse_plan(json.dumps(plan, ensure_ascii=False)))
    change_state(site, SESSION, "admitting", by="staff1")
    accounts = Accounts(site)
    codes = [Kiosks(site).add(f"PB1-{i}", "evaluation", reader=f"pb1-desk-{i}", room="PB1") for i in (1, 2)]
    for role, password in PASSWORDS.items():
        accounts.add(f"{role}1", role, password)
    service = DeviceService(site)
    service.start()
    app = create_app(site)
    desks = []
    for code in codes:
        client = app.test_client()
        page = client.get("/kiosk/enrol")
        assert client.post("/kiosk/enrol", data={"code": code, "csrf_token": csrf_token(page)}).status_code == 302
        desks.append(client)
    yield site, service, app, desks
    app.extensions["live"].stop()
    service.stop()
    site.close()


def person(site, ref):
    return site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = ?", (ref,)).fetchone()[0]


def tap(site, service, desk, ref):
    """A card on desk N's reader, until the terminal has journaled the tap."""
    before = len(site.journal.records(kind="evaluation.terminal_tap"))
    sim = service.sims[f"/dev/ttyDESK{desk}"]
    sim.place(card_of(ref))
    deadline = time.monotonic() + 5
    while len(site.journal.records(kind="evaluation.terminal_tap")) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    sim.remove()
    time.sleep(0.4)  # past the reader's debounce
    return site.journal.records(kind="evaluation.terminal_tap")[-1].payload


def page(client) -> str:
    return client.get("/evaluation/").get_data(as_text=True)


def post(client, path, seat=None, **data):
    """A button on the screen as drawn now: its CSRF token and the seating it was drawn for."""
    import re

    screen = client.get("/evaluation/")
    drawn = re.search(r'name="seat" value="([^"]*)"', screen.get_data(as_text=True))
    return client.post(path, data={"csrf_token": csrf_token(screen), "seat": seat if seat is not None else
                                   (drawn.group(1) if drawn else ""), **data})


def test_members_sign_in_by_card_at_the_desk_and_nobody_else_does(room):
    site, service, _, (desk1, desk2) = room
    assert "本评标室当前没有进行中的评标" in page(desk1)  # not yet inviting a sign-in
    tap(site, service, 1, "P01")
    assert "尚未开始评标" in page(desk1)  # no evaluation yet in this room
    ev.start(site, SESSION, TEMPLATE, BIDS, by="staff1")
    assert "请在桌面读卡器上刷身份证签到" in page(desk1)

    refused = tap(site, service, 1, "P11")  # a bidder's representative
    assert (refused["outcome"], refused["person_id"]) == ("not_member", person(site, "P11"))
    assert refused["id_masked"].startswith(card_of("P11").id_number[:4]) and card_of("P11").id_number not in json.dumps(refused)
    assert "您不是本评标委员会成员" in page(desk1)
    assert tap(site, service, 1, "P01")["outcome"] == "not_inside"  # a member who has not passed the gate
    assert "请先通过评标区闸机" in page(desk1)

    for ref in MEMBERS:
        enter_evaluation_area(site, ref)
    assert tap(site, service, 1, "P01")["outcome"] == "signed_in"
    drawn_for = terminal.seat_token(site, 1)
    assert tap(site, service, 1, "P01")["outcome"] == "signed_in"  # the same card again: the same seat
    assert terminal.seat_token(site, 1) == drawn_for
    screen = page(desk1)
    assert "王**" in screen and "王评审" not in screen and card_of("P01").id_number not in screen
    assert "我已阅读项目信息" in screen and "某某路桥有限公司" in screen
    assert [r.payload["terminal"] for r in site.journal.records(kind="evaluation.signed_in")] == ["PB1-1"]

    # One terminal per member: P01 moves to desk 2, desk 1 falls idle; then P02 takes desk 2.
    tap(site, service, 2, "P01")
    assert terminal.seat(site, 1) is None and "请在桌面读卡器上刷身份证签到" in page(desk1)
    assert terminal.seat(site, 2) == (SESSION, person(site, "P01"))
    tap(site, service, 2, "P02")
    assert terminal.seat(site, 2) == (SESSION, person(site, "P02"))
    assert len(site.journal.records(kind="evaluation.signed_in")) == 2  # each member's first sign-in, once

    def read():
        return dict(site.store.reader().execute("SELECT person_id, read_confirmed IS NOT NULL FROM eval_members").fetchall())

    # A forged request (no valid CSRF token) at a seated desk does nothing.
    assert desk2.post("/evaluation/read", data={"csrf_token": "forged"}).status_code == 400
    assert read()[person(site, "P02")] == 0
    # A screen drawn for P01 at desk 2 does not act for P02, who has taken the desk since.
    assert post(desk2, "/evaluation/read", seat=f"{person(site, 'P01')}@x").status_code == 302
    assert read()[person(site, "P02")] == 0 and "这个画面属于另一次签到" in page(desk2)
    # The terminal acts for its member only: P02 confirms reading, P01 (seated nowhere) has not.
    assert post(desk2, "/evaluation/read").status_code == 302
    assert read()[person(site, "P02")] == 1 and read()[person(site, "P01")] == 0
    post(desk1, "/evaluation/read")  # nobody seated at desk 1: back to the idle screen, nothing done
    assert read()[person(site, "P01")] == 0
    # Signing out ends the seat, journaled.
    post(desk2, "/evaluation/signout")
    assert terminal.seat(site, 2) is None
    assert site.journal.records(kind="evaluation.terminal_signed_out")[-1].payload["terminal"] == "PB1-2"
    # A member who leaves the evaluation area through the gate has no terminal acting for them.
    tap(site, service, 1, "P03")
    assert terminal.seat(site, 1) == (SESSION, person(site, "P03"))
    from appliance.siteops.checkin import gate_by_id, gate_tap

    card = card_of("P03")
    assert gate_tap(site, gate_by_id(site, "G-OUT"), id_number=card.id_number, card_valid=True, card_kind=card.kind).allow
    assert terminal.seat(site, 1) is None and "请在桌面读卡器上刷身份证签到" in page(desk1)


def seat_all(site):
    """Each member seated at a terminal of their own (kiosks registered without a reader: the
    tap path itself is tested above)."""
    clients = {}
    app = create_app(site)
    for ref in MEMBERS:
        code = Kiosks(site).add(f"PB1-{ref}", "evaluation", room="PB1")
        client = app.test_client()
        client.post("/kiosk/enrol", data={"code": code, "csrf_token": csrf_token(client.get("/kiosk/enrol"))})
        enter_evaluation_area(site, ref)
        kiosk_id = site.store.reader().execute("SELECT id FROM kiosks WHERE name = ?", (f"PB1-{ref}",)).fetchone()[0]
        t = terminal.Terminal(kiosk_id, f"PB1-{ref}", "PB1", None)
        assert terminal.card_sign_in(site, t, id_number=card_of(ref).id_number, card_valid=True)["outcome"] == "signed_in"
        clients[ref] = client
    return app, clients


def test_marks_on_the_screen_keep_what_is_valid_and_say_what_is_not(room):
    site = room[0]
    ev.start(site, SESSION, TEMPLATE, BIDS, by="staff1")
    app, desks = seat_all(site)
    for ref in MEMBERS:
        post(desks[ref], "/evaluation/read")
    for ref in MEMBERS:
        post(desks[ref], "/evaluation/vote", candidate=str(person(site, "P02")))
    assert "主任" in page(desks["P02"]) and 'id="chair-badge"' in page(desks["P02"])
    assert "资格审查" in page(desks["P01"])
    # A fail without its reason is refused at submission; the marks typed are kept.
    marks = {f"m|{b}|{c}": "pass" for b in ("B1", "B2", "B3") for c in ("license", "manager", "credit")}
    resp = post(desks["P01"], "/evaluation/steps/qualification/marks", action="submit", **{**marks, "m|B3|license": "fail"})
    assert resp.status_code == 302
    screen = page(desks["P01"])
    assert "请填写理由" in screen and 'value="fail" checked' in screen
    post(desks["P01"], "/evaluation/steps/qualification/marks", action="submit", **{**marks, "m|B3|license": "fail",
                                                                                     "x|B3|license": "资质证书已过有效期"})
    assert "已提交" in page(desks["P01"])
    # The chair cannot confirm before everyone submitted; the button says so.
    assert 'id="confirm-step" disabled' in page(desks["P02"])
    for ref in ("P02", "P03", "P04", "P06"):
        post(desks[ref], "/evaluation/steps/qualification/marks", action="submit", **marks)
    post(desks["P02"], "/evaluation/steps/qualification/confirm")
    assert "符合性审查" in page(desks["P03"])
    # A score above the criterion's maximum is refused by name; the valid one next to it is kept.
    for ref in MEMBERS:
        ok = {f"m|{b}|{c}": "pass" for b in ("B1", "B2", "B3") for c in ("signature", "duration", "price_limit")}
        post(desks[ref], "/evaluation/steps/compliance/marks", action="submit", **ok)
    post(desks["P02"], "/evaluation/steps/compliance/confirm")
    post(desks["P01"], "/evaluation/steps/technical/marks", action="save", **{"m|B1|plan": "41", "m|B1|schedule": "25"})
    screen = page(desks["P01"])
    assert "B1 · plan" in screen and "评分超出该评审因素的分值范围" in screen
    kept = site.store.reader().execute("SELECT criterion, value FROM eval_marks WHERE step = 'technical'").fetchall()
    assert [tuple(r) for r in kept] == [("schedule", "25.00")]
    app.extensions["live"].stop()


def test_a_suspended_session_pauses_the_screens(room):
    site = room[0]
    ev.start(site, SESSION, TEMPLATE, BIDS, by="staff1")
    app, desks = seat_all(site)
    change_state(site, SESSION, "in_progress", by="staff1")
    change_state(site, SESSION, "suspended", by="staff1", reason="系统故障", confirmed_by="supervisor1")
    assert 'id="suspended"' in page(desks["P01"])
    post(desks["P01"], "/evaluation/read")
    assert "评标暂停" in page(desks["P01"])
    assert site.store.reader().execute("SELECT COUNT(*) FROM eval_members WHERE read_confirmed IS NOT NULL").fetchone()[0] == 0
    change_state(site, SESSION, "in_progress", by="staff1", reason="故障已排除", confirmed_by="supervisor1")
    post(desks["P01"], "/evaluation/read")
    assert site.store.reader().execute("SELECT COUNT(*) FROM eval_members WHERE read_confirmed IS NOT NULL").fetchone()[0] == 1
    app.extensions["live"].stop()


def test_a_dark_review_on_the_terminal_shows_labels_never_bidders(room):
    site = room[0]
    template = json.loads(json.dumps(TEMPLATE))
    template["steps"] = [s for s in template["steps"] if s["kind"] != "pass_fail"]
    template.pop("deviation_alert")
    for i, c in enumerate(template["steps"][0]["criteria"], start=1):
        c["chapter"] = i
    ev.start(site, SESSION, template, BIDS, by="staff1")
    chapters = {b: [hashlib.sha256(f"{b} 第{c}章".encode()).hexdigest() for c in (1, 2)] for b in ("B1", "B2", "B3")}
    darkbid.commit(site, SESSION, "technical", chapters)
    app, desks = seat_all(site)
    for ref in MEMBERS:
        post(desks[ref], "/evaluation/read")
    for ref in MEMBERS:
        post(desks[ref], "/evaluation/vote", candidate=str(person(site, "P01")))
    screen = page(desks["P03"])
    form = screen[screen.index('id="marks-form"'):screen.index("</form>", screen.index('id="marks-form"'))]
    form = re.sub(r'name="csrf_token" value="[^"]*"', "", form)  # a random token may hold "B1"
    assert "第1章-01" in form and "第2章-03" in form
    assert not any(name in form for name in ("B1", "B2", "B3", "某某建设", "某某工程", "某某路桥"))
    # Submitting with a label left blank is refused without naming the bidder behind it.
    partial = {f"d|plan|第1章-0{k}": "25" for k in (1, 2)}
    refused = post(desks["P03"], "/evaluation/steps/technical/marks", action="submit", **partial)
    refused_page = page(desks["P03"])
    assert "请先对每个投标人的每项评审因素作出评审" in refused_page
    assert not any(f"{b}/" in refused_page for b in ("B1", "B2", "B3")) and refused.status_code == 302
    for ref in MEMBERS:  # 30 points to the label each member sees first, 20 to the others
        marks = {f"d|{c}|第{n}章-0{k}": ("30" if k == 1 else "20") for c, n in (("plan", 1), ("schedule", 2)) for k in (1, 2, 3)}
        post(desks[ref], "/evaluation/steps/technical/marks", action="submit", **marks)
    post(desks["P01"], "/evaluation/steps/technical/confirm")
    revealed = site.journal.records(kind="evaluation.dark_revealed")[-1].payload  # revealed on the chair's confirmation
    orders = darkbid.verify(site.journal.records(kind="evaluation.dark_committed")[-1].payload, revealed)
    thirty = site.store.reader().execute("SELECT person_id, bidder, criterion FROM eval_marks WHERE value = '30.00'").fetchall()
    chapter_of = {"plan": "1", "schedule": "2"}
    assert {tuple(r) for r in thirty} == {(p, orders[str(p)][chapter_of[c]][0], c) for p in map(lambda r: person(site, r), MEMBERS)
                                          for c in chapter_of}
    app.extensions["live"].stop()


def test_staff_start_the_evaluation_and_supervisors_approve_reopening(room):
    site, _, app, _ = room
    staff, supervisor = app.test_client(), app.test_client()
    for client, role in ((staff, "staff"), (supervisor, "supervisor")):
        client.post("/login", data={"username": f"{role}1", "password": PASSWORDS[role], "csrf_token": csrf_token(client.get("/login"))})
    detail = staff.get(f"/committee/{SESSION}").get_data(as_text=True)
    assert "需要先有开标记录" in detail and 'id="start-evaluation"' not in detail  # no signed-off opening yet
    from appliance.evaluation import opening

    opening.open_bids(site, "S-0922-01", [{"bidder": b["bidder"], "price": b["price"]} for b in BIDS], by="staff1")
    for b in BIDS:
        opening.confirm(site, "S-0922-01", b["bidder"], agrees=True, by="代表")
    opening.sign_off(site, "S-0922-01", supervisor="supervisor1")
    detail = staff.get(f"/committee/{SESSION}").get_data(as_text=True)
    assert "尚无评标办法模板" in detail  # the center has sent none yet
    ev.load_template(site, json.loads(json.dumps(TEMPLATE)), by="staff1")
    detail = staff.get(f"/committee/{SESSION}").get_data(as_text=True)
    assert TEMPLATE["name"] in detail
    assert supervisor.get(f"/committee/{SESSION}").status_code == 200
    assert 'id="start-evaluation"' not in supervisor.get(f"/committee/{SESSION}").get_data(as_text=True)
    staff.post(f"/committee/{SESSION}/start", data={"template": TEMPLATE["id"], "csrf_token": csrf_token(staff.get("/committee/"))})
    assert site.store.reader().execute("SELECT state FROM evaluations WHERE session = ?", (SESSION,)).fetchone()[0] == "signing_in"
    started = site.journal.records(kind="evaluation.started")[-1].payload
    assert [b["price"] for b in started["bids"]] == [b["price"] for b in BIDS] and started["by"] == "staff1"
    # A reopening request waits for a supervisor: staff see it, only a supervisor approves it.
    ids = {ref: person(site, ref) for ref in MEMBERS}
    for p in ids.values():
        ev.sign_in(site, SESSION, p)
        ev.confirm_read(site, SESSION, p)
    for p in ids.values():
        ev.vote(site, SESSION, p, ids["P01"])
    for p in ids.values():
        for b in ("B1", "B2", "B3"):
            for c in ("license", "manager", "credit"):
                ev.mark(site, SESSION, p, "qualification", b, c, "pass")
        ev.submit_step(site, SESSION, p, "qualification")
    ev.confirm_step(site, SESSION, ids["P01"], "qualification")
    request = ev.request_reopen(site, SESSION, ids["P01"], "qualification", "B2 信用记录需复核")
    assert "等待监督人员批准" in staff.get(f"/committee/{SESSION}").get_data(as_text=True)
    token = csrf_token(staff.get("/committee/"))
    assert staff.post(f"/committee/reopens/{request}/approve", data={"csrf_token": token}).status_code == 403
    supervisor.post(f"/committee/reopens/{request}/approve", data={"csrf_token": csrf_token(supervisor.get("/committee/"))})
    approved = site.journal.records(kind="evaluation.reopen_approved")[-1].payload
    assert (approved["supervisor"], approved["step"]) == ("supervisor1", "qualification")
    assert PLAN["people"][0]["name"] not in supervisor.get(f"/committee/{SESSION}").get_data(as_text=True)  # names masked


def test_admins_register_a_terminal_for_a_room_with_its_desk_reader(room):
    site, _, app, _ = room
    admin = app.test_client()
    admin.post("/login", data={"username": "admin1", "password": PASSWORDS["admin"], "csrf_token": csrf_token(admin.get("/login"))})
    token = csrf_token(admin.get("/console/admin/kiosks"))
    taken = admin.post("/console/admin/kiosks", data={"name": "PB1-9", "purpose": "evaluation", "reader": "pb1-desk-1",
                                                      "room": "PB1", "csrf_token": token}).get_data(as_text=True)
    assert "already belongs to another kiosk" in taken  # one reader, one kiosk
    page = admin.post("/console/admin/kiosks", data={"name": "PB1-9", "purpose": "evaluation", "reader": "", "room": "PB1",
                                                     "csrf_token": token}).get_data(as_text=True)
    assert 'id="enrolment-code"' in page
    row = site.store.reader().execute("SELECT purpose, reader, room FROM kiosks WHERE name = 'PB1-9'").fetchone()
    assert tuple(row) == ("evaluation", None, "PB1")
    assert site.journal.records(kind="kiosk.registered")[-1].payload["room"] == "PB1"


def test_every_refusal_of_a_tap_has_its_screen_words(app):
    from kiosk_ui.evaluation import tap_texts

    with app.test_request_context():
        assert set(tap_texts()) == {"signed_in", *terminal.REFUSALS}
