"""An expert's first entry through the gate kiosk: tap → commitment, signature and conflicts on
the kiosk → locker opened with a one-time code → decision journaled → gate opened. And the
recusal path: a declared conflict stops the entry and files a replacement-draw request."""

import base64
from contextlib import contextmanager
import json
import re
import time

import pytest


from appliance.kiosks import Kiosks
from appliance.device_service import DeviceService
from appliance.site import open_site
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from kiosk_ui import create_app
from tests.helpers import csrf_token, png_bytes
from appliance.clock import FixedClock
from tests.test_site_operations import DEVICES, NOW, plan_text
from tests.venue import card_of

LOCKERS = """
[[devices.locker]]
name = "bank-a"
port = "/dev/ttyBUS2"
protocol = "8a"
board = 1
locks = 24
"""


@contextmanager
def gate_venue(data_dir, config=""):
    """Today's plan, the devices service on simulated devices, an enrolled gate kiosk."""
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + config + DEVICES + LOCKERS, encoding="utf-8")
    site = open_site(data_dir, clock=FixedClock(NOW))
    load_plan(site, parse_plan(plan_text()))
    change_state(site, "S-0922-02", "admitting", by="staff1")
    code = Kiosks(site).add("gate-1-kiosk", "gate", reader="gate-1-reader")
    service = DeviceService(site)
    service.start()
    app = create_app(site)
    try:
        kiosk = app.test_client()
        page = kiosk.get("/kiosk/enrol")
        assert kiosk.post("/kiosk/enrol", data={"code": code, "csrf_token": csrf_token(page)}).status_code == 302
        yield site, service, kiosk
    finally:
        app.extensions["live"].stop()
        service.stop()
        site.close()


@pytest.fixture
def venue(data_dir):
    with gate_venue(data_dir) as v:
        yield v


def tap_and_wait_for_prompt(site, service, kiosk, ref):
    service.sims["/dev/ttyREADER1"].place(card_of(ref))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        prompt = kiosk.get("/kiosk/prompt").get_json()["prompt"]
        if prompt:
            service.sims["/dev/ttyREADER1"].remove()
            return prompt
        time.sleep(0.05)
    raise AssertionError("no check-in prompt")


def wait_pulse(service, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not service.sims["/dev/ttyBUS1"].pulses and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(service.sims["/dev/ttyBUS1"].pulses) == 1


def sign(kiosk, prompt, conflicts=()):
    page = kiosk.get(f"/kiosk/checkin/{prompt}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "廉洁自律和回避承诺书" in html and "某某建设有限公司" in html and "某某工程有限公司" in html
    data = {"csrf_token": csrf_token(page), "signature": "data:image/png;base64," + base64.b64encode(png_bytes()).decode(),
            "conflicts": list(conflicts)}
    return kiosk.post(f"/kiosk/checkin/{prompt}", data=data).get_data(as_text=True)


def test_first_entry_commitment_locker_and_gate(venue):
    site, service, kiosk = venue
    prompt = tap_and_wait_for_prompt(site, service, kiosk, "P02")
    denied_first = site.journal.records(kind="gate.decision")[-1].payload
    assert denied_first["reason"] == "commitment_missing" and not denied_first["allow"]
    result = sign(kiosk, prompt)
    code = re.search(r'id="locker-code">(\d{6})<', result).group(1)
    assert "请再次刷身份证" in result and code
    service.step()  # the devices service runs the queued locker command
    assert service.sims["/dev/ttyBUS2"].opened == [(1, 1)]
    assert service.sims["/dev/ttyBUS1"].pulses == []  # signing never opens the gate by itself
    # The expert taps again: now admitted, and the gate opens for the card on the reader.
    time.sleep(1.1)
    service.sims["/dev/ttyREADER1"].place(card_of("P02"))
    deadline = time.monotonic() + 5
    while not site.journal.records(kind="gate.decision")[-1].payload["allow"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert site.journal.records(kind="gate.decision")[-1].payload["reason"] == "allowed"
    assert wait_pulse(service)
    kinds = [r.kind for r in site.journal.records()]
    assert {"checkin.started", "checkin.commitment_signed", "locker.assigned", "device.command", "gate.decision"} <= set(kinds)
    text = json.dumps([r.as_json() for r in site.journal.records()], ensure_ascii=False)
    assert code not in text  # the code is shown once, kept only as a keyed hash
    # The signature is sealed at rest.
    sealed = site.store.reader().execute("SELECT signature_sealed FROM checkins WHERE locker IS NOT NULL").fetchone()[0]
    assert site.personal.open("person.signature", sealed) == png_bytes()
    # The prompt is closed: it cannot be signed twice.
    assert kiosk.get(f"/kiosk/checkin/{prompt}").status_code == 404


def test_declared_conflict_stops_entry_and_requests_a_replacement(venue):
    site, service, kiosk = venue
    prompt = tap_and_wait_for_prompt(site, service, kiosk, "P03")
    result = sign(kiosk, prompt, conflicts=["B1"])
    assert "已申报利害关系" in result
    request = site.journal.records(kind="replacement_draw")[-1].payload
    assert request["session"] == "S-0922-02" and request["reason"] == "recusal"
    service.step()
    assert service.sims["/dev/ttyBUS1"].pulses == [] and service.sims["/dev/ttyBUS2"].opened == []
    # Tapping again (after the reader's debounce time) is refused for the declared conflict.
    time.sleep(0.7)
    service.sims["/dev/ttyREADER1"].place(card_of("P03"))
    deadline = time.monotonic() + 5
    while site.journal.records(kind="gate.decision")[-1].payload["reason"] != "conflict_declared" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert site.journal.records(kind="gate.decision")[-1].payload["reason"] == "conflict_declared"


def test_a_signature_is_required(venue):
    site, service, kiosk = venue
    prompt = tap_and_wait_for_prompt(site, service, kiosk, "P04")
    page = kiosk.get(f"/kiosk/checkin/{prompt}")
    resp = kiosk.post(f"/kiosk/checkin/{prompt}", data={"csrf_token": csrf_token(page), "signature": "data:image/png;base64,AAAA"})
    assert "a signature is required" in resp.get_data(as_text=True)
    assert not site.journal.records(kind="checkin.commitment_signed")


def test_the_venues_own_commitment_text_is_shown_and_its_hash_journaled(data_dir):
    import hashlib

    text = "本人承诺：遵守本中心评标纪律（本中心提供的承诺书文本）。"
    with gate_venue(data_dir, f'[siteops]\ncommitment_text = "{text}"\n') as (site, service, kiosk):
        prompt = tap_and_wait_for_prompt(site, service, kiosk, "P02")
        page = kiosk.get(f"/kiosk/checkin/{prompt}").get_data(as_text=True)
        assert text in page and "不私下接触投标人" not in page  # the venue's text, not the built-in one
        kiosk.post(f"/kiosk/checkin/{prompt}", data={"csrf_token": csrf_token(kiosk.get(f"/kiosk/checkin/{prompt}")),
                                                     "signature": "data:image/png;base64," + base64.b64encode(png_bytes()).decode()})
        signed = site.journal.records(kind="checkin.commitment_signed")[-1].payload
        assert signed["commitment_sha256"] == hashlib.sha256(text.encode()).hexdigest()
