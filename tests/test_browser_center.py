"""The center's pages as provincial staff use them, in Debian's chromium (issue 14 item 15):
the venue and its sessions by name, the venue's own alarms (an expert who left the evaluation
area without approval) with who handled them, a session's footage played, the login field
labelled 用户名."""

from __future__ import annotations

from appliance.siteops.alarms import acknowledge, raise_alarm
from sync.agent import Agent, enroll
from center.accounts import CenterStaff
from tests.browser import chromium
from tests.test_sync import center  # noqa: F401  (a fixture)
from tests.test_sync_media import SITE, clip, recorded  # noqa: F401  (fixtures)

STAFF = ("zhang.wei", "省中心值班-2026")


def test_the_center_shows_venues_sessions_alarms_and_plays_footage(recorded, center):  # noqa: F811
    site, sealed = recorded
    c, url = center
    enroll(site, url, c.add_site(SITE))
    person = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P02'").fetchone()[0]
    with site.store.transaction() as conn:
        left = raise_alarm(site, conn, "exit_during_evaluation", seq=None, session="S-0922-02", person_id=person,
                           detail={"gate": "G-OUT"})
        raise_alarm(site, conn, "gate_fault", seq=None, session="S-0922-02", detail={"gate": "G-IN"})
    acknowledge(site, left, by="staff1", note="已电话联系专家，回到评标室")
    assert Agent(site).sync_once()["media"]["pending"] == 0
    CenterStaff(c).set(*STAFF)
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
        page.goto(f"{url}/center/ui/")
        assert page.locator("label", has=page.locator("input[name=name]")).inner_text().strip() == "用户名"
        page.fill("input[name=name]", STAFF[0])
        page.fill("input[name=password]", STAFF[1])
        page.click("main button[type=submit]")
        page.wait_for_load_state()
        page.wait_for_selector("table.sites")
        venue = site.config.site.name
        assert venue in page.locator(f"tr[data-site='{SITE}']").inner_text()
        page.click(f"tr[data-site='{SITE}'] a")
        page.wait_for_selector("#venue-alarms")
        assert page.locator("h1").inner_text().startswith(venue)
        left_row = page.locator("#venue-alarms tr[data-kind=exit_during_evaluation]")
        assert "专家未经批准离开评标区" in left_row.inner_text()
        assert "staff1" in left_row.inner_text() and "回到评标室" in left_row.inner_text()
        assert "某县第一中学教学楼改造工程施工" in left_row.inner_text()
        assert "未处理" in page.locator("#venue-alarms tr[data-kind=gate_fault]").inner_text()
        session = page.locator("tr[data-session='S-0922-02'] td:first-child a")
        assert session.inner_text() == "某县第一中学教学楼改造工程施工"
        session.click()
        page.wait_for_selector("#center-player")
        page.wait_for_function("() => document.getElementById('center-player').readyState >= 1", timeout=15000)
        assert page.evaluate("document.getElementById('center-player').duration") > 1
        page.locator("a[data-play]").nth(1).click()
        page.wait_for_function(f"() => document.getElementById('center-player').src.endsWith('/media/{sealed[1].seq}')")
        page.wait_for_function("() => document.getElementById('center-player').readyState >= 1", timeout=15000)
        # The venue's alarms on the center's alarm page too.
        page.goto(f"{url}/center/ui/alarms")
        assert page.locator("#venue-alarms tr[data-kind=exit_during_evaluation]").count() == 1
        # The grid leads; an alarm raised now appears on the open page at once (pushed).
        page.goto(f"{url}/center/ui/")
        assert page.locator(f".venue[data-site='{SITE}']").get_attribute("data-state") in ("in_sync", "alarm")
        assert page.locator("#alarm-banner").is_hidden()
        page.wait_for_timeout(500)  # (the page's stream is open)
        c.alarm(SITE, "media_mismatch", {"seq": sealed[0].seq})
        page.wait_for_selector("#alarm-banner:not([hidden])", timeout=10000)
        assert "录像与封存" in page.locator("#alarm-banner").inner_text() and site.config.site.name in page.locator(
            "#alarm-banner").inner_text()
        # The session's archive: its timeline in words, and its evidence package to download.
        page.goto(f"{url}/center/ui/sites/{SITE}/sessions/S-0922-02")
        assert "场次状态变更" in page.locator("#session-timeline").inner_text()
        with page.expect_download() as download:
            page.click("#evidence-export")
        assert download.value.suggested_filename == f"{SITE}-S-0922-02-evidence.zip"
