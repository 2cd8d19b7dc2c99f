"""The center's footage store: content-addressed objects in a POSIX directory or an S3 object
store (a real S3 API server on loopback: moto's server, the S3-compatible server installable
from PyPI), tus uploads taken into it, footage streamed back with HTTP range requests, the
scrub finding a damaged or missing object, and a full store refusing uploads cleanly while the
site keeps its footage."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import time

import pytest
import requests

from center.api import center_server
from center.core import Center
from center.footage import PosixStore, S3Store, StoreFull, shard
from center.scrub import scrub
from sync.agent import Agent, SyncError, enroll
from tests.helpers import free_port
from tests.pg import new_center_dir
from tests.test_center_hardening import STAFF, staff_login
from tests.test_sync_media import SITE, acked, clip, recorded  # noqa: F401  (fixtures)


def _object(tmp_path, data: bytes):
    path = tmp_path / "incoming.bin"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_the_posix_store_keeps_objects_whole_under_their_hash(tmp_path):
    store = PosixStore(tmp_path / "footage")
    data = os.urandom(3 << 20)
    path, sha = _object(tmp_path, data)
    store.put_file(sha, path)
    assert not path.exists()  # taken in
    assert store.path(sha) == tmp_path / "footage" / "objects" / sha[:2] / sha[2:4] / sha
    assert store.exists(sha) and store.size(sha) == len(data) and store.digest(sha) == sha
    assert b"".join(store.read(sha, 1000, 1999)) == data[1000:2000]
    assert b"".join(store.read(sha, len(data) - 10)) == data[-10:]
    again, _ = _object(tmp_path, data)
    store.put_file(sha, again)  # the same object again: nothing changes, the copy is dropped
    assert not again.exists() and store.digest(sha) == sha
    assert not list((tmp_path / "footage").rglob("*.tmp"))
    with pytest.raises(ValueError):
        shard("../../etc/passwd")
    # A writer killed mid-put leaves its temporary file: the sweep removes it once old, and
    # leaves a recent one (a put that may still be running) and every object alone.
    old = store.path(sha).with_name(f".{sha}.dead.tmp")
    old.write_bytes(data[:1000])
    os.utime(old, (time.time() - 7 * 3600,) * 2)
    fresh = store.path(sha).with_name(f".{sha}.running.tmp")
    fresh.write_bytes(data[:10])
    assert store.sweep() == 1 and not old.exists() and fresh.exists() and store.digest(sha) == sha


@pytest.fixture
def s3_server(monkeypatch):
    """moto's S3 API server as its own process on a loopback port (HTTP with SigV4, the calls
    boto3 makes against any S3 store)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for key, value in {"AWS_ACCESS_KEY_ID": "center-test", "AWS_SECRET_ACCESS_KEY": "center-test-secret",
                       "AWS_DEFAULT_REGION": "cn-north-1"}.items():
        monkeypatch.setenv(key, value)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url, timeout=1)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("moto's S3 server did not start")
            time.sleep(0.1)
    import boto3

    boto3.client("s3", endpoint_url=url, region_name="cn-north-1").create_bucket(
        Bucket="center-footage", CreateBucketConfiguration={"LocationConstraint": "cn-north-1"})
    yield url
    proc.terminate()
    proc.wait(10)


def test_the_s3_store_keeps_objects_whole_and_refuses_what_it_cannot_reach(tmp_path, s3_server):
    store = S3Store("center-footage", endpoint_url=s3_server, region="cn-north-1", prefix="province/")
    data = os.urandom(2 << 20)
    path, sha = _object(tmp_path, data)
    store.put_file(sha, path)
    assert not path.exists() and store.exists(sha) and store.size(sha) == len(data)
    assert store.client.head_object(Bucket="center-footage", Key=f"province/{shard(sha)}")["ContentLength"] == len(data)
    assert b"".join(store.read(sha, 5, 9)) == data[5:10] and store.digest(sha) == sha
    assert not store.exists("0" * 64)
    # A put killed mid-way leaves an unfinished multipart upload; the sweep aborts it. (moto
    # reports every upload as initiated in 2010, so the age rule is tested on the POSIX store.)
    store.client.create_multipart_upload(Bucket="center-footage", Key=f"province/{shard('1' * 64)}")
    assert store.sweep(older_than_s=0) == 1
    assert not store.client.list_multipart_uploads(Bucket="center-footage").get("Uploads")
    gone = S3Store("center-footage", endpoint_url=f"http://127.0.0.1:{free_port()}", region="cn-north-1")
    gone.client.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(OSError, match="cannot be reached"):
        gone.exists(sha)


