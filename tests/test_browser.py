"""Real-browser tests: Debian's chromium (headless, through Playwright) against `appliance run`
on loopback: login, logout, lockout, language switch, kiosk enrolment, live updates."""

import subprocess

import pytest

from tests.browser import chromium, log_in
from tests.helpers import APPLIANCE, json_line
from tests.test_runtime import PASSWORD, add_user, start, stop, wait_ready


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    from appliance.site import init_site

    data = tmp_path_factory.mktemp("browser") / "site"
    init_site(data, "test-county-01", "测试县公共资源交易中心")
    for name, role in (("staff1", "staff"), ("super1", "supervisor"), ("admin1", "admin"), ("victim", "staff")):
        add_user(data, name, role)
    proc, port = start(data)
    wait_ready(proc, port)
    yield data, f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()
    assert errors == [], errors  # no script errors, no CSP violations


def test_login_and_logout(page, appliance):
    _, base = appliance
    log_in(page, base, "staff1", PASSWORD)
    page.wait_for_url(base + "/console/")
    assert page.locator("h1").inner_text() == "现场概况"
    page.click("#logout")
    page.wait_for_url(base + "/login")
    page.goto(base + "/console/")
    assert page.url.startswith(base + "/login")  # the session is gone on the server


def test_wrong_password_then_lockout(page, appliance):
    _, base = appliance
    wrong = "用户名或密码错误，或该账户因多次登录失败已被临时锁定（稍后自动解锁，管理员可提前解锁）。"
    for _ in range(5):
        log_in(page, base, "victim", "not-the-password")
        assert page.locator("#login-error").inner_text() == wrong
    log_in(page, base, "victim", PASSWORD)  # locked now: the same words, so names stay secret
    assert page.locator("#login-error").inner_text() == wrong
    assert page.url.startswith(base + "/login")


def test_language_switch_is_remembered(page, appliance):
    _, base = appliance
    log_in(page, base, "admin1", PASSWORD)
    page.wait_for_url(base + "/console/")
    page.click("button[value=en]")
    page.wait_for_url(base + "/console/")
    assert page.locator("h1").inner_text() == "Site overview"
    assert page.locator("html").get_attribute("lang") == "en"
    page.reload()
    assert page.locator("h1").inner_text() == "Site overview"
    page.click("button[value=zh_Hans_CN]")
    assert page.locator("h1").inner_text() == "现场概况"


def test_live_update_arrives_without_reload(page, appliance):
    data, base = appliance
    log_in(page, base, "staff1", PASSWORD)
    page.wait_for_url(base + "/console/")
    page.wait_for_selector("footer.live.online")
    before = int(page.locator("#journal-records").inner_text())
    url_before = page.url
    page.evaluate("window.__marker = 'same page'")
    note = subprocess.run([APPLIANCE, "note", "--data", str(data), "巡场：评标区秩序正常"], capture_output=True, text=True)
    seq = json_line(note.stdout)["seq"]
    # A function, not an expression string: the page's CSP forbids eval.
    page.wait_for_function("seq => Number(document.getElementById('journal-records').textContent) >= seq",
                           arg=seq, timeout=5000)
    assert page.evaluate("window.__marker") == "same page" and page.url == url_before  # no reload
    assert int(page.locator("#journal-records").inner_text()) > before
    latency = page.evaluate(f"window.__liveLatencies.filter(x => x.seq >= {seq})[0].appended_to_painted_ms")
    assert latency >= 0


def test_an_alarm_reaches_the_console_and_the_supervisor_without_reload(browser, page, appliance):
    from appliance.site import open_site
    from appliance.siteops.alarms import raise_alarm

    data, base = appliance
    log_in(page, base, "staff1", PASSWORD)
    page.wait_for_url(base + "/console/")
    page.wait_for_selector("footer.live.online")
    supervisor = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    log_in(supervisor, base, "super1", PASSWORD)
    supervisor.goto(base + "/review/")
    supervisor.wait_for_selector("footer.live.online")
    assert "无未处理告警" in page.locator("#alarms").inner_text()
    with open_site(data) as site, site.store.transaction() as conn:
        raise_alarm(site, conn, "gate_fault", seq=None, detail={"gate": "G-IN"})
    for screen in (page, supervisor):
        screen.wait_for_function("() => document.querySelector('#alarms li.alarm') !== null", timeout=5000)
        assert "闸机未能开启" in screen.locator("#alarms").inner_text()
        assert "alarming" in screen.locator(".alarms-panel").get_attribute("class")
    assert page.locator("#alarms a").get_attribute("href").startswith("/console/gates#alarm-")
    supervisor.context.close()


def test_kiosk_enrols_and_shows_the_gate_screen(page, appliance):
    data, base = appliance
    code = json_line(subprocess.run([APPLIANCE, "kiosk", "add", "gate-east", "--data", str(data)],
                                    capture_output=True, text=True).stdout)["code"]
    page.goto(base + "/kiosk/enrol")
    page.fill("input[name=code]", code)
    page.click("#enrol-submit")
    page.wait_for_url(base + "/kiosk/")
    assert page.locator(".kiosk-instruction").inner_text() == "请将身份证放在阅读器上"
    size = page.eval_on_selector(".kiosk-instruction", "el => parseFloat(getComputedStyle(el).fontSize)")
    assert size >= 40  # readable from a step away on a 10-inch screen
    page.wait_for_selector("footer.live.online")
    assert page.request.get(base + "/console/").status == 403  # a kiosk device is no staff member


def test_supervisor_verifies_the_journal(page, appliance):
    _, base = appliance
    log_in(page, base, "super1", PASSWORD)
    page.wait_for_url(base + "/review/")
    page.click("#verify")
    assert "完整" in page.locator("#verify-result").inner_text()
    assert page.request.get(base + "/console/").status == 403  # supervisors do not reach staff screens
