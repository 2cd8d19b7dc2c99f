"""A venue's working day in Debian's chromium against `appliance run` with simulated devices on
pseudo-terminals: what newcomers at the console, the gate kiosk and the review room met, each
checked as they would notice it (issue 14)."""

from __future__ import annotations

import time

import pytest

from appliance.site import open_site
from appliance.siteops.alarms import raise_alarm
from tests.browser import chromium, log_in
from tests.tcprelay import Relay
from tests.test_runtime import PASSWORD, add_user
from tests.venue import build_venue, card_of, served


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    venue = build_venue(tmp_path_factory.mktemp("day"))
    for name, role in (("staff1", "staff"), ("super1", "supervisor"), ("admin1", "admin")):
        add_user(venue.data, name, role)
    with open_site(venue.data) as site:  # P01 signed at the kiosk earlier today: the gate lets them through
        person = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P01'").fetchone()[0]
        with site.store.transaction() as conn:
            conn.execute("INSERT INTO checkins (session, person_id, commitment_signed, locker) VALUES "
                         "('S-0922-02', ?, '2026-01-01T00:00:00.000000Z', 'bank-a/1')", (person,))
    with served(venue) as base:
        yield venue, base


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    errors: list[str] = []
    context.on("weberror", lambda e: errors.append(str(e.error)))
    yield context
    context.close()
    assert errors == [], errors


def staff_page(context, base, who="staff1"):
    """Logged in, in Chinese (an earlier test may have left the account in English)."""
    page = context.new_page()
    log_in(page, base, who, PASSWORD)
    page.wait_for_url(base + "/**")
    if page.evaluate("document.documentElement.lang") != "zh-CN":
        page.click("header form.lang button[value=zh_Hans_CN]")
        page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    return page


def tap(venue, ref):
    venue.reader.place(card_of(ref))
    time.sleep(0.3)
    venue.reader.remove()
    time.sleep(1.1)  # past the reader's debounce


def test_the_gates_page_follows_the_gate_live(venue, context):
    """Item 2: decisions, the people inside and a new alarm to acknowledge appear without a reload."""
    venue_, base = venue
    page = staff_page(context, base)
    page.goto(base + "/console/gates")
    page.wait_for_selector("footer.live.online")
    page.evaluate("window.__loadedOnce = true")  # gone if the page reloads
    rows = page.locator("#recent-decisions tbody tr[data-seq]").count()
    tap(venue_, "P11")  # a bidder at the evaluation gate: refused
    page.wait_for_function(f"() => document.querySelectorAll('#recent-decisions tbody tr[data-seq]').length > {rows}",
                           timeout=8000)
    tap(venue_, "P01")  # an expert who signed earlier: in
    page.wait_for_function("() => document.querySelector('#inside-area tbody').textContent.includes('王')", timeout=8000)
    with open_site(venue_.data) as site, site.store.transaction() as conn:
        raise_alarm(site, conn, "gate_fault", seq=None, session="S-0922-02", detail={"gate": "G-IN"})
    page.wait_for_selector("#alarm-ack:not([hidden]) form", timeout=8000)
    form = page.locator("#alarm-ack form").first
    form.locator("input[name=note]").fill("已现场检查闸机")
    form.locator("button").click()
    page.wait_for_load_state()
    assert page.locator("#alarm-ack form").count() == 0
    assert page.evaluate("window.__loadedOnce === undefined")  # the acknowledgement itself reloads: fine


@pytest.fixture(scope="module")
def kiosk(venue, browser):
    venue_, base = venue
    page = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN").new_page()
    page.goto(base + "/kiosk/enrol")
    page.fill("input[name=code]", venue_.kiosk_code)
    page.click("#enrol-submit")
    page.wait_for_url(base + "/kiosk/")
    page.wait_for_selector("footer.live.online")
    yield page
    page.context.close()


