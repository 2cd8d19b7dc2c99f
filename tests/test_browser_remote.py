"""A whole remote evaluation (远程异地评标, issue #16) in Debian's chromium: two venues, each
`appliance run` as a real process with its own data folder, devices and port, and the
provincial center on PostgreSQL between them; the secondary venue's link to the center through
a proxy that can be cut. Three members sit at the main venue and two at the secondary venue,
each signing in by a card tapped on a desk reader (SAM simulators on pseudo-terminals). The
chair's vote across venues; the steps; the link cut in the middle of a step with an action made
during the cut; a reopening approved by the main venue's supervisor; the results; every member's
signature; each venue's supervisor signing for their venue's part; the report issued. Then
every journal verifies, and the remote session's evidence package (every venue's records and
keys) verifies offline and fails when one byte changes."""

import json
import re
from datetime import datetime, timezone

import pytest
import requests

from appliance.accounts import Accounts
from appliance.evaluation import committee
from appliance.evidence_remote import verify_remote
from appliance.site import open_site
from appliance.siteops.sessions import change_state
from appliance.verify import verify_journal
from center.api import center_server
from center.core import Center
from center.accounts import CenterStaff
from cli.linkproxy import LinkProxy
from cli.remote_demo import MAIN, NAMES, SECONDARY, SESSION, TEMPLATE, plans
from sync.agent import Agent, enroll
from tests.browser import chromium, draw_signature, log_in
from tests.helpers import free_port
from tests.pg import new_center_dir
from tests.test_browser_evaluation import settle
from tests.test_center_hardening import STAFF, staff_login
from tests.test_runtime import PASSWORD
from tests.venue import add_kiosks, build_venue, card_of, enter_evaluation_area, served

SEATS = {MAIN: ("P01", "P02", "P03"), SECONDARY: ("P04", "P06")}
MASKED = {"P01": "王**", "P02": "李**", "P03": "赵**", "P04": "钱**", "P06": "周**"}
BIDS = [{"bidder": "B1", "price": "1000000"}, {"bidder": "B2", "price": "900000"}, {"bidder": "B3", "price": "950000"}]
SCORES = {"B1|plan": "36", "B1|schedule": "25", "B2|plan": "32", "B2|schedule": "27", "B3|plan": "30", "B3|schedule": "24"}


@pytest.fixture
def province(tmp_path):
    """The center (its own HTTP server, threads enough for two venues' long polls) and two
    venues enrolled with it, the day's remote evaluation published to both through its feed."""
    c = Center(new_center_dir(tmp_path / "center"))
    port = free_port()
    server = center_server(c, "127.0.0.1", port, threads=12)
    server.start()
    link = LinkProxy(("127.0.0.1", port)).start()  # the secondary venue's line to the center
    venues = {MAIN: build_venue(tmp_path / "main", MAIN, desks=3, plan=False),
              SECONDARY: build_venue(tmp_path / "second", SECONDARY, desks=2, plan=False)}
    try:
        for site_id, venue in venues.items():
            with open_site(venue.data) as site:
                enroll(site, link.url if site_id == SECONDARY else f"http://127.0.0.1:{port}", c.add_site(site_id))
        for site_id, plan in plans(datetime.now(timezone.utc)).items():
            c.add_item(site_id, "day_plan", plan)  # the center writes in each venue's key
            with open_site(venues[site_id].data) as site:
                Agent(site).sync_once()
                change_state(site, SESSION, "admitting", by="staff1")
                add_kiosks(site, venues[site_id])
                for name, role in (("staff1", "staff"), ("supervisor1", "supervisor")):
                    Accounts(site).add(name, role, PASSWORD)
                for ref in SEATS[site_id]:  # through the gate (commitment, locker) before sitting down
                    enter_evaluation_area(site, ref)
                if site_id == MAIN:
                    enter_evaluation_area(site, "P04")  # inside the main venue's area, but seated elsewhere
                    committee.start(site, SESSION, json.loads(TEMPLATE.read_text(encoding="utf-8")), BIDS, by="staff1")
        yield c, venues, link, f"http://127.0.0.1:{port}"
    finally:
        link.stop()
        server.stop()
        c.db.close()


def journal(page, base, kind):
    return [r["payload"] for r in page.request.get(f"{base}/api/v1/journal?kind={kind}&limit=500").json()["records"]]


