"""Sync, first part: a site enrols with the reference center and sends its journal up over real
HTTP on loopback; the center verifies every record, the checkpoint and the consistency proof and
answers with a cosigned receipt; re-sends are harmless; tampering, forks, unknown and revoked
keys and replayed requests are refused."""

import base64
import hashlib
import json

from pathlib import Path

import pytest
import requests

from appliance.canonical import canonical_bytes
from appliance.journal import RECORD_SIGNING_CONTEXT
from appliance.keys import load_site_keys
from appliance.signednote import verify_note
from sync.agent import Agent, SyncError, enroll
from center.api import center_server
from center.core import CENTER_NAME, Center
from tests.helpers import free_port, json_line, run_appliance
from tests.pg import new_center_dir


@pytest.fixture
def center(tmp_path):
    c = Center(new_center_dir(tmp_path / "center"))
    port = free_port()
    server = center_server(c, "127.0.0.1", port, threads=4)
    server.start()
    yield c, f"http://127.0.0.1:{port}"
    server.stop()
    c.db.close()


def notes(site, n):
    for i in range(n):
        site.journal.record("staff.note", {"text": f"巡场记录 {i}", "author": "staff1"})


def test_enrol_and_send_the_journal_up(site, center):
    c, url = center
    notes(site, 30)
    with pytest.raises(SyncError, match="enrolment refused"):
        enroll(site, url, "not-the-token")
    token = c.add_site(site.config.site.id)
    enroll(site, url, token)
    with pytest.raises(SyncError, match="enrolment refused"):
        enroll(site, url, token)  # tokens work once
    agent = Agent(site)
    first = agent.sync_once()
    count = site.journal.count()
    assert first["acked"] == first["sent"] == count - 0 and first["pending"] == 0
    held = c.db.one("SELECT COUNT(*), MAX(seq) FROM records WHERE site = %s", (site.config.site.id,))
    assert tuple(held) == (count, count)
    receipt = site.store.get_meta("sync_receipt")
    cp_text = verify_note(receipt, CENTER_NAME, c.key.public_key())
    assert cp_text.split("\n")[1] == str(count)
    assert verify_note(receipt, site.config.site.id, site.public_key) == cp_text  # both signatures on one text
    # Later records go up from the center's head, with a consistency proof; a re-run sends nothing.
    notes(site, 5)
    second = agent.sync_once()
    assert second["sent"] == site.journal.count() - count and second["acked"] == site.journal.count()
    assert agent.sync_once()["sent"] == 0


def signed_batch(site, records, size, extra=None):
    from appliance import merkle
    from appliance.signednote import Checkpoint, sign_checkpoint

    key = load_site_keys(site.config.paths.keys_dir).signing
    leaves = site.journal.leaf_hashes(size)
    cp = sign_checkpoint(Checkpoint(site.config.site.id, size, merkle.root(leaves)), site.config.site.id, key)
    return {"records": records, "checkpoint": cp, **(extra or {})}