def kiosk_state(kiosk, state: str, timeout: int = 8000) -> None:
    kiosk.wait_for_function(f"() => (document.getElementById('kiosk-state') || {{}}).dataset?.state === '{state}'",
                            timeout=timeout)


def test_the_kiosk_leaves_a_checkin_for_the_latest_tap_and_times_out_clearly(venue, kiosk):
    """Item 3: a check-in screen gives way to the next tap at its gate (a refusal is shown), and
    one left unfinished ends on a clear "timed out" screen."""
    venue_, base = venue
    tap(venue_, "P02")  # an expert's first entry: the commitment screen
    kiosk.wait_for_url("**/kiosk/checkin/*", timeout=8000)
    tap(venue_, "P12")  # then someone not on today's list for the area, at the same gate
    kiosk.wait_for_url(base + "/kiosk/", timeout=8000)
    kiosk_state(kiosk, "denied")
    assert kiosk.locator("#kiosk-message").inner_text() == "您不在本区域今日名单中"
    # The expert taps again and walks away from the screen.
    time.sleep(8.5)  # the refusal's screen returns to idle
    tap(venue_, "P02")
    kiosk.wait_for_url("**/kiosk/checkin/*", timeout=8000)
    kiosk.evaluate("document.querySelector('.checkin').setAttribute('data-idle-after', '2');"
                   "document.dispatchEvent(new Event('pointerdown'))")  # 90 s shortened to 2
    kiosk.wait_for_url(base + "/kiosk/", timeout=8000)
    kiosk_state(kiosk, "timeout")
    assert "超时" in kiosk.locator("#kiosk-message").inner_text()