def visit(page, url):
    """Open ``url`` (a committee page reloads itself a second after the venue's state changes:
    a navigation it interrupts is made again)."""
    for _ in range(10):
        try:
            page.goto(url)
            return page
        except Exception:  # noqa: BLE001 - "interrupted by another navigation"
            page.wait_for_timeout(200)
    page.goto(url)
    return page


def sign_for_venue(page, url):
    """A supervisor signs for the venue's part: typing the remark first holds the page still.
    Returns what the page answered (its message, read from the page the answer loads: the
    committee page may reload itself a moment later, and a message is shown once)."""
    visit(page, url)
    page.fill("#venue-remark", "本场地评标过程在监督下进行，无异常")
    with page.expect_response(lambda r: r.request.method == "GET" and r.url == url) as answer:
        page.click("#venue-sign")
    found = re.search(r'<div class="flash">(.*?)</div>', answer.value.text(), re.S)
    assert found, "the answer carries no message"
    return re.sub(r"<[^>]+>", "", found.group(1))


def submit(page, *, all_pass=False, scores=None):
    settle(page)
    page.wait_for_selector("#submit-step")
    if all_pass:
        page.click("#all-pass")
    for name, value in (scores or {}).items():
        page.fill(f"input[name='m|{name}']", value)
    page.click("#submit-step")
    page.wait_for_load_state()


