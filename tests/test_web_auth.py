"""Accounts, sessions, lockout, CSRF, headers and kiosk enrolment through the real Flask app."""

import json
import re
from datetime import timedelta

import pytest

from appliance.accounts import AccountError, Accounts
from tests.conftest import PASSWORDS
from tests.helpers import csrf_token


def journal_of(site, kind):
    return [r for r in site.journal.records(kind=kind)]


def post_login(client, username, password):
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_token(page)})


def test_login_lands_each_role_on_its_screen_and_is_journaled(login, web_site):
    for role, home in (("staff", "/console/"), ("admin", "/console/"), ("supervisor", "/review/")):
        client = login(role)
        assert client.get("/").location == home
    logins = [r.payload for r in journal_of(web_site, "auth.login")]
    assert [p["outcome"] for p in logins] == ["ok", "ok", "ok"]
    assert all("password" not in json.dumps(p) for p in logins)
    assert all(PASSWORDS[p["role"]] not in json.dumps(p) for p in logins)


def message_of(response) -> str:
    return re.search(r'<p class="error"[^>]*>(.*?)</p>', response.get_data(as_text=True), re.S).group(1).strip()


def test_wrong_password_and_unknown_user_are_journaled_without_secrets(app, web_site):
    client = app.test_client()
    wrong = message_of(post_login(client, "staff1", "wrong-password"))
    assert wrong.startswith("用户名或密码错误")
    assert message_of(post_login(client, "nobody", "whatever-password")) == wrong  # the page does not tell which
    outcomes = [r.payload for r in journal_of(web_site, "auth.login")]
    assert [o["outcome"] for o in outcomes] == ["bad_password", "unknown_user"]
    text = json.dumps(outcomes)
    assert "wrong-password" not in text and "whatever-password" not in text and "nobody" not in text


def test_five_failures_lock_for_fifteen_minutes_and_admin_unlocks(app, web_site, login):
    client = app.test_client()
    for _ in range(5):
        post_login(client, "staff1", "wrong-password")
    wrong = message_of(post_login(app.test_client(), "nobody", "wrong-password"))
    # Locked, even with the right password: worded as a wrong password (names stay secret), journaled as locked.
    assert message_of(post_login(client, "staff1", PASSWORDS["staff"])) == wrong and "锁定" in wrong
    assert journal_of(web_site, "auth.login")[-1].payload["outcome"] == "locked"
    assert client.get("/console/").status_code == 302
    # 15 minutes later it opens again by itself.
    clock = web_site.clock
    real_now = clock.now
    web_site.clock.now = lambda: real_now() + timedelta(minutes=16)
    try:
        assert post_login(app.test_client(), "staff1", PASSWORDS["staff"]).location == "/console/"
    finally:
        web_site.clock.now = real_now
    # Lock again, then an admin unlocks from the console.
    for _ in range(5):
        post_login(client, "staff1", "wrong-password")
    admin = login("admin")
    user_id = Accounts(web_site).get("staff1").id
    page = admin.get("/console/admin/users")
    assert admin.post(f"/console/admin/users/{user_id}/unlock", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert post_login(app.test_client(), "staff1", PASSWORDS["staff"]).location == "/console/"
    assert journal_of(web_site, "account.unlocked")[0].payload["by"] == "admin1"


def test_no_more_than_100_failed_checks_an_hour_even_with_unlocks(web_site):
    accounts = Accounts(web_site)
    checked = 0
    for i in range(40):  # from ever new addresses: the account's own limit holds whatever the address
        for j in range(5):
            result = accounts.login("staff1", "wrong-password", remote=f"10.0.{i}.{j}")
            checked += result.outcome == "bad_password"
        accounts.unlock("staff1")
    assert checked == 100
    assert accounts.login("staff1", PASSWORDS["staff"], remote="10.1.0.1").outcome == "rate_limited"


def test_logout_revokes_the_session_on_the_server(login, app):
    client = login("staff")
    cookie = client.get_cookie("appliance_session").value
    page = client.get("/console/")
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("appliance_session", cookie)  # the old cookie, replayed
    assert replay.get("/console/").status_code == 302
    assert replay.get("/api/v1/status").status_code == 401


def test_disabling_an_account_ends_its_sessions(login, web_site):
    client = login("staff")
    assert client.get("/console/").status_code == 200
    Accounts(web_site).set_disabled("staff1", True)
    assert client.get("/console/").status_code == 302
    assert post_login(client, "staff1", PASSWORDS["staff"]).status_code == 200  # refused


def test_password_change_ends_sessions(login, web_site):
    client = login("staff")
    Accounts(web_site).set_password("staff1", "a-new-password-2")
    assert client.get("/console/").status_code == 302


@pytest.mark.parametrize("minutes, alive", [(14, True), (16, False)])
def test_idle_timeout(login, web_site, minutes, alive):
    client = login("staff")
    real_now = web_site.clock.now
    web_site.clock.now = lambda: real_now() + timedelta(minutes=minutes)
    try:
        assert (client.get("/console/").status_code == 200) is alive
    finally:
        web_site.clock.now = real_now


def test_live_refreshes_do_not_keep_an_idle_console_logged_in(login, web_site):
    """The pages' live sections refetch the page on every change (X-Live-Section): that is not
    a person at the screen, so an unattended console still logs out after 15 idle minutes."""
    client = login("staff")
    real_now = web_site.clock.now
    try:
        for step in range(1, 5):  # a refresh every 5 minutes for 20 minutes, nobody touching it
            web_site.clock.now = lambda s=step: real_now() + timedelta(minutes=5 * s)
            resp = client.get("/console/gates", headers={"X-Live-Section": "1"})
        assert resp.status_code == 302  # logged out at 15 idle minutes
    finally:
        web_site.clock.now = real_now


def test_absolute_timeout_even_when_active(login, web_site):
    client = login("staff")
    real_now = web_site.clock.now
    try:
        for step in range(1, 72):  # active every 10 minutes: never idle...
            web_site.clock.now = lambda s=step: real_now() + timedelta(minutes=10 * s)
            assert client.get("/console/").status_code == 200
        web_site.clock.now = lambda: real_now() + timedelta(hours=12, minutes=1)
        assert client.get("/console/").status_code == 302  # ...but 12 h after login it ends
    finally:
        web_site.clock.now = real_now


def test_every_state_change_needs_a_csrf_token(login):
    client = login("admin")
    assert client.post("/logout").status_code == 400
    assert client.post("/lang", data={"lang": "en"}).status_code == 400
    assert client.post("/console/admin/kiosks", data={"name": "x", "purpose": "gate"}).status_code == 400
    assert client.get("/console/").status_code == 200  # still logged in


def test_security_headers_and_cookies(login, app):
    client = app.test_client()
    page = client.get("/login")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in page.get_data(as_text=True)  # no inline script anywhere
    resp = post_login(client, "staff1", PASSWORDS["staff"])
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "Strict-Transport-Security" not in resp.headers


def test_tls_config_makes_cookies_secure_and_sends_hsts(web_site, tmp_path):
    from kiosk_ui import create_app

    cfg = web_site.config.model_copy(update={"web": web_site.config.web.model_copy(
        update={"tls_cert": tmp_path / "c.pem", "tls_key": tmp_path / "k.pem"})})
    web_site.config = cfg
    app = create_app(web_site)
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost")
    resp = client.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},
                       data={"username": "staff1", "password": PASSWORDS["staff"], "csrf_token": csrf_token(page)})
    assert "Secure" in resp.headers["Set-Cookie"]
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


