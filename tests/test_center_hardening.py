"""The center under attack (real HTTP on loopback, the real server): alarm floods aggregate,
unsigned bodies are refused before they are read, staff sessions live on the server, and a
replaced box starts a new journal under a new key with the old one kept."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.keys import fingerprint
from appliance.site import init_site, open_site
from sync.agent import Agent, enroll
from center.core import Center
from center.accounts import CenterStaff
from tests.helpers import SITE_ID, SITE_NAME
from tests.test_sync import center, notes  # noqa: F401  (the center fixture)

STAFF = ("provincial-1", "province-password-1")


def alarm_rows(c: Center) -> list[tuple]:
    return c.db.all("SELECT kind, site, source, count FROM alarms ORDER BY id")


def test_a_flood_of_unsigned_requests_is_one_alarm_and_real_alarms_stay_on_top(site, center):  # noqa: F811
    c, url = center
    enroll(site, url, c.add_site(site.config.site.id))
    Agent(site).sync_once()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: requests.post(f"{url}/center/v1/sites/{secrets.token_hex(8)}/head", json={},
                                                      timeout=10).status_code, range(300)))
    assert set(codes) == {401}
    rows = alarm_rows(c)
    unknown = [r for r in rows if r[0] == "unknown_key"]
    assert len(unknown) == 1 and unknown[0][3] == 300 and unknown[0][2] == "127.0.0.1" and unknown[0][1] is None
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pem = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    for _ in range(50):  # bad enrolment tokens, the same
        resp = requests.post(f"{url}/center/v1/enroll", json={"site_id": secrets.token_hex(4), "token": "x", "public_key": pem},
                             timeout=10)
        assert resp.status_code == 403
    c.alarm(site.config.site.id, "fork", {"seq": 7})
    rows = alarm_rows(c)
    assert len(rows) <= 4 and sum(r[3] for r in rows if r[0] == "enrolment_refused") == 50
    staff = requests.Session()
    CenterStaff(c).set(*STAFF)
    staff_login(staff, url)
    page = staff.get(f"{url}/center/ui/alarms", timeout=10).text
    assert page.index('data-kind="fork"') < page.index('data-kind="unknown_key"')  # the real one first
    assert ">300<" in page


def test_an_unsigned_body_is_refused_before_it_is_read(site, center):  # noqa: F811
    c, url = center
    enroll(site, url, c.add_site(site.config.site.id))
    port = int(url.rsplit(":", 1)[1])
    for path in (f"/center/v1/sites/{site.config.site.id}/journal", "/center/v1/sites/nobody/journal"):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(5)
        # 60 MB announced, not a byte of it sent: the answer comes anyway, from the headers alone.
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: 60000000\r\n\r\n".encode())
        answer = s.recv(4096)
        s.close()
        assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
    # Paths under the sites' API that name no API, and an OPTIONS with a body: the same.
    for method, path, code in (("POST", "/center/v1/sites/abc", b"404"), ("POST", "/center/v1/sites//head", b"404"),
                               ("OPTIONS", f"/center/v1/sites/{site.config.site.id}/head", b"413")):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(5)
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 60000000\r\n\r\n".encode())
        answer = s.recv(4096)
        s.close()
        assert answer.startswith(b"HTTP/1.1 " + code), (method, path, answer[:100])
    # A signed request with a stale date is refused the same way.
    old = "sig1=(\"@method\");created=1000000000;keyid=\"%s\";nonce=\"abc\"" % site.config.site.id
    resp = requests.post(f"{url}/center/v1/sites/{site.config.site.id}/head", json={}, headers={"Signature-Input": old},
                         timeout=10)
    assert resp.status_code == 401 and "created" in resp.json()["message"]


def test_a_forged_signature_is_refused_before_the_body_is_read(site, center):  # noqa: F811
    """Headers that name the site's key, fresh and with a new nonce, but a signature that is not
    the site's: refused from the headers alone, the 60 MB announced never read."""
    c, url = center
    enroll(site, url, c.add_site(site.config.site.id))
    port = int(url.rsplit(":", 1)[1])
    forger = Ed25519PrivateKey.generate()
    path = f"/center/v1/sites/{site.config.site.id}/journal"
    params = (f'("@method" "@authority" "@target-uri" "content-digest");created={int(time.time())};'
              f'keyid="{site.config.site.id}";nonce="{secrets.token_hex(16)}";alg="ed25519"')
    digest = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    base = (f'"@method": POST\n"@authority": 127.0.0.1:{port}\n"@target-uri": http://127.0.0.1:{port}{path}\n'
            f'"content-digest": sha-256=:{digest}:\n"@signature-params": {params}')
    signature = base64.b64encode(forger.sign(base.encode())).decode()
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
              f"Content-Digest: sha-256=:{digest}:\r\nSignature-Input: sig1={params}\r\nSignature: sig1=:{signature}:\r\n"
              "Content-Length: 60000000\r\n\r\n".encode())
    answer = b""
    while chunk := s.recv(4096):  # the answer, then the server closes: the body never asked for
        answer += chunk
    s.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"bad_signature" in answer and b"request signature" in answer


