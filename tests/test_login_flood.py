"""No single client can stop the venue through the login page or a kiosk's enrolment: a flood of
logins never holds the database's write lock while argon2 runs, failures are aggregated in the
journal, a parallel burst gets no more tries than the lockout allows, and a kiosk can be revoked
at once."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from appliance.accounts import Accounts
from appliance.kiosks import Kiosks
from tests.conftest import PASSWORDS
from tests.helpers import APPLIANCE, csrf_token


def test_the_password_check_runs_outside_the_write_transaction(web_site, monkeypatch):
    """While an argon2 check is under way, another connection can take the write lock."""
    import appliance.accounts as accounts_module

    seen: list[bool] = []
    real = accounts_module._hasher

    class Probing:  # the real hasher, with a probe of the write lock while it checks
        def verify(self, hashed, password):
            probe = sqlite3.connect(web_site.store.path, timeout=0.05)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                seen.append(True)
            except sqlite3.OperationalError:
                seen.append(False)
            finally:
                probe.close()
            return real.verify(hashed, password)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(accounts_module, "_hasher", Probing())
    accounts = Accounts(web_site)
    accounts.login("staff1", "wrong-password", remote="10.0.0.1")  # known user, bad password
    accounts.login("staff1", PASSWORDS["staff"], remote="10.0.0.2")  # known user, good password
    accounts.login("nobody", "whatever-password", remote="10.0.0.3")  # unknown user: the dummy check
    assert seen == [True, True, True]


def test_a_login_flood_leaves_other_processes_writing(web_site, data_dir):
    """20 parallel logins with an unknown name, over and over, while another process appends
    notes: every note is written (none fails with 'database is locked'), and the flood leaves a
    handful of aggregated journal records, not one per attempt."""
    accounts = Accounts(web_site)
    stop = threading.Event()
    attempts = []

    def flood(i: int) -> None:
        while not stop.is_set():
            attempts.append(accounts.login(f"intruder{i}", "guess-password", remote=f"10.9.0.{i}").outcome)

    with ThreadPoolExecutor(20) as pool:
        for i in range(20):
            pool.submit(flood, i)
        try:
            time.sleep(0.5)
            results = [subprocess.run([APPLIANCE, "note", "--data", str(data_dir), f"巡场 {n}"], capture_output=True,
                                      text=True, timeout=60) for n in range(5)]
        finally:
            stop.set()
    assert [r.returncode for r in results] == [0] * 5, [r.stderr for r in results]
    assert len(attempts) >= 20
    unknown = [r for r in web_site.journal.records(kind="auth.login") if r.payload["outcome"] == "unknown_user"]
    assert 1 <= len(unknown) <= 20 < len(attempts)  # one per address and minute at most


def test_the_journal_throttle_counts_what_it_left_out():
    from appliance.throttle import JournalThrottle

    now = [0.0]
    throttle = JournalThrottle(lambda: now[0], every_s=60, cap=3)
    assert throttle.take("a") == 0 and throttle.take("a") is None and throttle.take("a") is None
    now[0] = 61
    assert throttle.take("a") == 2  # the two left out, told with the next record
    assert [throttle.take(k) for k in "bcd"] == [0, 0, None]  # at most 3 a minute over all keys


def test_a_parallel_burst_gets_no_more_tries_than_the_lockout(web_site):
    accounts = Accounts(web_site)
    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(lambda i: accounts.login("staff1", f"guess-{i}", remote=f"10.8.0.{i}").outcome, range(12)))
    assert outcomes.count("bad_password") == web_site.config.web.lockout_failures == 5
    assert set(outcomes) <= {"bad_password", "locked"}
    assert accounts.login("staff1", PASSWORDS["staff"], remote="10.8.1.1").outcome == "locked"


def test_a_login_turned_away_busy_is_not_counted_against_the_account(web_site, monkeypatch):
    """When every check slot stays taken, the answer is "busy": that is the server's doing, not a
    wrong password, so it must not bring the account nearer its lockout."""
    accounts = Accounts(web_site)
    real = accounts._check_slot
    monkeypatch.setattr(accounts, "_check_slot", lambda check: False)  # every slot taken for 10 s
    outcomes = [accounts.login("staff1", PASSWORDS["staff"], remote=f"10.9.0.{i}").outcome for i in range(12)]
    assert set(outcomes) == {"busy"}
    monkeypatch.setattr(accounts, "_check_slot", real)
    assert accounts.login("staff1", PASSWORDS["staff"], remote="10.9.1.1").outcome == "ok"


def test_checks_that_never_settle_leave_a_lock_that_ends_by_itself(web_site):
    """Attempts reserved and never settled (the process killed mid-check) lock the account for
    the lockout's minutes, never for good: then the right password works again."""
    accounts = Accounts(web_site)
    for i in range(web_site.config.web.lockout_failures):
        assert isinstance(accounts._reserve_attempt("staff1", f"10.10.0.{i}"), tuple)  # reserved; its process dies
    assert accounts.login("staff1", PASSWORDS["staff"], remote="10.10.1.1").outcome == "locked"
    real_now = web_site.clock.now
    web_site.clock.now = lambda: real_now() + timedelta(minutes=web_site.config.web.lockout_minutes + 1)
    try:
        assert accounts.login("staff1", PASSWORDS["staff"], remote="10.10.1.2").outcome == "ok"
    finally:
        web_site.clock.now = real_now