def test_tampering_a_fork_and_unknown_keys_are_refused(site, center):
    c, url = center
    notes(site, 10)
    enroll(site, url, c.add_site(site.config.site.id))
    agent = Agent(site)
    rows = site.store.reader().execute("SELECT seq, body, hash, sig FROM journal ORDER BY seq").fetchall()
    records = [{"seq": r[0], "body": r[1], "hash": r[2], "sig": r[3]} for r in rows]
    # A changed body (hash and signature no longer match): refused, nothing stored.
    bad = [dict(r) for r in records]
    bad[3]["body"] = bad[3]["body"].replace("staff1", "staff2")
    with pytest.raises(SyncError, match="bad_record"):
        agent._post("journal", signed_batch(site, bad, len(bad)))
    assert c.head(site.config.site.id)["size"] == 0
    agent.sync_once()
    # A fork: record 5 re-signed with other content by the (stolen) site key — refused and alarmed.
    key = load_site_keys(site.config.paths.keys_dir).signing
    obj = json.loads(records[4]["body"])
    obj["payload"] = {"text": "篡改", "author": "x"}
    body = canonical_bytes(obj)
    digest = hashlib.sha256(body).digest()
    forged = {"seq": 5, "body": body.decode(), "hash": digest.hex(),
              "sig": base64.b64encode(key.sign(RECORD_SIGNING_CONTEXT + digest)).decode()}
    with pytest.raises(SyncError, match="fork"):
        agent._post("journal", signed_batch(site, [forged], len(records)))
    alarms = [r[0] for r in c.db.all("SELECT kind FROM alarms")]
    assert "fork" in alarms
    # A re-sent old batch (its answer was lost): harmless — answered with the center's head and
    # latest receipt, nothing stored, no alarm.
    alarms_before = len(alarms)
    again = agent._post("journal", signed_batch(site, records[:3], 3))
    assert (again["accepted"], again["size"]) == (0, len(records)) and again["receipt"] == site.store.get_meta("sync_receipt")
    assert c.db.one("SELECT COUNT(*) FROM alarms")[0] == alarms_before
    # An old checkpoint that is not the tree the center holds: a fork, alarmed.
    from appliance.signednote import Checkpoint, sign_checkpoint

    forged_cp = sign_checkpoint(Checkpoint(site.config.site.id, 3, b"\x07" * 32), site.config.site.id, key)
    with pytest.raises(SyncError, match="fork"):
        agent._post("journal", {"records": [], "checkpoint": forged_cp})
    # A site saying it has fewer records than the center holds (restored from an old image):
    # alarmed once, shown as diverged on the center's pages.
    for size in (3, 3, 4):  # every round while it stays behind (and keeps writing): raised once
        agent._post("head", {"local_size": size})
    assert [r[0] for r in c.db.all("SELECT kind FROM alarms")].count("site_behind_center") == 1
    from center.ui import site_rows

    assert [r["sync_state"] for r in site_rows(c) if r["id"] == site.config.site.id] == ["diverged"]
    agent._post("head", {"local_size": len(records)})
    assert [r["sync_state"] for r in site_rows(c) if r["id"] == site.config.site.id] == ["in_sync"]
    # An unsigned request, a site nobody enrolled, a revoked site.
    plain = requests.post(f"{url}/center/v1/sites/{site.config.site.id}/head", json={}, timeout=10)
    assert plain.status_code == 401 and plain.json()["error"] == "bad_signature"
    c.revoke(site.config.site.id)
    with pytest.raises(SyncError, match="revoked_key"):
        agent.sync_once()
    assert "revoked_key" in [r[0] for r in c.db.all("SELECT kind FROM alarms")]
    # A new token for an enrolled site would replace its key: only when said so, and alarmed.
    from center.core import CenterError

    with pytest.raises(CenterError, match="enrolled already"):
        c.add_site(site.config.site.id)
    enroll(site, url, c.add_site(site.config.site.id, replace_key=True))  # the same key, enrolled again
    assert Agent(site).sync_once()["pending"] == 0  # the revocation is lifted, the journal goes on
    kinds = [r[0] for r in c.db.all("SELECT kind FROM alarms")]
    assert "key_replacement_issued" in kinds and "key_reenrolled" in kinds


def test_a_replayed_request_is_refused(site, center):
    c, url = center
    enroll(site, url, c.add_site(site.config.site.id))
    agent = Agent(site)
    prepared = agent.http.prepare_request(requests.Request(
        "POST", f"{url}/center/v1/sites/{site.config.site.id}/head", data=b"{}", headers={"Content-Type": "application/json"}))
    assert agent.http.send(prepared, timeout=10).status_code == 200
    again = agent.http.send(prepared, timeout=10)  # the same signature, the same nonce
    assert again.status_code == 401 and again.json()["error"] == "replay"


