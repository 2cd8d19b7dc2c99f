"""The gate kiosk in Debian's chromium against `appliance run`, with a simulated reader, gate
and locker board on pseudo-terminals: a bidder refused at the evaluation gate, an expert's first
entry through the commitment, signature, locker code and gate."""

import time

import pytest

from tests.browser import chromium, draw_signature
from tests.venue import build_venue, card_of, served


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    venue = build_venue(tmp_path_factory.mktemp("kiosk"))
    with served(venue) as base:
        yield venue, base


@pytest.fixture(scope="module")
def kiosk(venue):
    venue_, base = venue
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN").new_page()
        page.goto(base + "/kiosk/enrol")
        page.fill("input[name=code]", venue_.kiosk_code)
        page.click("#enrol-submit")
        page.wait_for_url(base + "/kiosk/")
        page.wait_for_selector("footer.live.online")
        yield page


def tap(venue, ref):
    venue.reader.place(card_of(ref))


def lift(venue):
    venue.reader.remove()
    time.sleep(1.1)  # past the reader's debounce


def test_bidder_is_refused_at_the_evaluation_gate(venue, kiosk):
    venue_, _ = venue
    tap(venue_, "P11")
    kiosk.wait_for_function("() => document.getElementById('kiosk-state').dataset.state === 'denied'", timeout=5000)
    assert kiosk.locator("#kiosk-message").inner_text() == "投标人和招标代理人员不得进入评标区"
    paints = kiosk.evaluate("window.__kioskPaints")
    assert paints and paints[-1]["reason"] == "role_not_allowed"
    assert venue_.gate.pulses == []
    lift(venue_)


def test_expert_first_entry(venue, kiosk):
    venue_, base = venue
    tap(venue_, "P02")
    kiosk.wait_for_url("**/kiosk/checkin/*", timeout=5000)
    lift(venue_)
    assert "廉洁自律和回避承诺书" in kiosk.locator(".kiosk-title").inner_text()
    draw_signature(kiosk)
    kiosk.click("#checkin-submit")
    kiosk.wait_for_load_state()
    if not kiosk.locator("#locker-code").count():
        raise AssertionError(kiosk.url + " " + kiosk.locator("main").inner_text())
    assert kiosk.locator("#checkin-result").inner_text() == "签署完成：请再次刷身份证通过闸机"
    assert len(kiosk.locator("#locker-code").inner_text()) == 6
    deadline = time.monotonic() + 5
    while not venue_.lockers.opened and time.monotonic() < deadline:
        time.sleep(0.05)
    assert venue_.lockers.opened == [(1, 1)]  # the assigned locker popped open
    assert venue_.gate.pulses == []
    tap(venue_, "P02")  # the card again: the gate opens for the card on the reader
    deadline = time.monotonic() + 5
    while not venue_.gate.pulses and time.monotonic() < deadline:
        time.sleep(0.05)
    lift(venue_)
    assert len(venue_.gate.pulses) == 1