def _serve(c: Center):
    port = free_port()
    server = center_server(c, "127.0.0.1", port, threads=4)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def test_segments_go_to_the_object_store_and_play_back_by_range(recorded, tmp_path, s3_server):  # noqa: F811
    site, sealed = recorded
    c = Center(new_center_dir(tmp_path / "center", footage={"backend": "s3", "bucket": "center-footage",
                                                             "endpoint_url": s3_server, "region": "cn-north-1"}))
    server, url = _serve(c)
    try:
        enroll(site, url, c.add_site(SITE))
        assert Agent(site).sync_once()["media"] == {"uploaded": 2, "confirmed": 2, "pending": 0}
        assert all(acked(site))
        for s in sealed:  # in the bucket, under the sealed hash, nowhere on the center's disk
            assert c.footage.digest(s.sha256) == s.sha256
        assert not list(c.staging.glob("*.part"))
        # A supervisor's player seeks: the center asks the store for that range only.
        from center.accounts import CenterStaff

        CenterStaff(c).set(*STAFF)
        staff = requests.Session()
        staff_login(staff, url)
        whole = sealed[0].path.read_bytes()
        part = staff.get(f"{url}/center/ui/sites/{SITE}/media/{sealed[0].seq}", headers={"Range": "bytes=1000-1999"}, timeout=10)
        assert part.status_code == 206 and part.content == whole[1000:2000]
        assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(whole)}"
        full = staff.get(f"{url}/center/ui/sites/{SITE}/media/{sealed[0].seq}", timeout=10)
        assert full.status_code == 200 and full.content == whole and full.headers["Accept-Ranges"] == "bytes"
        beyond = staff.get(f"{url}/center/ui/sites/{SITE}/media/{sealed[0].seq}",
                           headers={"Range": f"bytes={len(whole) + 10}-"}, timeout=10)
        assert beyond.status_code == 416
    finally:
        server.stop()
        c.db.close()


def test_the_scrub_finds_a_damaged_or_missing_object_and_raises_an_alarm(recorded, tmp_path):  # noqa: F811
    site, sealed = recorded
    c = Center(new_center_dir(tmp_path / "center"))
    server, url = _serve(c)
    try:
        enroll(site, url, c.add_site(SITE))
        Agent(site).sync_once()
    finally:
        server.stop()
    assert scrub(c) == {"checked": 2, "bytes": sum(s.path.stat().st_size for s in sealed), "bad": [], "swept": 0}
    damaged = c.footage.path(sealed[0].sha256)
    data = bytearray(damaged.read_bytes())
    data[4096] ^= 0x40  # one bit rots on the disk
    damaged.write_bytes(bytes(data))
    c.footage.path(sealed[1].sha256).unlink()  # and an object is lost
    result = scrub(c)
    assert sorted(b["problem"] for b in result["bad"]) == ["footage_missing", "footage_scrub_mismatch"]
    alarms = {kind: (site_id, detail) for kind, site_id, detail in c.db.all("SELECT kind, site, detail FROM alarms")}
    assert alarms["footage_scrub_mismatch"][0] == SITE and str(sealed[0].seq) in alarms["footage_scrub_mismatch"][1]
    assert alarms["footage_missing"][0] == SITE
    assert c.db.all("SELECT scrub_ok FROM objects ORDER BY scrub_ok") == [(False,), (False,)]
    # A scrub limited to objects not checked for a day checks none now.
    assert scrub(c, older_than_days=1)["checked"] == 0
    c.db.close()


def test_a_full_store_refuses_uploads_cleanly_and_the_site_keeps_its_footage(recorded, tmp_path, monkeypatch):  # noqa: F811
    site, sealed = recorded
    c = Center(new_center_dir(tmp_path / "center"))
    server, url = _serve(c)

    def no_room(self, sha256, source):
        raise StoreFull(errno.ENOSPC, "No space left on device")

    try:
        enroll(site, url, c.add_site(SITE))
        monkeypatch.setattr(PosixStore, "put_file", no_room)
        with pytest.raises(SyncError, match="507.*footage store is full"):  # the round says why
            Agent(site).sync_once()
        assert acked(site) == [None, None] and all(s.path.exists() for s in sealed)  # the site keeps its copies
        assert "footage_store_full" in [r[0] for r in c.db.all("SELECT kind FROM alarms")]
        monkeypatch.undo()  # room again: the next round confirms both, without sending them again
        assert Agent(site).sync_once()["media"]["confirmed"] == 2
        assert all(acked(site))
    finally:
        server.stop()
        c.db.close()


