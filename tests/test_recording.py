"""Recording against a real RTSP server (GStreamer) with real ffmpeg: segments cut, playable,
sealed into the journal with their hash and linked to the session of their room; a camera that
goes away raises an alarm and is reconnected."""

import json
import os
import subprocess
import time
from datetime import datetime

import pytest

from appliance.recording import RecorderService
from appliance.segments import recordings_dir, sha256_file
from appliance.site import open_site
from appliance.siteops.alarms import open_alarms
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from tests.camera import rtsp_camera
from tests.helpers import wait_for
from tests.venue import todays_plan


def configure(data_dir, url, *, segment_s=2, stall_s=0):
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + f"""
[recording]
segment_s = {segment_s}
stall_s = {stall_s}
expected_mbps = 0.01  # the free-space check at session start is tested in test_retention
[[recording.cameras]]
name = "pb1-overview"
room = "PB1"
url = "{url}"
""", encoding="utf-8")


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_segments_are_recorded_sealed_and_linked_to_the_session(data_dir):
    with rtsp_camera() as camera:
        configure(data_dir, camera.main)
        site = open_site(data_dir)
        load_plan(site, parse_plan(json.dumps(todays_plan("test-county-01"), ensure_ascii=False)))
        change_state(site, "S-0922-02", "admitting", by="staff1")  # the evaluation in PB1: admission is open
        service = RecorderService(site)
        service.start()
        try:
            for _ in range(120):
                service.step()
                if len(site.journal.records(kind="recording.segment")) >= 3:
                    break
                time.sleep(0.1)
        finally:
            service.stop()
        records = [r.payload for r in site.journal.records(kind="recording.segment")]
        assert len(records) >= 3
        base = recordings_dir(site)
        for r in records:
            path = base / r["file"]
            assert sha256_file(path) == r["sha256"] and path.stat().st_size == r["size"]
            assert r["camera"] == "pb1-overview" and r["room"] == "PB1" and r["sessions"] == ["S-0922-02"]
            streams = json.loads(subprocess.run(
                ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", str(path)],
                capture_output=True, text=True, check=True).stdout)["streams"]
            assert sorted(s["codec_name"] for s in streams) == ["aac", "h264"]  # video copied, audio kept
        # Full segments (not the first, which starts mid-interval, nor the last, cut by the stop) are ~2 s,
        # and consecutive segments follow each other without a gap.
        assert all(1500 <= r["duration_ms"] <= 3000 for r in records[1:-1])
        for a, b in zip(records, records[1:]):
            assert abs((ts(b["start"]) - ts(a["end"])).total_seconds()) < 1.0
        linked = site.store.reader().execute("SELECT COUNT(*) FROM segment_sessions WHERE session = 'S-0922-02'").fetchone()[0]
        assert linked == len(records)
        # Sealing follows the segment's close within the 2 s goal.
        assert max(seconds for _, seconds in service.sealed) < 2.0
        site.close()


def test_a_camera_that_goes_away_raises_an_alarm_and_is_reconnected(data_dir):
    with rtsp_camera() as camera:
        port = camera.port
        configure(data_dir, camera.main, segment_s=1, stall_s=4)
        site = open_site(data_dir)
        service = RecorderService(site)
        service.start()
        try:
            assert wait_for(lambda: service.step() and site.journal.records(kind="recording.segment"), 20)
            camera.stop()
            assert wait_for(lambda: service.step() and open_alarms(site), 30)
            alarm = open_alarms(site)[0]
            assert alarm["kind"] == "camera_offline" and alarm["detail"]["camera"] == "pb1-overview"
            before = len(site.journal.records(kind="recording.segment"))
            with rtsp_camera(port=port):
                assert wait_for(lambda: service.step() and len(site.journal.records(kind="recording.segment")) > before + 1, 60)
                service.step()
        finally:
            service.stop()
        states = [r.payload["state"] for r in site.journal.records(kind="recording.camera_state")]
        assert states == ["offline", "recording"]
        site.close()


def test_an_unreachable_camera_is_reported_not_fatal(data_dir):
    configure(data_dir, "rtsp://127.0.0.1:9/Streaming/Channels/101")
    site = open_site(data_dir)
    service = RecorderService(site)
    service.start()
    try:
        deadline = time.monotonic() + 10  # the start runs on its own thread: the refusal comes at once
        while not open_alarms(site) and time.monotonic() < deadline:
            assert service.step() == 'recorder_summary {"recording": 0, "total": 1}'
            time.sleep(0.1)
        assert open_alarms(site)[0]["kind"] == "camera_offline"
        assert "pb1-overview" in site.journal.records(kind="recording.camera_state")[0].payload["camera"]
    finally:
        service.stop()
        site.close()


