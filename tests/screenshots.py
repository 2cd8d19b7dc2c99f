"""`make screenshots`: a PNG of each main page in docs/screenshots/, taken with Debian's chromium
from a real `appliance run` on a throwaway venue (today's demo plan, simulated reader, gate and
locker board owned by this script, a little of the day already done): 1920×1080 for office
screens, 1280×800 for the 10-inch kiosk."""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

from appliance.site import open_site
from appliance.siteops.alarms import acknowledge, raise_alarm
from appliance.siteops.registers import add_entry
from appliance.siteops.scheduling import VENUE_TZ, add_booking, parse_requests, schedule_day
from cli.demo_center import DEMO_STAFF
from tests.browser import chromium, draw_signature, log_in
from tests.test_runtime import PASSWORD, add_user, start, stop, wait_ready
from tests.venue import ROOT, build_venue, card_of

OUT = ROOT / "docs" / "screenshots"


def _a_morning(data: Path) -> str:
    """What the console shows mid-morning: an expert inside, a register entry, an alarm,
    tomorrow's bookings placed. Returns tomorrow's date."""
    with open_site(data) as site:
        person = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P01'").fetchone()[0]
        now = site.clock.now()
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        with site.store.transaction() as conn:
            conn.execute("INSERT INTO checkins (session, person_id, commitment_signed, locker) VALUES ('S-0922-02', ?, ?, 'bank-a/2')",
                         (person, stamp))
            conn.execute("INSERT INTO presence (person_id, zone, since) VALUES (?, 'evaluation', ?)", (person, stamp))
            record = site.journal.append(conn, "gate.fault", {"gate": "G-IN", "person_id": None, "error": "demo"})
            raise_alarm(site, conn, "gate_fault", seq=record.seq, detail={"gate": "G-IN"})
            left = raise_alarm(site, conn, "exit_during_evaluation", seq=None, session="S-0922-02", person_id=person,
                               detail={"gate": "G-OUT"})
        acknowledge(site, left, by="zhang.wei", note="已联系专家，经批准后返回评标室")
        add_entry(site, "patrol", {"area": "第一评标室", "finding": "评标秩序正常", "follow_up": "无"}, by="zhang.wei")
        tomorrow = now.astimezone(VENUE_TZ).date() + timedelta(days=1)
        for r in parse_requests((ROOT / "demo" / "bookings.json").read_text(encoding="utf-8")):
            shift = tomorrow - r.earliest.date()
            add_booking(site, day=tomorrow.isoformat(), section_code=r.section_code, section_name=r.section_name,
                        session_kind=r.session_kind, room_kind=r.room_kind, attendees=r.attendees,
                        duration_min=r.duration_min, earliest=r.earliest + shift, latest_end=r.latest_end + shift,
                        equipment=r.equipment, by="zhang.wei")
        add_booking(site, day=tomorrow.isoformat(), section_code="JL-2026-0940", section_name="某县水库除险加固工程",
                    session_kind="evaluation", room_kind="evaluation", attendees=11, duration_min=180,
                    earliest=datetime.combine(tomorrow, dt_time(8, 30), VENUE_TZ),
                    latest_end=datetime.combine(tomorrow, dt_time(17, 30), VENUE_TZ), by="zhang.wei")
        schedule_day(site, tomorrow.isoformat(), by="zhang.wei")
    return tomorrow.isoformat()