def test_a_session_archive_shows_its_timeline_and_takes_a_legal_hold(recorded, tmp_path):  # noqa: F811
    import re

    site, sealed = recorded
    c = Center(new_center_dir(tmp_path / "center"))
    server, url = _serve(c)
    try:
        enroll(site, url, c.add_site(SITE))
        Agent(site).sync_once()
        from center.accounts import CenterStaff

        CenterStaff(c).set(*STAFF)
        staff = requests.Session()
        staff_login(staff, url)
        page = staff.get(f"{url}/center/ui/sites/{SITE}/sessions/S-0922-02", timeout=10).text
        kinds = re.findall(r'<tr data-kind="([a-z_.]+)">', page)
        assert "session.state" in kinds and "场次状态变更" in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        held = staff.post(f"{url}/center/ui/sites/{SITE}/sessions/S-0922-02/hold",
                          data={"reason": "投诉编号 2026-17", "csrf_token": token}, timeout=10)
        assert held.status_code == 200 and "投诉编号 2026-17" in held.text
        assert c.db.all("SELECT legal_hold IS NOT NULL FROM objects") == [(True,), (True,)]
        assert c.db.value("SELECT action FROM center_log ORDER BY seq DESC LIMIT 1") == "hold.placed"
    finally:
        server.stop()
        c.db.close()


def test_an_evidence_package_from_the_center_verifies_offline_with_the_sites_tools(recorded, tmp_path):  # noqa: F811
    import json
    import zipfile

    from appliance.evidence import verify
    from appliance.keys import fingerprint
    from tests.helpers import run_appliance

    site, sealed = recorded
    center_dir = new_center_dir(tmp_path / "center")
    c = Center(center_dir)
    server, url = _serve(c)
    try:
        enroll(site, url, c.add_site(SITE))
        Agent(site).sync_once()
    finally:
        server.stop()
        c.db.close()
    out = tmp_path / "S-0922-02.zip"
    made = run_appliance("center", "evidence", "--data", str(center_dir), "--site", SITE, "--session", "S-0922-02",
                         "--out", str(out), "--by", "zhang.wei")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["segments"] == 2
    site_fp = fingerprint(site.public_key)
    checked = run_appliance("evidence", "verify", str(out), "--fingerprint", site_fp)
    report = json.loads(checked.stdout)
    c = Center(center_dir)
    try:
        center_fp = fingerprint(c.key.public_key())
        assert c.db.value("SELECT action FROM center_log ORDER BY seq DESC LIMIT 1") == "evidence.exported"
        # A copy is kept in the footage store under its own SHA-256, listed by session.
        kept = c.db.one("SELECT sha256, size FROM packages WHERE site = %s AND session = 'S-0922-02'", (SITE,))
        assert kept[0] == hashlib.sha256(out.read_bytes()).hexdigest() and c.footage.digest(kept[0]) == kept[0]
    finally:
        c.db.close()
    assert checked.returncode == 0 and report["ok"], report
    assert report["segments"] == 2 and report["exported_by_center"] == center_fp and report["key_pinned"]
    # The documented check with standard tools alone passes too (docs/evidence.md).
    from tests.test_evidence_docs import run_doc_block

    by_hand = run_doc_block(tmp_path / "by-hand", out)
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr
    # One byte of footage changed inside the package: found, and where.
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(damaged, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("segments/") and info.filename.endswith("segment-0.mp4"):
                data = data[:5000] + bytes([data[5000] ^ 1]) + data[5001:]
            dst.writestr(info, data)
    bad = verify(damaged, fingerprint_hex=site_fp)
    assert not bad.ok and any("bytes 0–1048575" in p for p in bad.problems)
    # A manifest altered after the center signed it: refused.
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(forged, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "manifest.json":
                data = data.replace(b'"zhang.wei"', b'"li.si"')
            dst.writestr(info, data)
    assert [d["code"] for d in verify(forged, fingerprint_hex=site_fp).details] == ["manifest_signature"]