def test_a_refusal_at_the_kiosk_says_whose_it_is_and_what_to_do_next(venue, kiosk):
    """Item 10: a refusal names the person (masked) and the next step, not the locker line; a
    language chosen at the public kiosk goes back to Chinese when the person is done; with the
    appliance out of reach the screen says 暂停使用 over everything; the signature pad and its
    button show without scrolling at 1280x800."""
    venue_, base = venue
    kiosk.goto(base + "/kiosk/")
    kiosk_state(kiosk, "idle", timeout=12000)
    with open_site(venue_.data) as site:
        p12 = site.store.reader().execute("SELECT p.name_masked FROM people p JOIN person_refs r ON r.person_id = p.id "
                                          "WHERE r.ref = 'P12'").fetchone()[0]
    tap(venue_, "P12")  # not on today's list for the evaluation area
    kiosk.wait_for_function("() => document.getElementById('kiosk-message').textContent === '您不在本区域今日名单中'")
    assert p12 and p12 in kiosk.locator("#kiosk-person").inner_text()
    assert "请联系工作人员" in kiosk.locator("#kiosk-sub").inner_text()
    assert "存储柜" not in kiosk.locator("#kiosk-state").inner_text()
    # A visitor reads English; the next person finds Chinese again.
    kiosk.click("header form.lang button[value=en]")
    kiosk.wait_for_function("() => document.documentElement.lang === 'en'")
    kiosk_state(kiosk, "idle")
    tap(venue_, "P13")  # agency staff at the evaluation gate
    kiosk.wait_for_function("() => document.getElementById('kiosk-message').textContent.includes('may not enter')")
    assert "may not enter" in kiosk.locator("#kiosk-message").inner_text()
    assert "agency staff" in kiosk.locator("#kiosk-person").inner_text()
    assert "public hall" in kiosk.locator("#kiosk-sub").inner_text()
    kiosk.wait_for_function("() => document.documentElement.lang === 'zh-CN'", timeout=15000)
    kiosk_state(kiosk, "idle")
    assert kiosk.locator("#kiosk-message").inner_text() == "请将身份证放在阅读器上"
    # The kiosk's cable to the appliance is pulled: the whole screen says it is out of service;
    # plugged back, the gate screen returns by itself.
    relay = Relay(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    cut_off = kiosk.context.new_page()  # the same kiosk (its cookie), through the cable
    try:
        cut_off.goto(f"http://127.0.0.1:{relay.port}/kiosk/")
        cut_off.wait_for_selector("footer.live.online")
        relay.cut()
        cut_off.wait_for_selector("#kiosk-paused", state="visible", timeout=15000)
        assert "暂停使用" in cut_off.locator("#kiosk-paused").inner_text()
        assert cut_off.evaluate("(() => { const r = document.getElementById('kiosk-paused').getBoundingClientRect();"
                                " return r.width >= innerWidth && r.height >= innerHeight; })()")
        relay.restore()
        cut_off.wait_for_selector("#kiosk-paused", state="hidden", timeout=15000)
    finally:
        relay.close()
        cut_off.close()
    # An expert's first entry at 1280x800: the pad and "sign" are on screen as it opens.
    tap(venue_, "P02")
    kiosk.wait_for_url("**/kiosk/checkin/*", timeout=8000)
    for selector in ("#signature-pad", "#checkin-submit"):
        box = kiosk.locator(selector).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 800, (selector, box)
    assert kiosk.evaluate("window.scrollY") == 0
    kiosk.evaluate("document.querySelector('.checkin').setAttribute('data-idle-after', '1');"
                   "document.dispatchEvent(new Event('pointerdown'))")  # nobody signs: it times out
    kiosk.wait_for_url(base + "/kiosk/", timeout=8000)


def test_a_committee_short_of_members_says_why_and_offers_the_replacement_draw(venue, context):
    """Item 4: after a no-show and a recusal three of five can sit: the console says so, with
    the law's rule, and files the replacement draw."""
    from appliance.siteops.noshow import flag_no_show

    venue_, base = venue
    with open_site(venue_.data) as site:
        p03, p04 = (site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = ?", (r,)).fetchone()[0]
                    for r in ("P03", "P04"))
        with site.store.transaction() as conn:
            flag_no_show(site, conn, "S-0922-02", p03, by="appliance")
            conn.execute("INSERT INTO checkins (session, person_id, conflict_declared) VALUES ('S-0922-02', ?, 1)", (p04,))
    page = staff_page(context, base)
    page.goto(base + "/committee/S-0922-02")
    problem = page.locator("#seating-problem").inner_text()
    assert "现可到会成员 3 人，须 5 人" in problem and "五人以上单数" in problem
    assert "已申报回避" in page.locator("#seating").inner_text()
    page.click(f"#request-replacement-{p03}")
    page.wait_for_load_state()
    assert "已申请补抽" in page.locator(".flash").inner_text()
    assert page.locator(f"#request-replacement-{p03}").count() == 0


def test_a_bidder_call_plays_where_bidders_wait_and_the_history_says_where(venue, context):
    """Item 5: a call for a bidder's representative plays in the hall and the clarification
    room's corridor, not the evaluation area; staff announce free text to chosen zones; the
    day's calls list where each played."""
    venue_, base = venue
    page = staff_page(context, base)
    page.goto(base + "/console/calls")
    page.wait_for_selector("footer.live.online")
    form = page.locator("#call-bidder form").first
    form.locator("select[name=room]").select_option("DY1")
    form.locator("button").click()
    page.wait_for_load_state()
    flash = page.locator(".flash").inner_text()
    assert "代表到答疑室" in flash and "公共区、答疑室走廊" in flash and "评标区" not in flash
    row = page.locator("#call-history tr.call").first
    page.wait_for_function("() => (document.querySelector('#call-history tr.call') || {classList: {contains: () => false}})"
                           ".classList.contains('state-running')", timeout=20000)  # played: the history follows live
    assert row.locator("td").nth(3).inner_text() == "公共区广播、答疑室走廊广播"
    page.fill("#announce-form textarea[name=text]", "请评标专家注意：十一点三十分午餐。")
    for box in page.locator("#announce-form input[name=zones]").all():
        box.set_checked(box.get_attribute("value") == "evaluation")
    page.click("#announce-submit")
    page.wait_for_load_state()
    page.wait_for_function("() => ((document.querySelector('#call-history tr.call td:nth-child(4)') || {}).textContent || '')"
                           ".includes('评标区广播')", timeout=20000)
    assert "午餐" in page.locator("#call-history tr.call").first.inner_text()


RAW = ("G-IN", "G-OUT", "gate-1-reader", "bank-a", "person_id", "outcome=", "commitment_missing", "not_on_roster",
       "S-0922-02", "B1", "B2")


def test_people_places_and_events_by_name(venue, context):
    """Item 6: gate rows with the person's masked name and role and the gate's name; devices by
    their display names; the session's timeline as sentences — no codes anywhere."""
    venue_, base = venue
    tap(venue_, "P01")
    page = staff_page(context, base)
    page.goto(base + "/console/gates")
    decisions = page.locator("#recent-decisions").inner_text()
    assert "评标区入口" in decisions and "王" in decisions and "评标专家" in decisions
    page.goto(base + "/console/")
    devices = page.locator("table.devices").inner_text()
    assert "1号闸机入口读卡器" in devices and "A组储物柜" in devices
    supervisor = context.browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    review = staff_page(supervisor, base, "super1")
    review.goto(base + "/review/sessions/S-0922-02")
    timeline = review.locator("#timeline").inner_text()
    assert "· 评标专家 在评标区入口：" in timeline, timeline
    supervisor.close()
    for text in (decisions, devices, timeline):
        assert not [raw for raw in RAW if raw in text], (text, [raw for raw in RAW if raw in text])


def test_the_supervisors_landing_page_is_what_they_act_on(venue, browser):
    """Item 7: today's sessions with their state, open alarms, the journal's integrity and the
    events that need review, as sentences; the raw journal one click away."""
    venue_, base = venue
    with open_site(venue_.data) as site, site.store.transaction() as conn:
        raise_alarm(site, conn, "locker_door_left_open", seq=None, session="S-0922-02", detail={"bank": "bank-a", "lock": 3})
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    log_in(page, base, "super1", PASSWORD)
    page.wait_for_url(base + "/review/")
    sessions = page.locator("#today-sessions").inner_text()
    assert "入场中" in sessions and "第一评标室" in sessions
    assert page.locator("#today-sessions tr.session-row").count() == 2
    assert "存储柜门未关闭" in page.locator("#needs-review").inner_text()
    assert "存储柜门未关闭" in page.locator("#alarms").inner_text()
    assert "尚未校验" in page.locator("#last-check").inner_text()
    main = page.locator("main").inner_text()
    assert "{" not in main and "payload" not in main and "gate.decision" not in main
    page.click("#verify")
    page.wait_for_selector("#verify-result")
    assert "完好" in page.locator("#last-check").inner_text()
    page.click("#raw-journal")
    page.wait_for_url(base + "/review/journal")
    assert "journal.verified" in page.locator("table.journal").inner_text()  # the auditors' view keeps the codes
    context.close()


ENGLISH_WORDS = ("readers", "gates,", "locker banks", "cameras recording", "records acknowledged", "pending", "uncovered",
                 "head covered", "serving on", "simulated")


def test_no_untranslated_words_and_the_web_service_is_running(venue, context):
    """Items 8 and 9: the dashboard's service details in Chinese, the web service "running" while
    it serves the page (not "not responding"); registers' values and errors in words, the
    register's button 登记."""
    venue_, base = venue
    page = staff_page(context, base)
    time.sleep(3)  # well past the heartbeat's grace (0.5 s × 3 in these tests)
    page.goto(base + "/console/")
    services = page.locator("#services").inner_text()
    web_row = page.locator("#services tr", has_text="网页").inner_text()
    assert "运行中" in web_row and "无响应" not in services, services
    assert "读卡器 1 台、闸机 1 台、储物柜 1 组（模拟）" in services or "读卡器 1 台、闸机 1 台、储物柜 1 组" in services, services
    assert not [w for w in ENGLISH_WORDS if w in services], services
    page.goto(base + "/console/registers/incident")
    assert page.locator("select[name=severity] option").all_inner_texts() == ["低", "中", "高"]
    assert page.locator("#register-submit").inner_text() == "登记"
    page.click("#register-submit")
    assert page.locator("#register-error").inner_text() == "说明：请填写。"
    page.goto(base + "/console/registers/materials")
    assert page.locator("select[name=direction] option").all_inner_texts() == ["带入评标区", "带出评标区"]


def test_the_navigation_stays_on_one_line_at_1280(venue, browser):
    """Item 8: the navigation of staff, supervisors and administrators is one line at 1280 px, in
    Chinese and in English."""
    venue_, base = venue
    for who in ("admin1", "staff1", "super1"):
        for lang in ("zh_Hans_CN", "en"):
            context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
            page = context.new_page()
            log_in(page, base, who, PASSWORD)
            page.wait_for_url(base + "/**")
            if lang == "en":
                page.click("button[value=en]")
                page.wait_for_load_state()
            tops = {round(box["y"]) for box in (a.bounding_box() for a in page.locator("header.top > nav a").all())}
            overflow = page.evaluate("(() => { const n = document.querySelector('header.top > nav'); return n.scrollWidth > n.clientWidth; })()")
            assert len(tops) == 1 and not overflow, (who, lang, tops, overflow)
            context.close()


def test_the_check_in_roster_shows_who_is_where_live(venue, context):
    """Item 12: a session's roster: who has arrived, signed, is inside, has left, who is missing;
    a tap at the gate shows without a reload."""
    venue_, base = venue
    page = staff_page(context, base)
    page.goto(base + "/console/sessions")
    page.locator("#session-S-0922-02 a.roster-link").click()
    page.wait_for_selector("#roster")
    page.wait_for_selector("footer.live.online")
    page.evaluate("window.__loadedOnce = true")
    with open_site(venue_.data) as site:
        masked = dict(site.store.reader().execute(
            "SELECT r.ref, p.name_masked FROM person_refs r JOIN people p ON p.id = r.person_id WHERE r.ref IN ('P08', 'P09')"))

    def status(ref):
        return page.locator("#roster tbody tr", has_text=masked[ref]).first.locator("td.status").inner_text()

    assert status("P09") == "未到"  # the technician has not come
    assert status("P08") == "未到"
    assert "评标委员会" in page.locator("#roster-counts").inner_text()
    tap(venue_, "P08")  # the witness arrives at the evaluation gate
    page.wait_for_function(f"() => [...document.querySelectorAll('#roster tbody tr')].some(tr => "
                           f"tr.textContent.includes('{masked['P08']}') && tr.querySelector('td.status').textContent === '在评标区内')",
                           timeout=10000)
    row = page.locator("#roster tbody tr", has_text=masked["P08"]).first
    assert row.locator("td").nth(3).inner_text().count(":") == 1  # the arrival time, HH:MM
    assert page.evaluate("window.__loadedOnce === true")  # no reload


def test_a_register_prints_and_exports_as_filed(venue, context):
    """Item 13: a register printed (PDF) and exported (.xlsx) with the venue, the title and the entries."""
    import io

    from openpyxl import load_workbook

    venue_, base = venue
    page = staff_page(context, base)
    page.goto(base + "/console/registers/patrol")
    page.fill("#register-form [name=area]", "第一评标室")
    page.fill("#register-form [name=finding]", "秩序正常，门禁完好")
    page.click("#register-form button[type=submit]")
    page.wait_for_load_state()
    with page.expect_download() as download:
        page.click("#register-xlsx")
    book = load_workbook(io.BytesIO(open(download.value.path(), "rb").read()))
    cells = [str(c.value) for row in book.active.iter_rows() for c in row if c.value is not None]
    assert "巡场台账" in cells and "秩序正常，门禁完好" in cells and "staff1" in cells
    with open_site(venue_.data) as site:
        assert site.config.site.name in cells
    with page.context.expect_page() as printed:
        page.click("#register-pdf")
    pdf = page.request.get(printed.value.url).body()
    assert pdf.startswith(b"%PDF") and b"/Type /Page" in pdf


def test_the_alarm_history_keeps_who_handled_each_alarm(venue, context):
    """Item 14: an acknowledged alarm stays visible with who, when and the note; filter by kind and day."""
    venue_, base = venue
    with open_site(venue_.data) as site, site.store.transaction() as conn:
        raise_alarm(site, conn, "locker_door_left_open", seq=None, session="S-0922-02", detail={"bank": "bank-a", "lock": 3})
    page = staff_page(context, base)
    page.goto(base + "/console/gates")
    form = page.locator("#alarm-ack form").first
    form.locator("input[name=note]").fill("柜门已关好")
    form.locator("button").click()
    page.wait_for_load_state()
    page.goto(base + "/console/alarms")
    handled = page.locator("#alarm-history tr.alarm.handled", has_text="柜门已关好")
    assert handled.count() == 1 and "staff1" in handled.inner_text() and "存储柜门未关闭" in handled.inner_text()
    page.select_option("#alarm-filter select[name=kind]", "camera_offline")
    page.click("#alarm-filter-submit")
    page.wait_for_load_state()
    assert page.locator("#alarm-history tr.alarm").count() == 0
    page.fill("#alarm-filter input[name=day]", "2020-01-01")
    page.select_option("#alarm-filter select[name=kind]", "")
    page.click("#alarm-filter-submit")
    page.wait_for_load_state()
    assert "当日无告警" in page.locator("#alarm-history").inner_text()
    # A supervisor sees the same history.
    other = context.browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    try:
        sup = staff_page(other, base, who="super1")
        sup.click("nav a[href='/console/alarms']")
        sup.wait_for_selector("#alarm-history")
        assert sup.locator("#alarm-history tr.alarm.handled", has_text="柜门已关好").count() == 1
    finally:
        other.close()


def test_a_confirmed_fee_sheet_is_locked_and_prints(venue, context):
    """Item 13: the fee sheet confirmed once, then locked (no card form, no second
    confirmation), printed and exported as confirmed. Last: it ends the evaluation session."""
    import io

    from openpyxl import load_workbook

    from appliance.siteops.fees import fee_sheet, set_bank_card
    from appliance.siteops.sessions import change_state

    venue_, base = venue
    from tests.test_fees import CARD  # fictitious, with a valid check digit

    with open_site(venue_.data) as site:
        for to in ("in_progress", "completed"):
            change_state(site, "S-0922-02", to, by="test")
        for line in fee_sheet(site, "S-0922-02")["lines"]:
            if line["fee_fen"]:
                set_bank_card(site, line["person_id"], CARD, by="test")
    page = staff_page(context, base)
    page.goto(base + "/console/fees/S-0922-02")
    page.click("#finalize-fees")
    page.wait_for_load_state()
    assert "已锁定" in page.locator("#fees-finalized").inner_text()
    assert page.locator("#finalize-fees").count() == 0 and page.locator("form[action*='/card/']").count() == 0
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    again = page.request.post(base + "/console/fees/S-0922-02/finalize", form={"csrf_token": token})
    assert "不能重复确认" in again.text()
    with open_site(venue_.data) as site:
        assert len([r for r in site.journal.records(kind="fees.sheet") if r.payload["session"] == "S-0922-02"]) == 1
    with page.expect_download() as download:
        page.click("#fees-xlsx")
    cells = [str(c.value) for row in load_workbook(io.BytesIO(open(download.value.path(), "rb").read())).active.iter_rows()
             for c in row if c.value is not None]
    assert "评标专家劳务费发放表" in cells and any(c.startswith("已由 staff1 于") for c in cells)
    pdf = page.request.get(base + "/console/fees/S-0922-02/export.pdf").body()
    assert pdf.startswith(b"%PDF")