def _an_evaluation(data: Path) -> None:
    """The evaluation of S-0922-02 under way: the opening signed off, the committee seated, the
    chair elected, the pass/fail steps done, the technical scores half typed by the chair."""
    import json

    from appliance.evaluation import committee as ev
    from appliance.evaluation import opening
    from tests.venue import enter_evaluation_area

    template = json.loads((ROOT / "demo" / "evaluation" / "template.json").read_text(encoding="utf-8"))
    with open_site(data) as site:
        ref = dict(site.store.reader().execute("SELECT ref, person_id FROM person_refs").fetchall())
        members = [ref[r] for r in ("P01", "P02", "P03", "P04", "P06")]
        enter_evaluation_area(site, "P02")  # the chair, who signs in at the desk below
        opening.open_bids(site, "S-0922-01", [{"bidder": "B1", "price": "1000000"}, {"bidder": "B2", "price": "900000"}],
                          by="zhang.wei")
        for bidder in ("B1", "B2"):
            opening.confirm(site, "S-0922-01", bidder, agrees=True, by=f"{bidder} 代表")
        opening.sign_off(site, "S-0922-01", supervisor="li.na")
        ev.load_template(site, template, by="zhang.wei")
        ev.start(site, "S-0922-02", ev.template_by_id(site, template["id"]), opening.bids_for_evaluation(site, "JL2026-GC-0117-01"),
                 by="zhang.wei")
        for m in members:
            ev.sign_in(site, "S-0922-02", m)
            ev.confirm_read(site, "S-0922-02", m)
        for m, candidate in zip(members, (members[0], members[0], members[1], members[1], members[2]), strict=True):
            ev.vote(site, "S-0922-02", m, candidate)  # 2–2–1: nobody elected, a re-vote
        for m in members:
            ev.vote(site, "S-0922-02", m, ref["P02"])
        for step in ("qualification", "compliance"):
            for m in members:
                for c in next(s for s in template["steps"] if s["id"] == step)["criteria"]:
                    for bidder in ("B1", "B2"):
                        ev.mark(site, "S-0922-02", m, step, bidder, c["id"], "pass")
                ev.submit_step(site, "S-0922-02", m, step)
            ev.confirm_step(site, "S-0922-02", ref["P02"], step)
        for m, (a, b) in zip(members[2:], (("36", "25"), ("35", "24"), ("37", "26")), strict=True):
            for bidder in ("B1", "B2"):
                ev.mark(site, "S-0922-02", m, "technical", bidder, "plan", a)
                ev.mark(site, "S-0922-02", m, "technical", bidder, "schedule", b)
            ev.submit_step(site, "S-0922-02", m, "technical")
        ev.mark(site, "S-0922-02", ref["P02"], "technical", "B1", "plan", "38")
        ev.ask_clarification(site, "S-0922-02", ref["P02"], "B2", "请澄清深基坑支护方案的监测频率。", room="DY1")