def staff_login(session: requests.Session, url: str, name: str = STAFF[0], password: str = STAFF[1]) -> requests.Response:
    page = session.get(f"{url}/center/ui/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return session.post(f"{url}/center/ui/login", data={"name": name, "password": password, "csrf_token": token}, timeout=10)


def test_a_staff_login_page_does_not_tell_which_names_exist(center):  # noqa: F811
    c, url = center
    staff = CenterStaff(c)
    staff.set(*STAFF)
    staff.set("provincial-2", "province-password-2")
    staff.disable("provincial-2")

    def said(name: str, password: str) -> str:
        return re.search(r'<p class="bad"[^>]*>(.*?)</p>', staff_login(requests.Session(), url, name, password).text, re.S).group(1)

    wrong = said(STAFF[0], "not-it")
    for _ in range(5):
        said(STAFF[0], "not-it")
    assert said(STAFF[0], STAFF[1]) == wrong  # locked now, even with the right password: worded the same
    assert said("nobody-at-all", "x") == wrong and said("provincial-2", "province-password-2") == wrong


def test_staff_sessions_end_on_logout_and_on_a_password_reset(center):  # noqa: F811
    c, url = center
    CenterStaff(c).set(*STAFF)
    s = requests.Session()
    assert staff_login(s, url).url.endswith("/center/ui/")
    cookie = s.cookies.get("center_session")
    assert s.get(f"{url}/center/ui/", timeout=10).url.endswith("/center/ui/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(f"{url}/center/ui/", timeout=10).text).group(1)
    s.post(f"{url}/center/ui/logout", data={"csrf_token": token}, timeout=10)
    replay = requests.Session()
    replay.cookies.set("center_session", cookie)  # the cookie copied before logout: dead on the server
    assert "/login" in replay.get(f"{url}/center/ui/", timeout=10).url
    s2 = requests.Session()
    staff_login(s2, url)
    CenterStaff(c).set(STAFF[0], "a-new-password-22")  # a reset ends every session of the login
    assert "/login" in s2.get(f"{url}/center/ui/", timeout=10).url


def test_a_parallel_burst_gets_no_more_tries_than_the_lockout_in_any_worker(center, tmp_path):  # noqa: F811
    c, url = center
    CenterStaff(c).set(*STAFF)
    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(lambda i: CenterStaff(c).login(STAFF[0], f"guess-{i}", f"10.0.0.{i}")[0], range(12)))
    assert outcomes.count("wrong") == 5 and set(outcomes) <= {"wrong", "locked"}
    # Another worker process (another CenterStaff over the same database) sees the lockout.
    other = CenterStaff(Center(c.data))
    assert other.login(*STAFF, remote="10.1.1.1")[0] == "locked"


def test_a_staff_login_turned_away_busy_is_not_counted(center, monkeypatch):  # noqa: F811
    c, _ = center
    staff = CenterStaff(c)
    staff.set(*STAFF)
    real = staff._check
    monkeypatch.setattr(staff, "_check", lambda check: False)  # every check slot taken for 10 s
    assert {staff.login(*STAFF, remote=f"10.2.0.{i}")[0] for i in range(12)} == {"busy"}
    monkeypatch.setattr(staff, "_check", real)
    assert staff.login(*STAFF, remote="10.2.1.1")[0] == "ok"


def test_staff_checks_that_never_settle_leave_a_lock_that_ends_by_itself(center):  # noqa: F811
    from datetime import timedelta

    from center.accounts import LOCK_AFTER, LOCK_MINUTES

    c, _ = center
    staff = CenterStaff(c)
    staff.set(*STAFF)
    for _ in range(LOCK_AFTER):
        assert isinstance(staff._reserve(STAFF[0]), tuple)  # reserved; its worker dies mid-check
    assert staff.login(*STAFF, remote="10.3.0.1")[0] == "locked"
    real_now = c.clock.now
    c.clock.now = lambda: real_now() + timedelta(minutes=LOCK_MINUTES + 1)
    try:
        assert staff.login(*STAFF, remote="10.3.0.2")[0] == "ok"
    finally:
        c.clock.now = real_now


def test_a_replaced_box_starts_a_new_journal_under_a_new_key_and_the_old_one_is_kept(site, center, tmp_path):  # noqa: F811
    c, url = center
    enroll(site, url, c.add_site(SITE_ID))
    notes(site, 20)
    Agent(site).sync_once()
    old_size = c.head(SITE_ID)["size"]
    old_fp = fingerprint(site.public_key)
    # The box is replaced: a new data directory, a new key, a new journal from record 1.
    new_dir = tmp_path / "new-box"
    init_site(new_dir, SITE_ID, SITE_NAME)
    with open_site(new_dir) as new_site:
        enroll(new_site, url, c.add_site(SITE_ID, replace_key=True))
        notes(new_site, 3)
        result = Agent(new_site).sync_once()
        assert result["pending"] == 0 and c.head(SITE_ID)["size"] == new_site.journal.count() < old_size
        new_fp = fingerprint(new_site.public_key)
    keys = c.key_generations(SITE_ID)
    assert [(k["generation"], k["fingerprint"], k["size"]) for k in keys] == [(1, old_fp, old_size), (2, new_fp, None)]
    kept = c.db.one("SELECT COUNT(*) FROM records_retired WHERE site = %s AND generation = 1",
                                    (SITE_ID,))[0]
    assert kept == old_size  # nothing of the old journal is lost
    assert "key_replaced" in [r[0] for r in alarm_rows(c)]
    s = requests.Session()
    CenterStaff(c).set(*STAFF)
    staff_login(s, url)
    page = s.get(f"{url}/center/ui/sites/{SITE_ID}", timeout=10).text
    grouped = " ".join(new_fp[i:i + 4] for i in range(0, 64, 4))
    assert grouped in page and " ".join(old_fp[i:i + 4] for i in range(0, 64, 4)) in page


def test_a_batch_verified_under_a_key_replaced_meanwhile_is_refused(site, center, tmp_path, monkeypatch):  # noqa: F811
    """The old box's batch is being verified (outside any lock) when the new box enrols: once
    the batch reaches the site's row, the key it was verified with is no longer the site's, and
    it is refused — it never lands in the new box's journal."""
    import pytest

    from center.base import CenterError

    c, url = center
    enroll(site, url, c.add_site(SITE_ID))
    notes(site, 20)
    agent = Agent(site)
    captured = {}
    real_accept = c.accept

    def capture(site_id, batch):  # the old box's batch, as it reached the center
        captured["batch"] = batch
        raise CenterError(503, "unavailable", "held back for the test")

    monkeypatch.setattr(c, "accept", capture)
    with pytest.raises(Exception):
        agent.push_journal(0)
    monkeypatch.setattr(c, "accept", real_accept)
    new_dir = tmp_path / "new-box"
    init_site(new_dir, SITE_ID, SITE_NAME)
    real_check = type(c)._check_record
    replaced = []

    def check_then_replace(self, site_id, key, item, verify=True):  # the new box enrols while the old batch verifies
        if not replaced:
            replaced.append(1)
            with open_site(new_dir) as new_site:
                enroll(new_site, url, c.add_site(SITE_ID, replace_key=True))
        return real_check(self, site_id, key, item, verify)

    monkeypatch.setattr(type(c), "_check_record", check_then_replace)
    with pytest.raises(CenterError) as refused:
        c.accept(SITE_ID, captured["batch"])
    assert refused.value.status == 401 and "changed while this batch was checked" in str(refused.value)
    assert c.head(SITE_ID)["size"] == 0  # the new box's journal is empty: nothing of the old one in it