def test_get_never_changes_state(login, web_site, app):
    """Every GET route, as every role: the journal and the domain tables stay as they were."""
    from tests.test_authz_matrix import sample_url

    clients = {role: login(role) for role in ("anonymous", "kiosk", "staff", "supervisor", "admin")}
    before = web_site.journal.count()
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and rule.endpoint not in ("static", "api.events"):
            for client in clients.values():
                client.get(sample_url(rule))
    assert web_site.journal.count() == before


def test_kiosk_enrolment_is_one_time_and_journaled(app, web_site):
    client = app.test_client()
    page = client.get("/kiosk/enrol")
    assert client.post("/kiosk/enrol", data={"code": web_site.kiosk_code, "csrf_token": csrf_token(page)}).location == "/kiosk/"
    assert "请将身份证放在阅读器上" in client.get("/kiosk/").get_data(as_text=True)
    other = app.test_client()
    page = other.get("/kiosk/enrol")
    resp = other.post("/kiosk/enrol", data={"code": web_site.kiosk_code, "csrf_token": csrf_token(page)})
    assert "注册码无效或已过期" in resp.get_data(as_text=True)
    assert [r.kind for r in web_site.journal.records(kind="kiosk")] == ["kiosk.registered", "kiosk.enrolled", "kiosk.enrolment_refused"]


def test_weak_passwords_and_bad_roles_are_refused(web_site):
    accounts = Accounts(web_site)
    with pytest.raises(AccountError):
        accounts.add("bob", "staff", "short")
    with pytest.raises(AccountError):
        accounts.add("bob", "bidder", "long-enough-password")


def test_user_commands(data_dir):
    from tests.helpers import json_line

    def run(*args, stdin=None):
        import subprocess

        from tests.helpers import APPLIANCE

        return subprocess.run([APPLIANCE, *args, "--data", str(data_dir)], input=stdin, capture_output=True, text=True)

    assert json_line(run("user", "add", "carol", "--role", "supervisor", "--password-stdin", stdin="carol-password-9\n").stdout)["ok"]
    assert run("user", "add", "carol", "--role", "staff", "--password-stdin", stdin="x" * 12 + "\n").returncode == 2
    assert json_line(run("user", "list").stdout) == {"id": 1, "username": "carol", "role": "supervisor", "disabled": False,
                                                     "lang": None, "locked_until": None}
    assert run("user", "passwd", "carol", "--password-stdin", stdin="another-password-9\n").returncode == 0
    assert json_line(run("user", "disable", "carol").stdout)["disabled"] is True
    assert json_line(run("user", "unlock", "carol").stdout)["ok"]
    assert json_line(run("kiosk", "add", "gate-2").stdout)["code"]


def test_free_attempts_cannot_flood_the_journal(app, web_site):
    """Bad kiosk codes and logins to a locked account cost nothing: journaled once a minute."""
    client = app.test_client()
    page = client.get("/kiosk/enrol")
    for _ in range(20):
        client.post("/kiosk/enrol", data={"code": "BAD-CODE-0000", "csrf_token": csrf_token(page)})
    assert len(web_site.journal.records(kind="kiosk.enrolment_refused")) == 1
    accounts = Accounts(web_site)
    for i in range(5):
        accounts.login("staff1", "wrong-password", remote=f"10.0.0.{i}")
    for i in range(20):
        assert accounts.login("staff1", PASSWORDS["staff"], remote=f"10.0.1.{i}").outcome == "locked"
    locked = [r for r in web_site.journal.records(kind="auth.login") if r.payload["outcome"] == "locked"]
    assert len(locked) == 1