def test_a_remote_evaluation_across_two_venues_in_the_browser(province, tmp_path):
    c, venues, link, center_url = province
    with served(venues[MAIN]) as main_base, served(venues[SECONDARY]) as second_base, chromium() as browser:
        base = {MAIN: main_base, SECONDARY: second_base}

        def new_page():
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            context.set_default_timeout(30000)
            return context.new_page()

        supervisors = {site_id: new_page() for site_id in base}
        for site_id, page in supervisors.items():
            log_in(page, base[site_id], "supervisor1", PASSWORD)

        # Each member taps the ID card on a desk reader of the venue the plan seats them at.
        desks = {}
        for site_id, refs in SEATS.items():
            venue = venues[site_id]
            for i, ref in enumerate(refs):
                page = new_page()
                page.goto(base[site_id] + "/kiosk/enrol")
                page.fill("input[name=code]", venue.desk_codes[i])
                page.click("#enrol-submit")
                page.wait_for_url(base[site_id] + "/evaluation/")
                page.wait_for_selector("#terminal-instruction:has-text('请在桌面读卡器上刷身份证签到')")
                if (site_id, i) == (MAIN, 0):  # a member seated at the other venue is sent there
                    venue.desks[i].place(card_of("P04"))
                    page.wait_for_selector("#tap-message:not([hidden])")
                    venue.desks[i].remove()
                    assert "计划安排您在其他场地评标" in page.locator("#tap-message").inner_text()
                venue.desks[i].place(card_of(ref))
                page.wait_for_selector("#member-name")
                venue.desks[i].remove()
                assert page.locator("#member-name").inner_text() == MASKED[ref]
                desks[ref] = page
        for page in desks.values():
            settle(page).click("#confirm-read")

        # The chair: every member votes for P01, at both venues.
        for ref, page in desks.items():
            page.wait_for_selector("#vote h2:has-text('第 1 轮')")
            settle(page)
            page.check(f"#vote label.choice:has-text('{MASKED['P01']}') input")
            page.click("#vote-submit")
        chair = desks["P01"]
        chair.wait_for_selector("#chair-badge")
        for page in desks.values():  # every screen, at both venues, names each member's venue
            page.wait_for_selector("#stage:has-text('资格审查')")
        assert NAMES[SECONDARY] in desks["P04"].locator("#committee").inner_text()

        # Qualification: everyone passes every item; the chair confirms.
        for page in desks.values():
            submit(page, all_pass=True)
            page.wait_for_selector("#step-submitted")
        chair.wait_for_selector("#confirm-step:not([disabled])")
        settle(chair).click("#confirm-step")

        # Compliance: the main venue's members submit, then the secondary venue's link is cut.
        for ref in SEATS[MAIN]:
            desks[ref].wait_for_selector("#stage:has-text('符合性审查')")
            submit(desks[ref], all_pass=True)
            desks[ref].wait_for_selector("#step-submitted")
        desks["P04"].wait_for_selector("#stage:has-text('符合性审查')")
        settle(desks["P04"])
        link.cut()
        for page in desks.values():  # every screen at both venues says the committee is paused
            page.wait_for_selector("#committee-paused", timeout=10000)
        assert NAMES[SECONDARY] in chair.locator("#committee-paused").inner_text()
        # P04 submits during the cut: held at the secondary venue, shown as not yet delivered.
        p04 = desks["P04"]
        p04.click("#all-pass")
        p04.click("#submit-step")
        p04.wait_for_selector("#pending-actions:has-text('尚未送达')")
        assert p04.locator("#marks-form input[value=pass]:checked").count() == 9  # what P04 marked, still shown
        link.restore()
        for page in desks.values():  # the committee resumes where it was; the held action arrives once
            page.wait_for_selector("#committee-paused", state="detached", timeout=20000)
        p04.wait_for_selector("#step-submitted")
        submit(desks["P06"], all_pass=True)
        desks["P06"].wait_for_selector("#step-submitted")
        chair.wait_for_selector("#confirm-step:not([disabled])")
        settle(chair).click("#confirm-step")

        # Technical scores from every member.
        for page in desks.values():
            page.wait_for_selector("#stage:has-text('技术标评审')")
            submit(page, scores=SCORES)
            page.wait_for_selector("#step-submitted")
        chair.wait_for_selector("#confirm-step:not([disabled])")
        settle(chair).click("#confirm-step")

        # The chair asks to reopen the technical step; the main venue's supervisor approves;
        # every member, at both venues, submits it again with their marks kept.
        chair.wait_for_selector("#stage:has-text('价格评审')")
        settle(chair)
        chair.select_option("#reopen-step", "technical")
        chair.fill("#reopen-form input[name=reason]", "B1 工期保证措施评分需复核")
        chair.click("#request-reopen")
        chair.wait_for_selector(".reopen-pending")
        visit(supervisors[MAIN], f"{base[MAIN]}/committee/{SESSION}")
        supervisors[MAIN].click("[id^=approve-reopen-]")
        assert "已由 supervisor1 批准" in supervisors[MAIN].locator("#reopens").inner_text()
        for page in desks.values():
            page.wait_for_selector("#stage:has-text('技术标评审')")
            settle(page)
            assert page.input_value("input[name='m|B1|plan']") == "36.00"
            submit(page)
            page.wait_for_selector("#step-submitted")
        chair.wait_for_selector("#confirm-step:not([disabled])")
        settle(chair).click("#confirm-step")

        # The price step, opinions, everyone agrees, the chair aggregates.
        chair.wait_for_selector("#stage:has-text('价格评审')")
        chair.wait_for_selector("#confirm-step:not([disabled])")
        settle(chair).click("#confirm-step")
        chair.wait_for_selector("#ask-opinions")
        settle(chair).click("#ask-opinions")
        for page in desks.values():
            page.wait_for_selector("#agree")
            settle(page).click("#agree")
            page.wait_for_selector("#agreed")
        chair.wait_for_selector("#finalize:not([disabled])")
        settle(chair).click("#finalize")

        # A supervisor cannot sign for a venue before its members have signed the report.
        visit(supervisors[SECONDARY], f"{base[SECONDARY]}/committee/{SESSION}").wait_for_selector("#venue-sign")
        assert "本场地评标委员会成员均签署评标报告后" in sign_for_venue(supervisors[MAIN], f"{base[MAIN]}/committee/{SESSION}")

        # Every member signs the report on their own terminal.
        for page in desks.values():
            page.wait_for_selector("#sign-form")
            settle(page)
            draw_signature(page)
            page.click("#sign-report")
            page.wait_for_selector("#report-signed")
        # The report waits for each venue's supervisors: the chair cannot issue it yet; every
        # terminal, at both venues, lists the venues still waiting.
        chair.wait_for_selector(f"#venue-signoffs:has-text('{NAMES[SECONDARY]}')")
        assert chair.locator("#issue-report").is_disabled()
        settle(desks["P04"]).wait_for_selector(f"#venue-signoffs:has-text('{NAMES[MAIN]}')")
        assert desks["P04"].locator("#venue-signoffs .muted").count() == 2
        assert "已签认本场地部分" in sign_for_venue(supervisors[MAIN], f"{base[MAIN]}/committee/{SESSION}")
        assert "已发往主会场" in sign_for_venue(supervisors[SECONDARY], f"{base[SECONDARY]}/committee/{SESSION}")
        for _ in range(100):  # the secondary venue's sign-off arrives through the relay
            visit(supervisors[MAIN], f"{base[MAIN]}/committee/{SESSION}")
            if supervisors[MAIN].locator("#venue-signoffs .ok").count() == 2:
                break
            supervisors[MAIN].wait_for_timeout(200)
        assert supervisors[MAIN].locator("#venue-signoffs .ok").count() == 2
        for _ in range(100):  # the secondary venue's own page: its sign-off answered, the main venue's learned
            visit(supervisors[SECONDARY], f"{base[SECONDARY]}/committee/{SESSION}")
            if supervisors[SECONDARY].locator("#venue-signoffs .ok").count() == 2:
                break
            supervisors[SECONDARY].wait_for_timeout(200)
        assert supervisors[SECONDARY].locator("#venue-signoffs .ok").count() == 2
        chair.wait_for_selector("#issue-report:not([disabled])")
        settle(chair).click("#issue-report")
        chair.wait_for_selector("#report-issued", timeout=60000)
        shown = re.search(r"[0-9a-f]{64}", chair.locator("#report-issued").inner_text()).group(0)
        desks["P06"].wait_for_selector("#report-issued")  # at the secondary venue too

        # The secondary venue's list of today's evaluations shows where the committee stands.
        assert "结果已确认" in visit(supervisors[SECONDARY], f"{base[SECONDARY]}/committee/").locator("main").inner_text()
        issued = journal(supervisors[MAIN], base[MAIN], "evaluation.report")[-1]
        assert issued["pdf_sha256"] == shown
        signed = journal(supervisors[MAIN], base[MAIN], "evaluation.venue_signed")
        assert [(p["venue"], p["supervisor"], len(p["members"])) for p in signed] == [
            (MAIN, "supervisor1", 3), (SECONDARY, "supervisor1", 2)]
        approved = journal(supervisors[MAIN], base[MAIN], "evaluation.reopen_approved")
        assert len(approved) == 1
        held = journal(supervisors[SECONDARY], base[SECONDARY], "evaluation.remote_action")
        assert {p["action"] for p in held} >= {"sign_in", "read", "vote", "marks", "agree", "sign", "venue_sign"}

    # Every journal verifies; each venue's journal goes up to the center; the remote session's
    # package holds every venue's records and keys and verifies offline.
    for site_id, venue in venues.items():
        with open_site(venue.data) as site:
            result = verify_journal(site.store.reader(), site_id, site.public_key)
            assert result.ok, result.as_json()
            Agent(site).sync_once()
    from center import log as center_log

    log = center_log.verify(c.db.all("SELECT seq, body, hash, sig FROM center_log ORDER BY seq"), c.key.public_key())
    assert log["ok"] and c.db.value("SELECT COUNT(*) FROM relay") > 0  # the center's own log, every relayed message in it
    # Provincial staff download the remote session's package from the session's page at the center.
    CenterStaff(c).set(*STAFF)
    staff = requests.Session()
    staff_login(staff, center_url)
    page = staff.get(f"{center_url}/center/ui/sites/{MAIN}/sessions/{SESSION}", timeout=10).text
    assert "remote-evidence-export" in page and "远程异地评标，评标场地" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = staff.post(f"{center_url}/center/ui/sessions/{SESSION}/remote-evidence", data={"csrf_token": token}, timeout=60)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/zip"
    package = tmp_path / "remote-evidence.zip"
    package.write_bytes(answer.content)
    checked = verify_remote(package).as_json()
    assert checked["ok"], checked["problems"]
    assert [(v["site"], v["ok"]) for v in checked["venues"]] == [(MAIN, True), (SECONDARY, True)]
    assert checked["actions"] == checked["actions_answered"] == len(held)
    data = package.read_bytes()
    at = len(data) // 2
    altered = tmp_path / "altered.zip"
    altered.write_bytes(data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1:])
    assert not verify_remote(altered).ok
