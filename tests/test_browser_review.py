"""A supervisor reviews a session's footage in Debian's chromium: `appliance run` records a real
RTSP camera (GStreamer) with ffmpeg; an expert's gate entry is on the session's timeline; a
click plays the segment of that moment from that moment; the segments re-hash as intact; the
evidence package downloads and verifies; the live view shows the camera's picture."""

import re
import time
import zipfile

import pytest

from appliance.site import open_site
from tests.browser import chromium, log_in
from tests.camera import rtsp_camera
from tests.helpers import json_line, run_appliance
from tests.test_runtime import PASSWORD, add_user, output, start, stop, wait_ready
from tests.venue import build_venue, card_of


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    venue = build_venue(tmp)
    add_user(venue.data, "super1", "supervisor")
    with rtsp_camera() as camera:
        config = venue.data / "appliance.toml"
        config.write_text(config.read_text() + f"""
[recording]
segment_s = 2
[[recording.cameras]]
name = "pb1-overview"
label = "第一评标室全景摄像机"
room = "PB1"
url = "{camera.main}"
substream_url = "{camera.sub}"
""", encoding="utf-8")
        with open_site(venue.data) as site:
            person = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P01'").fetchone()[0]
            with site.store.transaction() as conn:  # P01 signed at the kiosk earlier
                conn.execute("INSERT INTO checkins (session, person_id, commitment_signed, locker) VALUES "
                             "('S-0922-02', ?, '2026-01-01T00:00:00.000000Z', 'bank-a/1')", (person,))
        # Started as `make run` starts it: the data directory relative to the working directory.
        proc, port = start(venue.data.name, cwd=venue.data.parent)
        try:
            wait_ready(proc, port)
            time.sleep(3)  # footage before the entry
            venue.reader.place(card_of("P01"))
            time.sleep(1.0)
            venue.reader.remove()
            time.sleep(6)  # and after it, sealed
            yield venue, f"http://127.0.0.1:{port}", tmp
        finally:
            code, _ = stop(proc)
            venue.stop()
    assert code == 0, output(proc)


def test_supervisor_clicks_the_entry_and_watches_that_moment(recorded):
    venue, base, tmp = recorded
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN", accept_downloads=True)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        log_in(page, base, "super1", PASSWORD)
        page.goto(base + "/review/sessions")
        page.click("a[href$=\"/review/sessions/S-0922-02\"]")  # the evaluation, in PB1
        page.wait_for_selector("tr.segment")
        assert page.locator("tr.segment").count() >= 3
        entry = page.locator("li.kind-gate-decision", has_text="：准入").first
        entry_ms = int(entry.get_attribute("data-ms"))
        entry.locator("a.jump").click()
        page.wait_for_function("() => window.__reviewSeeks.length > 1 && document.getElementById('player').readyState >= 2",
                               timeout=10000)
        seek = page.evaluate("window.__reviewSeeks[window.__reviewSeeks.length - 1]")
        row = page.locator(f"#segment-{seek['segment']}")
        start_ms, end_ms = int(row.get_attribute("data-start")), int(row.get_attribute("data-end"))
        assert start_ms <= entry_ms < end_ms and abs(seek["offset"] - (entry_ms - start_ms) / 1000) < 0.01
        state = page.evaluate("() => { const v = document.getElementById('player');"
                              " return {error: v.error && v.error.code, t: v.currentTime, w: v.videoWidth, d: v.duration}; }")
        assert state["error"] is None and state["w"] == 640 and abs(state["t"] - seek["offset"]) < 0.5, state
        # Integrity: every segment re-hashed against its sealing record.
        page.click("#verify-footage")
        page.wait_for_selector("span.badge")
        assert page.locator("span.badge.ok").count() == page.locator("tr.segment").count()
        # A bookmark at the moment shown, journaled.
        page.fill("#bookmark-form input[name=note]", "专家入场画面清晰")
        page.click("#bookmark-form button")
        page.wait_for_selector("li.kind-review-bookmark")
        # The evidence package downloads and verifies.
        with page.expect_download() as info:
            page.click("#export-evidence")
        package = tmp / "evidence.zip"
        info.value.save_as(package)
        proc = run_appliance("evidence", "verify", str(package))
        report = json_line(proc.stdout)
        assert proc.returncode == 0 and report["ok"] and report["segments"] >= 3, report
        # The same package with one byte of footage changed, checked in the review room: the
        # problem in words (which footage, which record, which bytes), not the verifier's English.
        tampered, changed = tmp / "tampered.zip", []
        with zipfile.ZipFile(package) as src, zipfile.ZipFile(tampered, "w") as out:
            for info in src.infolist():
                data = src.read(info.filename)
                if info.filename.startswith("segments/") and not changed:
                    data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
                    changed.append(info.filename)
                out.writestr(info, data)
        page.goto(base + "/review/evidence/verify")
        page.set_input_files("input[name=file]", str(tampered))
        page.click("#verify-evidence")
        page.wait_for_selector("#evidence-problems")
        problem = page.locator("#evidence-problems li").first.inner_text()
        assert re.search(r"与第 \d+ 条记录封存的内容不一致：改动位置 第 0–\d+ 字节", problem), problem
        assert changed[0].removeprefix("segments/") in problem and "SHA-256" not in problem, problem
        # The monitoring room's live view: the camera's current picture, from its sub-stream.
        page.goto(base + "/review/live")
        page.wait_for_function("() => window.__liveFrames >= 2", timeout=15000)
        assert page.evaluate("document.querySelector('img.live-frame').naturalWidth") == 160
        assert "第一评标室 · 第一评标室全景摄像机" in page.locator("figcaption").first.inner_text()
        # A segment whose file is gone: the player says so instead of staying black.
        # (The last one: never played yet, so not in the browser's cache.)
        page.goto(base + "/review/sessions/S-0922-02")
        last = page.locator("tr.segment").last
        with open_site(venue.data) as site:
            rel = site.store.reader().execute("SELECT path FROM segments WHERE id = ?",
                                              (int(last.get_attribute("data-id")),)).fetchone()[0]
        (venue.data / "recordings" / rel).unlink()
        last.locator("a.play-segment").click()
        page.wait_for_selector("#player-error:not([hidden])", timeout=10000)
        assert "无法播放" in page.locator("#player-error").inner_text()
        context.close()
    assert errors == []