def test_one_address_is_refused_unchecked_after_its_budget(app, web_site):
    client = app.test_client()
    budget = web_site.config.web.login_attempts_per_minute
    page = client.get("/login")
    statuses = [client.post("/login", data={"username": "staff1", "password": "wrong-password",
                                            "csrf_token": csrf_token(page)}).status_code for _ in range(budget + 3)]
    assert statuses[:budget].count(429) == 0 and statuses[budget:] == [429, 429, 429]
    bad = [r for r in web_site.journal.records(kind="auth.login") if r.payload["outcome"] == "bad_password"]
    assert len(bad) <= web_site.config.web.lockout_failures  # the rest were refused before any check


def enrolled_kiosk(app, web_site, name="gate-9"):
    code = Kiosks(web_site).add(name, "gate")
    client = app.test_client()
    page = client.get("/kiosk/enrol")
    resp = client.post("/kiosk/enrol", data={"code": code, "csrf_token": csrf_token(page)})
    assert resp.status_code == 302
    return client, resp


def test_a_disabled_kiosk_stops_at_once_and_its_cookie_is_bounded(app, web_site, login):
    client, resp = enrolled_kiosk(app, web_site)
    cookie = resp.headers["Set-Cookie"]
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert max_age == web_site.config.web.kiosk_token_days * 24 * 3600 <= 365 * 24 * 3600
    assert client.get("/kiosk/").status_code == 200
    admin = login("admin")
    page = admin.get("/console/admin/kiosks")
    kiosk_id = next(k["id"] for k in Kiosks(web_site).all() if k["name"] == "gate-9")
    assert admin.post(f"/console/admin/kiosks/{kiosk_id}/disable", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert client.get("/kiosk/").status_code == 302  # back to the login page: no longer a kiosk
    assert client.get("/api/v1/events").status_code == 401
    assert web_site.journal.records(kind="kiosk.disabled")[0].payload["by"] == "admin1"
    # Enabled again it needs a new code: the old enrolment stays dead.
    assert admin.post(f"/console/admin/kiosks/{kiosk_id}/enable", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert client.get("/kiosk/").status_code == 302


def test_kiosk_disable_on_the_command_line(cli, app, web_site, data_dir):
    client, _ = enrolled_kiosk(app, web_site, "gate-8")
    code, out, _ = cli("kiosk", "disable", "gate-8", "--data", str(data_dir))
    assert code == 0 and '"disabled": true' in out
    assert client.get("/kiosk/").status_code == 302
    code, _, err = cli("kiosk", "disable", "no-such-kiosk", "--data", str(data_dir))
    assert code == 2 and "no kiosk" in err


def test_a_lapsed_kiosk_token_no_longer_works(app, web_site):
    from datetime import timedelta

    client, _ = enrolled_kiosk(app, web_site, "gate-7")
    real_now = web_site.clock.now
    web_site.clock.now = lambda: real_now() + timedelta(days=web_site.config.web.kiosk_token_days + 1)
    try:
        assert client.get("/kiosk/").status_code == 302
    finally:
        web_site.clock.now = real_now


def test_wrong_enrolment_codes_make_the_address_wait(app, web_site):
    code = Kiosks(web_site).add("gate-6", "gate")
    client = app.test_client()
    page = client.get("/kiosk/enrol")
    for _ in range(5):
        assert client.post("/kiosk/enrol", data={"code": "AAAA-BBBB-CCCC", "csrf_token": csrf_token(page)}).status_code in (200, 429)
    resp = client.post("/kiosk/enrol", data={"code": code, "csrf_token": csrf_token(page)})
    assert resp.status_code == 429 and "请" in resp.get_data(as_text=True)  # even the right code must wait
    assert len(web_site.journal.records(kind="kiosk.enrolment_refused")) <= 2