def test_evidence_package_verifies_and_locates_an_altered_byte(data_dir, tmp_path):
    import zipfile

    from appliance.evidence import export, verify
    from tests.helpers import json_line, run_appliance

    with rtsp_camera("--width", "1280", "--height", "720", "--bitrate", "6000") as camera:
        configure(data_dir, camera.main)
        site = open_site(data_dir)
        load_plan(site, parse_plan(json.dumps(todays_plan("test-county-01"), ensure_ascii=False)))
        change_state(site, "S-0922-02", "admitting", by="staff1")
        service = RecorderService(site)
        service.start()
        try:
            wait_for(lambda: service.step() and len(site.journal.records(kind="recording.segment")) >= 2, 30)
        finally:
            service.stop()
    change_state(site, "S-0922-02", "in_progress", by="staff1")
    package = tmp_path / "S-0922-02.zip"
    result = export(site, "S-0922-02", package, by="staff1")
    site.close()
    assert result["segments"] >= 2 and result["records"] >= 4
    proc = run_appliance("evidence", "verify", str(package))
    report = json_line(proc.stdout)
    assert proc.returncode == 0 and report["ok"] and report["segments"] == result["segments"], report
    # One byte of one segment changed: detected and located to its MiB.
    with zipfile.ZipFile(package) as z:
        manifest = json.loads(z.read("manifest.json"))
        target = max(manifest["segments"], key=lambda s: s["size"])
        entries = {n: z.read(n) for n in z.namelist()}
    offset = target["size"] - 10 if target["size"] < 1 << 20 else (1 << 20) + 5
    data = bytearray(entries[target["file"]])
    data[offset] ^= 0x01
    entries[target["file"]] = bytes(data)
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(altered, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content)
    report = verify(altered)
    chunk = offset // (1 << 20)
    assert not report.ok and len(report.problems) == 1
    assert target["file"] in report.problems[0] and f"bytes {chunk << 20}–" in report.problems[0]
    # A journal record changed: its line is named, and the manifest still lists it.
    lines = entries["journal.jsonl"].decode().splitlines()
    item = json.loads(lines[0])
    item["body"] = item["body"].replace("staff1", "staff2")
    entries["journal.jsonl"] = ("\n".join([json.dumps(item, ensure_ascii=False), *lines[1:]]) + "\n").encode()
    entries[target["file"]] = bytes(data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:])
    with zipfile.ZipFile(altered, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content)
    problems = verify(altered).problems
    assert any(f"record {item['seq']}: hash does not match" in p for p in problems)
    assert any("missing or invalid" in p for p in problems)


def _mp4s(site):
    return sorted(p for p in recordings_dir(site).glob("*/*.mp4"))


def test_kill_9_mid_recording_loses_no_closed_segment(data_dir):
    """`appliance record` killed with SIGKILL: its ffmpeg (own session) keeps recording; the next
    start stops that orphan gently, and every segment it closed is sealed once."""
    import signal as sig

    from appliance.verify import verify_journal
    from tests.test_runtime import output, start, stop

    with rtsp_camera() as camera:
        configure(data_dir, camera.main, segment_s=1)
        proc, _ = start(data_dir, "record")
        site = open_site(data_dir)
        assert wait_for(lambda: len(site.journal.records(kind="recording.segment")) >= 2, 30), output(proc)
        os.kill(proc.pid, sig.SIGKILL)
        proc.wait(5)
        orphan = int((recordings_dir(site) / "pb1-overview" / "ffmpeg.pid").read_text())
        time.sleep(2.5)  # the orphan records on, unsealed
        assert os.path.exists(f"/proc/{orphan}")
        proc, _ = start(data_dir, "record")
        assert wait_for(lambda: not os.path.exists(f"/proc/{orphan}"), 20), "the orphan ffmpeg was not stopped"
        time.sleep(3)
        code, _ = stop(proc)
        assert code == 0, output(proc)
    sealed = [r.payload for r in site.journal.records(kind="recording.segment")]
    files = [r["file"] for r in sealed]
    assert len(files) == len(set(files))  # none twice
    on_disk = {str(p.relative_to(recordings_dir(site))) for p in _mp4s(site)}
    assert on_disk == set(files)  # every closed segment sealed, the orphan's included
    for r in sealed:
        assert sha256_file(recordings_dir(site) / r["file"]) == r["sha256"]
    assert verify_journal(site.store.reader(), site.config.site.id, site.public_key).ok
    site.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_a_full_recordings_disk_stops_recording_not_the_journal(data_dir, tmp_path):
    """Recordings on their own (tiny) filesystem: when it fills, the camera's outage and the
    disk are alarmed, footage of no session is deleted to make room (journaled), what was
    sealed and kept still verifies, and the journal keeps working."""
    mount = tmp_path / "recordings"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], check=True)
    try:
        with rtsp_camera("--width", "1280", "--height", "720", "--bitrate", "4000") as camera:
            configure(data_dir, camera.main, segment_s=1, stall_s=3)
            path = data_dir / "appliance.toml"
            path.write_text(path.read_text().replace("[recording]\n", f'[recording]\ndir = "{mount}"\n'), encoding="utf-8")
            site = open_site(data_dir)
            service = RecorderService(site)
            service.start()
            try:
                kinds = lambda: {a["kind"] for a in open_alarms(site)}  # noqa: E731
                assert wait_for(lambda: service.step() and {"camera_offline", "disk_critical"} <= kinds(), 60), kinds()
                note = site.journal.record("staff.note", {"text": "录像盘已满，通知技术人员", "author": "staff1"})
                assert note.seq > 0  # the journal, on the data disk, is unaffected
            finally:
                service.stop()
        sealed = [r.payload for r in site.journal.records(kind="recording.segment")]
        assert sealed, "something was recorded before the disk filled"
        # Footage of no session made room (oldest first, journaled); what remains is intact.
        deleted = {r.payload["file"]: r.payload["reason"] for r in site.journal.records(kind="recording.deleted")}
        assert set(deleted.values()) <= {"disk_pressure"}
        for r in sealed:
            if r["file"] not in deleted:
                assert sha256_file(recordings_dir(site) / r["file"]) == r["sha256"]
        site.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
