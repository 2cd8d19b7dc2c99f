"""The demo day of `make run` (issue 14 item 16), as a newcomer meets it in chromium: nothing
happens at the gates before someone logs in; then the day goes phase by phase, the console
saying which; a restart the same day does not play it again (no second copy of the sessions)."""

import sqlite3
import time

from tests.browser import chromium, log_in
from tests.test_simulate_day import DEMO_DEVICES
from tests.test_runtime import PASSWORD, add_user, output, start, stop, wait_ready


def meta(data_dir, key):
    with sqlite3.connect(data_dir / "appliance.db") as db:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def count(data_dir, sql):
    with sqlite3.connect(data_dir / "appliance.db") as db:
        return db.execute(sql).fetchone()[0]


def wait_until(check, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        assert proc.poll() is None, output(proc)
        time.sleep(0.25)
    raise AssertionError(output(proc)[-3000:])


def test_the_demo_day_waits_for_a_login_goes_by_phases_and_plays_once_a_day(data_dir):
    config = data_dir / "appliance.toml"
    config.write_text(config.read_text() + DEMO_DEVICES, encoding="utf-8")
    add_user(data_dir, "staff1", "staff")
    proc, port = start(data_dir, "run", "--simulate-day", "--simulate-speed", "30")
    try:
        wait_ready(proc, port, timeout=60)
        wait_until(lambda: meta(data_dir, "demo_phase") == "waiting_for_login", 20, proc)
        time.sleep(3)
        assert count(data_dir, "SELECT COUNT(*) FROM journal WHERE kind = 'gate.decision'") == 0  # nobody looking yet
        with chromium() as browser:
            page = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
            log_in(page, f"http://127.0.0.1:{port}", "staff1", PASSWORD)
            page.wait_for_selector("#demo-phase")
            # The console follows the day's phases live: the check-in at the evaluation gate comes.
            page.wait_for_function("() => (document.querySelector('#demo-phase p') || {dataset: {}}).dataset.phase === 'checkin'",
                                   timeout=90000)
            assert "评标区" in page.locator("#demo-phase").inner_text()
            wait_until(lambda: count(data_dir, "SELECT COUNT(*) FROM journal WHERE kind = 'gate.decision'") > 0, 60, proc)
            wait_until(lambda: meta(data_dir, "demo_phase") == "finished", 240, proc)
        sessions = count(data_dir, "SELECT COUNT(*) FROM sessions")
    finally:
        code, _ = stop(proc)
    assert code == 0, output(proc)
    # make run again the same day: the day is not played a second time.
    proc, port = start(data_dir, "run", "--simulate-day", "--simulate-speed", "30")
    try:
        wait_ready(proc, port, timeout=60)
        wait_until(lambda: meta(data_dir, "demo_phase") == "already_played", 20, proc)
        assert count(data_dir, "SELECT COUNT(*) FROM sessions") == sessions
    finally:
        stop(proc)