def _center_url(data: Path) -> str:
    """The demo center's address, once the sync worker has had the journal acknowledged."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open_site(data) as site:
            url, acked = site.store.get_meta("sync_center_url"), int(site.store.get_meta("sync_acked") or 0)
        if url and acked:
            return url
        time.sleep(0.5)
    raise RuntimeError("the demo center never acknowledged the journal")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        venue = build_venue(Path(tmp), site_id="demo-county-01", desks=1)
        for name, role in (("zhang.wei", "staff"), ("li.na", "supervisor"), ("admin", "admin")):
            add_user(venue.data, name, role)
        tomorrow = _a_morning(venue.data)
        _an_evaluation(venue.data)
        proc, port = start(venue.data, env={"APPLIANCE_SERVICES__HEARTBEAT_S": "5",  # the default, as on site
                                            "APPLIANCE_SYNC__DEMO_CENTER": "true", "APPLIANCE_SYNC__INTERVAL_S": "2"})
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(proc, port)
            with chromium() as browser:
                office = {"viewport": {"width": 1920, "height": 1080}, "locale": "zh-CN"}

                def shot(page, name: str) -> None:
                    page.wait_for_timeout(600)  # let the live feed paint
                    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                    print(OUT / f"{name}.png")

                page = browser.new_context(**office).new_page()
                page.goto(base + "/login")
                shot(page, "login")
                log_in(page, base, "zhang.wei", PASSWORD)
                page.wait_for_url(base + "/console/")
                shot(page, "console-home")
                for path, name in (("/console/sessions", "sessions"), ("/console/sessions/S-0922-02/roster", "session-roster"),
                                   (f"/console/rooms/?day={tomorrow}", "room-scheduling"), ("/console/alarms", "alarm-history"),
                                   ("/console/fees/S-0922-02", "fee-sheet"), ("/console/registers/patrol", "register-patrol")):
                    page.goto(base + path)
                    shot(page, name)
                # The gates page following the gate live: the supervisor's tap appears without a reload.
                page.goto(base + "/console/gates")
                page.wait_for_selector("footer.live.online")
                rows = page.locator("#recent-decisions tbody tr[data-seq]").count()
                venue.reader.place(card_of("P07"))
                page.wait_for_function(f"() => document.querySelectorAll('#recent-decisions tbody tr[data-seq]').length > {rows}")
                venue.reader.remove()
                time.sleep(1.2)
                shot(page, "gates-and-alarms")
                # What is printed (the PDF is printed from this very page), on A4.
                printed = browser.new_context(viewport={"width": 1123, "height": 794}, locale="zh-CN").new_page()
                printed.context.add_cookies(page.context.cookies())
                for path, name in (("/console/registers/patrol/export.html", "register-printed"),
                                   ("/console/fees/S-0922-02/export.html", "fee-sheet-printed")):
                    printed.goto(base + path)
                    shot(printed, name)
                printed.context.close()
                page.click("button[value=en]")
                page.goto(base + "/console/")
                shot(page, "console-home-en")

                page = browser.new_context(**office).new_page()
                log_in(page, base, "admin", PASSWORD)
                page.goto(base + "/console/admin/users")
                shot(page, "admin-accounts")
                page.goto(base + "/console/admin/kiosks")
                shot(page, "admin-kiosks")

                page = browser.new_context(**office).new_page()
                log_in(page, base, "li.na", PASSWORD)
                page.wait_for_url(base + "/review/")
                page.click("#verify")
                shot(page, "review")
                page.goto(base + "/committee/S-0922-02")
                shot(page, "committee")

                # The chair's evaluation terminal in room PB1, signed in by a card on its desk reader.
                desk = browser.new_context(**office).new_page()
                desk.goto(base + "/kiosk/enrol")
                desk.fill("input[name=code]", venue.desk_codes[0])
                desk.click("#enrol-submit")
                desk.wait_for_url(base + "/evaluation/")
                shot(desk, "terminal-idle")
                venue.desks[0].place(card_of("P02"))
                desk.wait_for_selector("#member-name")
                venue.desks[0].remove()
                shot(desk, "terminal-scoring")

                kiosk = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN").new_page()
                kiosk.goto(base + "/kiosk/enrol")
                kiosk.fill("input[name=code]", venue.kiosk_code)
                kiosk.click("#enrol-submit")
                kiosk.wait_for_url(base + "/kiosk/")
                shot(kiosk, "kiosk-gate")
                venue.reader.place(card_of("P11"))  # a bidder's representative at the evaluation gate
                kiosk.wait_for_function("() => document.getElementById('kiosk-person').textContent.includes('投标人代表')")
                shot(kiosk, "kiosk-refused")
                venue.reader.remove()
                time.sleep(1.2)
                venue.reader.place(card_of("P04"))  # an expert's first entry
                kiosk.wait_for_url("**/kiosk/checkin/*")
                venue.reader.remove()
                draw_signature(kiosk)
                shot(kiosk, "kiosk-checkin")
                kiosk.click("#checkin-submit")
                kiosk.wait_for_load_state()
                if not kiosk.locator("#locker-code").count():
                    raise RuntimeError(kiosk.url + " " + kiosk.locator("main").inner_text())
                shot(kiosk, "kiosk-locker-code")

                # The provincial center's pages (the demo center in the appliance's process).
                center = _center_url(venue.data)
                page = browser.new_page(**office)
                page.goto(center + "/center/ui/login")
                page.fill("input[name=name]", DEMO_STAFF[0])
                page.fill("input[name=password]", DEMO_STAFF[1])
                page.click("button[type=submit]:has-text('登录')")
                page.wait_for_selector("table.sites")
                shot(page, "center-sites")
                page.goto(center + "/center/ui/sites/demo-county-01")
                page.wait_for_selector("#venue-alarms tr[data-kind=exit_during_evaluation]")
                shot(page, "center-site")
                page.goto(center + "/center/ui/alarms")
                shot(page, "center-alarms")
                page.goto(center + "/center/ui/sites/demo-county-01/proof?seq=3")
                page.wait_for_selector("#verdict")
                shot(page, "center-proof")
        finally:
            stop(proc)
            venue.stop()


if __name__ == "__main__":
    sys.exit(main())
