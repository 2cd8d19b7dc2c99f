"""The province's pages over real HTTP: the venue grid coloured by state, alarms pushed live
(server-sent events) and to a signed webhook, acknowledged with a note in the center's own
signed log, search across venues with paging, and feed items published to every venue."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from appliance.clock import utc_timestamp
from appliance.site import init_site, open_site
from center import log as center_log
from center.accounts import CenterStaff
from center.webhook import CONTEXT, WebhookDelivery
from sync.agent import Agent, enroll
from tests.helpers import SITE_NAME
from tests.test_center_hardening import STAFF, staff_login
from tests.test_sync import center, notes  # noqa: F401  (the center fixture)


@pytest.fixture
def province(tmp_path, center):  # noqa: F811
    """Three venues: one in sync, one behind (records it has not sent), one silent for a day."""
    c, url = center
    for i, site_id in enumerate(("cn-220281-jyzx", "cn-220282-jyzx", "cn-220283-jyzx")):
        init_site(tmp_path / site_id, site_id, f"{SITE_NAME[:-9]}{i}号县公共资源交易中心")
        with open_site(tmp_path / site_id) as site:
            enroll(site, url, c.add_site(site_id))
            notes(site, 5 + i)
            Agent(site).sync_once()
            if i == 1:
                notes(site, 40)
                Agent(site)._post("head", {"local_size": site.journal.count()})  # it reports its size, sends nothing
    day_ago = utc_timestamp(datetime.now(timezone.utc) - timedelta(hours=30))
    with c.db.transaction() as conn:
        conn.execute("UPDATE sites SET last_seen = %s WHERE id = 'cn-220283-jyzx'", (day_ago,))
    CenterStaff(c).set(*STAFF)
    staff = requests.Session()
    staff_login(staff, url)
    return c, url, staff


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_the_grid_colours_each_venue_by_its_state(province):
    c, url, staff = province
    page = staff.get(f"{url}/center/ui/", timeout=10).text
    tiles = dict(re.findall(r'class="venue venue-\w+" data-site="([^"]+)" data-state="(\w+)"', page))
    assert tiles == {"cn-220281-jyzx": "in_sync", "cn-220282-jyzx": "behind", "cn-220283-jyzx": "silent"}
    assert "0号县公共资源交易中心" in page and "已同步" in page and "无联系" in page


def test_an_alarm_is_pushed_live_and_acknowledged_with_a_note_in_the_signed_log(province):
    c, url, staff = province
    stream = staff.get(f"{url}/center/ui/alarms/stream", stream=True, timeout=10)
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    lines = stream.iter_lines(decode_unicode=True)
    assert next(lines).startswith("retry:")
    c.alarm("cn-220282-jyzx", "fork", {"seq": 7})
    event = {}
    deadline = time.monotonic() + 10
    for line in lines:
        if line.startswith("data:"):
            event = json.loads(line[5:])
            break
        assert time.monotonic() < deadline
    stream.close()
    assert event["kind"] == "fork" and event["venue"].endswith("1号县公共资源交易中心") and event["words"].startswith("分叉")
    alarm_id = event["id"]
    page = staff.get(f"{url}/center/ui/alarms", timeout=10).text
    answer = staff.post(f"{url}/center/ui/alarms/{alarm_id}/ack", data={"note": "已电话核实，站点恢复旧镜像", "csrf_token": csrf(page)},
                        timeout=10)
    assert answer.status_code == 200
    assert c.db.one("SELECT acknowledged_by, ack_note FROM alarms WHERE id = %s", (alarm_id,)) == (STAFF[0], "已电话核实，站点恢复旧镜像")
    assert staff.post(f"{url}/center/ui/alarms/{alarm_id}/ack", data={"note": "again", "csrf_token": csrf(page)},
                      timeout=10).status_code == 404  # handled once
    rows = c.db.all("SELECT seq, body, hash, sig FROM center_log ORDER BY seq")
    assert center_log.verify(rows, c.key.public_key())["ok"]
    assert json.loads(rows[-1][1])["action"] == "alarm.acknowledged" and json.loads(rows[-1][1])["actor"] == STAFF[0]
    assert "已电话核实" in staff.get(f"{url}/center/ui/log", timeout=10).text
    # An entry altered in the database is found, by number.
    with c.db.transaction() as conn:
        conn.execute("UPDATE center_log SET body = replace(body, '已电话核实', '未核实') WHERE seq = %s", (rows[-1][0],))
    check = center_log.verify(c.db.all("SELECT seq, body, hash, sig FROM center_log ORDER BY seq"), c.key.public_key())
    assert check == {"ok": False, "records": len(rows), "first_bad": rows[-1][0], "problem": "hash"}


def test_alarms_go_to_the_webhook_signed_and_are_tried_again_after_a_failure(province):
    c, url, staff = province
    received, answers = [], [500, 200]

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers["X-Center-Signature"]))
            self.send_response(answers.pop(0) if answers else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    delivery = WebhookDelivery(c, f"http://127.0.0.1:{server.server_address[1]}/hook")
    try:
        c.alarm("cn-220281-jyzx", "media_mismatch", {"seq": 12})
        assert delivery.deliver_due() == 0  # the receiver failed: tried again later, not lost
        with c.db.transaction() as conn:  # (later is now)
            conn.execute("UPDATE alarms SET webhook_at = %s WHERE webhook_state IS NULL", (utc_timestamp(datetime.now(timezone.utc)),))
        assert delivery.deliver_due() == 1
        assert delivery.deliver_due() == 0  # sent once
    finally:
        server.shutdown()
    body, signature = received[-1]
    assert len(received) == 2 and received[0][0] == body
    alarm = json.loads(body)
    assert alarm["kind"] == "media_mismatch" and alarm["site"] == "cn-220281-jyzx" and alarm["detail"] == {"seq": 12}
    c.key.public_key().verify(base64.b64decode(signature), CONTEXT + hashlib.sha256(body).digest())


def test_search_across_venues_pages_newest_first(province, monkeypatch):
    import html

    import center.province

    c, url, staff = province
    monkeypatch.setattr(center.province, "PAGE", 5)
    seen, page = [], staff.get(f"{url}/center/ui/search", params={"kind": "staff.note"}, timeout=10).text
    while True:
        seen += re.findall(r'sites/([a-z0-9-]+)/proof\?seq=(\d+)">#', page)
        older = re.search(r'<a href="([^"]+)">[^<]*→</a>', page)
        if not older:
            break
        page = staff.get(url + html.unescape(older.group(1)), timeout=10).text
    assert len(seen) == len(set(seen)) == 5 + 6 + 7  # what the venues sent (the behind one's 40 are not here yet), once each
    stamps = [c.db.value("SELECT ts FROM records WHERE site = %s AND seq = %s", (site, int(seq))) for site, seq in seen]
    assert stamps == sorted(stamps, reverse=True)  # newest first, across the pages
    monkeypatch.undo()
    one = staff.get(f"{url}/center/ui/search", params={"kind": "staff.note", "site": "cn-220282-jyzx"}, timeout=10).text
    assert len(re.findall(r'/proof\?seq=\d+">#', one)) == 6
    assert staff.get(f"{url}/center/ui/search", params={"from": "2026-13-01"}, timeout=10).status_code == 400
    assert staff.get(f"{url}/center/ui/search", params={"person": "张*伟"}, timeout=10).status_code == 400  # too wide


def test_feed_items_are_published_to_every_venue_and_logged(province):
    c, url, staff = province
    page = staff.get(f"{url}/center/ui/feed", timeout=10).text
    answer = staff.post(f"{url}/center/ui/feed", data={"kind": "evaluation_template", "site": "*", "csrf_token": csrf(page),
                                                       "body": json.dumps({"id": "T-2027", "name": "综合评估法"})}, timeout=10)
    assert answer.status_code == 200 and "已下发至 3 个交易场所" in answer.text
    assert c.db.one("SELECT COUNT(DISTINCT site) FROM feed WHERE kind = 'evaluation_template'")[0] == 3
    assert staff.post(f"{url}/center/ui/feed", data={"kind": "evaluation_template", "site": "*", "csrf_token": csrf(page),
                                                     "body": "{not json"}, timeout=10).status_code == 400
    last = json.loads(c.db.one("SELECT body FROM center_log ORDER BY seq DESC LIMIT 1")[0])
    assert last["action"] == "feed.published" and len(last["detail"]["sites"]) == 3


def test_the_province_forms_refuse_bad_input_with_a_clear_answer(province):
    c, url, staff = province
    token = csrf(staff.get(f"{url}/center/ui/alarms", timeout=10).text)
    c.alarm("cn-220281-jyzx", "fork", {"seq": 3})
    alarm_id = c.db.value("SELECT id FROM alarms ORDER BY id DESC LIMIT 1")
    assert staff.post(f"{url}/center/ui/alarms/{alarm_id}/ack", data={"note": "  ", "csrf_token": token},
                      timeout=10).status_code == 400  # a note is required
    assert staff.post(f"{url}/center/ui/alarms/{alarm_id}/ack", data={"note": "x" * 501, "csrf_token": token},
                      timeout=10).status_code == 400
    assert staff.post(f"{url}/center/ui/alarms/{alarm_id}/ack", data={"note": "已处理"}, timeout=10).status_code == 400  # no CSRF
    assert staff.post(f"{url}/center/ui/alarms/99999999/ack", data={"note": "已处理", "csrf_token": token},
                      timeout=10).status_code == 404
    assert c.db.value("SELECT acknowledged FROM alarms WHERE id = %s", (alarm_id,)) is None
    hold = f"{url}/center/ui/sites/cn-220281-jyzx/sessions/S-1/hold"
    assert staff.post(hold, data={"reason": "", "csrf_token": token}, timeout=10).status_code == 400
    assert staff.post(f"{url}/center/ui/sites/no-such-site/sessions/S-1/hold", data={"reason": "投诉", "csrf_token": token},
                      timeout=10).status_code == 404
    assert staff.post(f"{url}/center/ui/sites/cn-220281-jyzx/sessions/S-none/evidence", data={"csrf_token": token},
                      timeout=10).status_code == 404  # nothing of that session
    assert staff.post(f"{url}/center/ui/sessions/S-none/remote-evidence", data={"csrf_token": token},
                      timeout=10).status_code == 404  # not a remote evaluation registered here
    assert staff.post(f"{url}/center/ui/sessions/S-none/remote-evidence", timeout=10).status_code == 400  # no CSRF
    assert staff.post(f"{url}/center/ui/feed", data={"kind": "no_such_kind", "site": "*", "body": "{}", "csrf_token": token},
                      timeout=10).status_code == 400
    assert staff.post(f"{url}/center/ui/feed", data={"kind": "configuration", "site": "*", "body": "[1, 2]", "csrf_token": token},
                      timeout=10).status_code == 400  # not an object
    assert c.db.value("SELECT COUNT(*) FROM center_log") == 0  # nothing refused was logged


def test_the_center_commands_refuse_bad_input_in_one_line(tmp_path):
    from tests.helpers import run_appliance
    from tests.pg import new_center_dir

    center_dir = new_center_dir(tmp_path / "center")
    missing = run_appliance("center", "evidence", "--data", str(center_dir), "--site", "cn-220281-jyzx", "--session", "S-1",
                            "--out", str(tmp_path / "p.zip"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr
    assert not (tmp_path / "p.zip").exists()
    bad_url = run_appliance("center", "init", "--data", str(tmp_path / "other"), "--database", "mysql://db/center")
    assert bad_url.returncode == 2 and "database" in bad_url.stderr and "Traceback" not in bad_url.stderr
    no_toml = run_appliance("center", "scrub", "--data", str(tmp_path / "nowhere"))
    assert no_toml.returncode == 2 and "center.toml" in no_toml.stderr and "Traceback" not in no_toml.stderr