def test_from_the_command_line(data_dir, tmp_path):
    from tests.helpers import start_center

    center_dir = new_center_dir(tmp_path / "center")
    token = json_line(run_appliance("center", "site", "add", "test-county-01", "--data", str(center_dir)).stdout)["token"]
    proc, url = start_center(center_dir)
    try:
        enrolled = run_appliance("enroll", "--center", url, "--token", token, "--data", str(data_dir))
        assert enrolled.returncode == 0, enrolled.stderr
        once = run_appliance("sync", "once", "--data", str(data_dir))
        assert once.returncode == 0, once.stderr
        result = json_line(once.stdout)
        assert result["pending"] == 0 and result["acked"] >= 2
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_demo_center_acknowledges_the_journal_of_appliance_run():
    """`make run`'s local center: in the appliance's process with its own private PostgreSQL
    cluster in the data folder (started and stopped with it, as `make run` does), enrolled on
    first start, pointed at on every start; the sync worker's rounds get the journal
    acknowledged."""
    import shutil
    import sqlite3
    import tempfile

    from appliance.site import init_site
    from tests.helpers import SITE_ID, SITE_NAME, wait_for
    from tests.test_runtime import output, start, stop, wait_ready

    home = Path(tempfile.mkdtemp(prefix="demo-center-"))
    home.chmod(0o755)  # (PostgreSQL runs as 'nobody' under root: it must reach its folder)
    data_dir = home / "site"
    init_site(data_dir, SITE_ID, SITE_NAME)
    env = {"APPLIANCE_SYNC__DEMO_CENTER": "true", "APPLIANCE_SYNC__INTERVAL_S": "1",
           "APPLIANCE_DEMO_CENTER_SERVER": ""}  # not the tests' shared cluster: its own, like make run

    def sync_detail():
        with sqlite3.connect(data_dir / "appliance.db") as db:
            row = db.execute("SELECT detail FROM service_status WHERE name = 'sync'").fetchone()
        return row[0] if row and row[0].startswith("sync_ok ") else None  # worded on the console

    for _ in range(2):  # the second start finds the same center on a new port
        proc, port = start(data_dir, env=env)
        wait_ready(proc, port)
        assert wait_for(sync_detail, 20), output(proc)
        code, _ = stop(proc)
        assert code == 0, output(proc)
    with sqlite3.connect(data_dir / "appliance.db") as db:
        acked = int(db.execute("SELECT value FROM meta WHERE key = 'sync_acked'").fetchone()[0])
        records = db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    assert 0 < acked <= records
    assert (home / "site-center-pg" / "data" / "PG_VERSION").exists()
    shutil.rmtree(home, ignore_errors=True)


def test_a_week_offline_drains_by_itself_when_the_center_returns(data_dir, tmp_path):
    """`appliance run` with its sync worker: the center goes away, the venue goes on (a week's
    backlog, scaled down), the console says offline; the center comes back on the same address
    and the backlog drains with no operator action."""
    import sqlite3

    from appliance.site import open_site
    from tests.helpers import start_center, wait_for
    from tests.test_runtime import output, start, stop, wait_ready

    center_dir = new_center_dir(tmp_path / "center")
    token = json_line(run_appliance("center", "site", "add", "test-county-01", "--data", str(center_dir)).stdout)["token"]
    port = free_port()
    center, url = start_center(center_dir, port=port)
    assert run_appliance("enroll", "--center", url, "--token", token, "--data", str(data_dir)).returncode == 0
    center.terminate()
    center.wait(10)

    def meta(key):
        with sqlite3.connect(data_dir / "appliance.db") as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    env = {"APPLIANCE_SYNC__INTERVAL_S": "1", "APPLIANCE_SYNC__MAX_BACKOFF_S": "2"}
    proc, web_port = start(data_dir, env=env)
    try:
        wait_ready(proc, web_port)
        with open_site(data_dir) as site:  # the venue's week, while the center is away
            for day in range(7):
                with site.store.transaction() as conn:
                    site.journal.append_many(conn, [("staff.note", {"text": f"第 {day} 天 巡场 {i}", "author": "staff1"})
                                                    for i in range(3000)])
            total = site.journal.count()
        assert wait_for(lambda: meta("sync_state") == "offline", 20), output(proc)
        center, _ = start_center(center_dir, port=port)  # the center is back, same address
        try:
            assert wait_for(lambda: int(meta("sync_acked") or 0) >= total, 90), output(proc)
            # acknowledged batch by batch; "online" once the round that drained them ends
            assert wait_for(lambda: meta("sync_state") == "online", 30), output(proc)
        finally:
            center.terminate()
            center.wait(10)
    finally:
        code, _ = stop(proc)
    assert code == 0, output(proc)
    held = Center(center_dir).head("test-county-01")["size"]
    assert held >= total
