"""Recording as an independent camera and an evidence verifier tried it: no password of a camera
in the journal or the logs, footage linked to its session whatever the session's state or its
admission window, a camera's return recorded within seconds, a stream clock that runs wrong
caught, and evidence packages checked against a key held elsewhere, safely."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from appliance.config import CameraConfig
from appliance.recording import LIST_SUFFIX, RecorderService
from appliance.segments import recordings_dir, seal_segment
from appliance.site import open_site
from appliance.siteops.alarms import open_alarms
from appliance.siteops.plan import load_plan, parse_plan
from tests.camera import rtsp_camera
from tests.helpers import json_line, run_appliance, wait_for
from tests.test_recording import configure, ts
from tests.venue import todays_plan

PASSWORD = "S3cretCamPass"
CAMERA = CameraConfig(name="pb1-overview", room="PB1", url="rtsp://127.0.0.1:9/x")


def with_password(url: str) -> str:
    return url.replace("rtsp://", f"rtsp://admin:{PASSWORD}@")


def everything_written(data_dir) -> str:
    """The journal as `journal show` prints it, the logs and every file under recordings."""
    shown = run_appliance("journal", "show", "--data", str(data_dir)).stdout
    files = "".join(p.read_text(errors="replace") for p in data_dir.rglob("*.log")) if data_dir.exists() else ""
    db = (data_dir / "appliance.db").read_bytes().decode(errors="replace")
    wal = (data_dir / "appliance.db-wal").read_bytes().decode(errors="replace") if (data_dir / "appliance.db-wal").exists() else ""
    return shown + files + db + wal


def test_a_cameras_password_never_reaches_the_journal_the_logs_or_config_show(data_dir):
    with rtsp_camera() as camera:
        configure(data_dir, with_password(camera.main), segment_s=1, stall_s=4)
        site = open_site(data_dir)
        service = RecorderService(site)
        service.start()
        try:
            assert wait_for(lambda: service.step() and site.journal.records(kind="recording.segment"), 30)
            os.kill(camera.proc.pid, signal.SIGSTOP)  # the camera hangs: the connection open, nothing comes
            try:
                assert wait_for(lambda: service.step() and open_alarms(site), 40)
            finally:
                os.kill(camera.proc.pid, signal.SIGCONT)
        finally:
            service.stop()
        site.close()
    out = run_appliance("config", "show", "--data", str(data_dir)).stdout
    assert PASSWORD not in out and "admin:***@" in out
    written = everything_written(data_dir)
    assert "recording.camera_state" in written and PASSWORD not in written


def test_a_camera_down_at_start_is_journaled_without_its_password(data_dir):
    configure(data_dir, f"rtsp://admin:{PASSWORD}@127.0.0.1:9/Streaming/Channels/101")
    site = open_site(data_dir)
    service = RecorderService(site)
    service.start()
    try:
        assert wait_for(lambda: service.step() and open_alarms(site), 20)
    finally:
        service.stop()
    site.close()
    assert PASSWORD not in everything_written(data_dir)


def segment_file(folder, name: str, seconds: float = 1.0):
    """A real MP4 segment (ffmpeg's test source)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size=160x90:rate=10:duration={seconds}",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def plan_at(start: datetime, *, opens_min: int = 60) -> str:
    plan = todays_plan("test-county-01")
    for s in plan["sessions"]:
        s["start"] = (start if s["id"] == "S-0922-02" else start + timedelta(hours=6)).isoformat()
        s["end"] = (start + timedelta(hours=2) if s["id"] == "S-0922-02" else start + timedelta(hours=7)).isoformat()
        s["admission_opens_min"] = opens_min if s["id"] == "S-0922-02" else 30
    return json.dumps(plan, ensure_ascii=False)


def test_footage_of_a_scheduled_session_in_its_admission_window_is_linked(site):
    now = datetime.now(timezone.utc)
    load_plan(site, parse_plan(plan_at(now + timedelta(minutes=20))))  # still 'scheduled'
    path = segment_file(recordings_dir(site) / "pb1-overview", "a.mp4")
    sealed = seal_segment(site, CAMERA, path, (now - timedelta(seconds=1), now))
    record = site.journal.records(kind="recording.segment")[-1].payload
    assert record["sessions"] == ["S-0922-02"] and sealed is not None


def test_a_long_admission_window_gets_its_footage(site):
    now = datetime.now(timezone.utc)
    load_plan(site, parse_plan(plan_at(now + timedelta(minutes=500), opens_min=600)))  # opens 100 min ago
    path = segment_file(recordings_dir(site) / "pb1-overview", "b.mp4")
    seal_segment(site, CAMERA, path, (now - timedelta(seconds=1), now))
    assert site.journal.records(kind="recording.segment")[-1].payload["sessions"] == ["S-0922-02"]


def test_footage_sealed_before_its_session_was_planned_is_linked_when_the_plan_loads(site, tmp_path):
    from appliance.evidence import export, verify

    now = datetime.now(timezone.utc)
    path = segment_file(recordings_dir(site) / "pb1-overview", "c.mp4")
    sealed = seal_segment(site, CAMERA, path, (now - timedelta(seconds=1), now))
    assert site.journal.records(kind="recording.segment")[-1].payload["sessions"] == []
    load_plan(site, parse_plan(plan_at(now + timedelta(minutes=10))))  # planned afterwards
    linked = site.journal.records(kind="recording.linked")
    assert [r.payload for r in linked] == [{"session": "S-0922-02", "segments": [sealed.seq]}]
    package = tmp_path / "p.zip"
    result = export(site, "S-0922-02", package, by="staff1")
    assert result["segments"] == 1
    assert verify(package).ok  # the segment's sealing record travels with it, though it names no session


def test_a_stream_clock_that_runs_wrong_is_caught_and_the_wall_clock_used(data_dir):
    """The camera's stream says each segment holds 0.12 s while 2 s pass between closes (as a
    camera does whose timestamps jump): the sealer raises it, journals it, and takes the spans
    from the wall clock. The segment list stands in for the camera: GStreamer's test camera
    cannot be made to run its clock wrong."""
    configure(data_dir, "rtsp://127.0.0.1:9/x")
    site = open_site(data_dir)
    service = RecorderService(site)
    recorder = service.recorders["pb1-overview"]
    recorder.lists.mkdir(parents=True, exist_ok=True)
    base = time.time() - 30
    names = [f"seg{i}.mp4" for i in range(4)]
    for i, name in enumerate(names):
        path = segment_file(recorder.dir, name, 0.2)
        os.utime(path, (base + 2 * i, base + 2 * i))
    listing = recorder.lists / f"segments-1{LIST_SUFFIX}"
    listing.write_text("".join(f"{n},{0.12 * i:.6f},{0.12 * (i + 1):.6f}\n" for i, n in enumerate(names)))
    assert service.seal_pending() == 4
    kinds = [a["kind"] for a in open_alarms(site)]
    assert kinds == ["camera_clock"]
    mismatches = site.journal.records(kind="recording.clock_mismatch")
    assert len(mismatches) == 3 and mismatches[0].payload["wall_s"] == "2.000"
    spans = sorted((ts(r.payload["start"]), ts(r.payload["end"])) for r in site.journal.records(kind="recording.segment"))
    assert all(abs((e - s).total_seconds() - 2.0) < 0.01 for s, e in spans[1:])  # the wall clock's 2 s, not 0.12
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # and they abut
    service._pool.shutdown()
    site.close()


def test_footage_resumes_within_seconds_of_the_camera_returning_and_runs_abut(data_dir):
    with rtsp_camera() as camera:
        port = camera.port
        configure(data_dir, camera.main, segment_s=1, stall_s=4)
        site = open_site(data_dir)
        service = RecorderService(site)
        service.start()
        try:
            assert wait_for(lambda: service.step() and len(site.journal.records(kind="recording.segment")) >= 3, 30)
            camera.stop()
            down = time.time()
            assert wait_for(lambda: service.step() and open_alarms(site), 30)
            time.sleep(3)
            with rtsp_camera(port=port):
                back = time.time()
                before = {r.seq for r in site.journal.records(kind="recording.segment")}
                assert wait_for(lambda: service.step() and len(site.journal.records(kind="recording.segment")) > len(before) + 1, 30)
        finally:
            service.stop()
        records = site.journal.records(kind="recording.segment")
        first_after = min((r for r in records if r.seq not in before), key=lambda r: r.seq)
        resumed = ts(first_after.payload["start"]).timestamp()
        assert resumed - back < 2.0, (resumed - back, down)
        # Within one ffmpeg run the spans abut exactly (the last one, cut by the stop, too).
        after = sorted((r.payload for r in records if r.seq not in before), key=lambda p: p["start"])
        for a, b in zip(after, after[1:]):
            assert a["end"] == b["start"]
        site.close()


def test_an_offline_cameras_alarm_carries_the_session(data_dir):
    configure(data_dir, "rtsp://127.0.0.1:9/x")
    site = open_site(data_dir)
    load_plan(site, parse_plan(plan_at(datetime.now(timezone.utc) + timedelta(minutes=10))))
    service = RecorderService(site)
    service.start()
    try:
        assert wait_for(lambda: service.step() and open_alarms(site), 20)
    finally:
        service.stop()
    alarm = open_alarms(site)[0]
    assert alarm["kind"] == "camera_offline" and alarm["session"] == "S-0922-02"
    state = site.journal.records(kind="recording.camera_state")[0].payload
    assert state["sessions"] == ["S-0922-02"] and "since" in state
    site.close()


@pytest.fixture
def package(site, tmp_path):
    from appliance.evidence import export

    now = datetime.now(timezone.utc)
    load_plan(site, parse_plan(plan_at(now + timedelta(minutes=10))))
    for i in range(2):
        path = segment_file(recordings_dir(site) / "pb1-overview", f"s{i}.mp4")
        seal_segment(site, CAMERA, path, (now + timedelta(seconds=i), now + timedelta(seconds=i + 1)))
    out = tmp_path / "package.zip"
    export(site, "S-0922-02", out, by="staff1")
    return out


def evidence(*args):
    proc = run_appliance("evidence", "verify", *map(str, args))
    return proc.returncode, (json_line(proc.stdout) if proc.stdout.strip() else None), proc.stderr


def resign(package, new_package, key):
    """Everything re-signed with another key: records, checkpoint, manifest, site.pub."""
    import base64
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from appliance import merkle
    from appliance.journal import RECORD_SIGNING_CONTEXT
    from appliance.signednote import (
        Checkpoint,
        parse_checkpoint,
        parse_note,
        sign_checkpoint,
    )

    with zipfile.ZipFile(package) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    cp = parse_checkpoint(parse_note(parts["checkpoint.note"].decode()).text)
    manifest = json.loads(parts["manifest.json"])
    lines = []
    for line in parts["journal.jsonl"].decode().splitlines():
        item = json.loads(line)
        item["sig"] = base64.b64encode(key.sign(RECORD_SIGNING_CONTEXT + bytes.fromhex(item["hash"]))).decode()
        lines.append(json.dumps(item, ensure_ascii=False))
    parts["journal.jsonl"] = ("\n".join(lines) + "\n").encode()
    parts["checkpoint.note"] = sign_checkpoint(Checkpoint(manifest["site"], cp.size, cp.root), manifest["site"], key).encode()
    parts["manifest.sig"] = (base64.b64encode(key.sign(b"site-appliance/evidence-manifest/v1\n"
                                                       + hashlib.sha256(parts["manifest.json"]).digest())).decode() + "\n").encode()
    parts["site.pub"] = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    with zipfile.ZipFile(new_package, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return merkle


def test_a_package_resigned_under_another_key_fails_against_the_pinned_key(site, data_dir, package, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from appliance.keys import fingerprint

    ours = fingerprint(site.public_key)
    code, report, _ = evidence(package, "--fingerprint", ours)
    assert code == 0 and report["ok"] and report["key_fingerprint"] == ours and report["key_pinned"]
    forged = tmp_path / "forged.zip"
    resign(package, forged, Ed25519PrivateKey.generate())
    code, report, _ = evidence(forged)
    assert code == 0 and report["key_fingerprint"] != ours  # self-consistent: only the fingerprint tells
    code, report, _ = evidence(forged, "--fingerprint", ours)
    assert code == 1 and any("not the pinned" in p for p in report["problems"])
    code, report, _ = evidence(forged, "--key", data_dir / "keys" / "site.pub")
    assert code == 1 and sum("signature does not match" in p for p in report["problems"]) >= report["records"] + 1


def test_with_site_pub_replaced_every_record_is_named(package, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    with zipfile.ZipFile(package) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    parts["site.pub"] = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    swapped = tmp_path / "swapped.zip"
    with zipfile.ZipFile(swapped, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    code, report, _ = evidence(swapped)
    records = len(parts["journal.jsonl"].splitlines())
    named = [p for p in report["problems"] if p.startswith("journal.jsonl record")]
    assert code == 1 and len(named) == records


def test_a_file_that_is_not_a_zip_is_unusable_input(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is no package" * 10)
    code, report, err = evidence(junk)
    assert code == 2 and report is None and "not a readable ZIP" in err


def rebuilt(package, tmp_path, name: str, write) -> object:
    """The package with one part replaced by what ``write`` streams into it (deflated)."""
    with zipfile.ZipFile(package) as z:
        parts = {n: z.read(n) for n in z.namelist() if n != name}
    out = tmp_path / f"hostile-{name}.zip"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for part, data in parts.items():
            z.writestr(part, data)
        with z.open(name, "w", force_zip64=True) as f:
            write(f)
    return out


def verify_measured(path) -> tuple[int, dict, int, float]:
    """`evidence verify` in a child of a small wrapper, which reports the child's peak memory."""
    from tests.helpers import APPLIANCE

    wrapper = ("import json, resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(json.dumps({'code': p.returncode, 'out': p.stdout, 'err': p.stderr, "
               "'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")
    started = time.monotonic()
    proc = subprocess.run(["python3", "-c", wrapper, APPLIANCE, "evidence", "verify", str(path)], capture_output=True,
                          text=True, timeout=120)
    result = json.loads(proc.stdout)
    assert "Traceback" not in result["err"]
    return result["code"], json.loads(result["out"]), result["peak_kib"], time.monotonic() - started


def test_a_zip_bomb_is_refused_before_it_is_inflated(package, tmp_path):
    def zeros(f, mib=1024):  # 1 GiB of zeros: ~1 MB packed
        block = bytes(1 << 20)
        for _ in range(mib):
            f.write(block)

    bomb = rebuilt(package, tmp_path, "manifest.json", zeros)
    assert bomb.stat().st_size < 3 << 20
    code, report, peak_kib, took = verify_measured(bomb)
    assert code == 1 and "more than" in report["problems"][0]
    assert peak_kib < 300_000 and took < 30  # it was 2.3 GB before


def test_a_journal_of_one_endless_line_is_refused_line_by_line(package, tmp_path):
    def one_line(f):  # 400 MiB with no newline: under the part's limit, far over a line's
        block = b"x" * (1 << 20)
        for _ in range(400):
            f.write(block)

    hostile = rebuilt(package, tmp_path, "journal.jsonl", one_line)
    code, report, peak_kib, took = verify_measured(hostile)
    assert code == 1
    assert any(p.startswith("journal.jsonl line 1: longer than") for p in report["problems"]), report["problems"]
    assert peak_kib < 300_000 and took < 60


def test_json_nested_too_deeply_is_a_named_problem_not_a_crash(package, tmp_path):
    deep = b"[" * 200_000 + b"]" * 200_000
    for name in ("manifest.json", "proofs.json"):
        code, report, _, _ = verify_measured(rebuilt(package, tmp_path, name, lambda f: f.write(deep)))
        assert code == 1 and any(p.startswith((name, "site.pub or manifest.json")) and "nested too deeply" in p
                                 for p in report["problems"]), report["problems"]
    with zipfile.ZipFile(package) as z:
        lines = z.read("journal.jsonl").splitlines(keepends=True)
    code, report, _, _ = verify_measured(rebuilt(package, tmp_path, "journal.jsonl",
                                                 lambda f: f.write(b"".join(lines[:-1]) + deep + b"\n")))
    assert code == 1 and f"journal.jsonl line {len(lines)}: unreadable (nested too deeply)" in report["problems"]


def test_a_password_holding_an_at_sign_is_hidden_whole():
    from appliance.credentials import hide_url_passwords

    line = "opening rtsp://admin:Admin@123@10.0.0.5:554/Streaming/101 and rtsp://op:p@ss:w0rd@cam-2/main failed"
    assert hide_url_passwords(line) == "opening rtsp://admin:***@10.0.0.5:554/Streaming/101 and rtsp://op:***@cam-2/main failed"
    assert hide_url_passwords("rtsp://admin:Admin@123@10.0.0.5") == "rtsp://admin:***@10.0.0.5"
    assert hide_url_passwords("mail me at a@b.cn, rtsp://10.0.0.5/x") == "mail me at a@b.cn, rtsp://10.0.0.5/x"


def test_the_live_picture_page_only_reads_what_the_recorder_keeps(login, web_site):
    """The web never decodes: it asks for the picture (live.wanted) and serves live.jpg while it
    is fresh; with no recorder keeping it, 503 at once; an unknown camera 404."""
    from appliance.live_pictures import FRESH_S, PICTURE, WANTED

    with web_site.store.transaction() as conn:
        conn.execute("INSERT INTO camera_streams (name, room, live_url, updated) VALUES ('pb1-overview', 'PB1', "
                     "'rtsp://127.0.0.1:9/x', '2026-12-06T00:00:00Z')")
    supervisor = login("supervisor")
    folder = recordings_dir(web_site) / "pb1-overview"
    started = time.monotonic()
    assert supervisor.get("/review/live/pb1-overview.jpg").status_code == 503
    assert time.monotonic() - started < 1.0 and (folder / WANTED).exists()
    jpeg = b"\xff\xd8\xff\xe0" + b"picture" * 100 + b"\xff\xd9"
    (folder / PICTURE).write_bytes(jpeg)
    shown = supervisor.get("/review/live/pb1-overview.jpg")
    assert shown.status_code == 200 and shown.data == jpeg and shown.mimetype == "image/jpeg"
    assert shown.headers["Cache-Control"] == "no-store"
    stale = time.time() - FRESH_S - 5
    os.utime(folder / PICTURE, (stale, stale))
    assert supervisor.get("/review/live/pb1-overview.jpg").status_code == 503  # an old picture is not live
    assert supervisor.get("/review/live/no-such-camera.jpg").status_code == 404
    assert login("staff").get("/review/live/pb1-overview.jpg").status_code in (302, 403)


def test_the_recorder_keeps_a_picture_while_someone_watches_and_stops_after(tmp_path):
    """LivePictures against a real RTSP camera: asked for, a fresh JPEG within seconds; nobody
    watching for IDLE_S, its ffmpeg stopped."""
    from appliance.live_pictures import IDLE_S, PICTURE, LivePictures, latest, want

    folder = tmp_path / "pb1-overview"
    with rtsp_camera() as camera:
        pictures = LivePictures("ffmpeg", {"pb1-overview": (camera.sub, folder)})
        try:
            pictures.step()
            assert pictures.procs == {}  # nobody watching: no decoder
            want(folder)
            pictures.step()
            assert wait_for(lambda: latest(folder) is not None, 20)
            assert (folder / PICTURE).read_bytes()[:2] == b"\xff\xd8"  # a JPEG
            proc = pictures.procs["pb1-overview"]
            pictures.step(now=time.time() + IDLE_S + 1)  # nobody has looked since
            assert "pb1-overview" not in pictures.procs and proc.poll() is not None
        finally:
            pictures.stop()


def test_a_package_of_endless_bad_lines_is_counted_not_kept(package, tmp_path):
    """16 MiB of empty lines (a 17 KB ZIP): a thousand problems named, the rest counted, reading
    stopped — not sixteen million messages in memory."""
    hostile = rebuilt(package, tmp_path, "journal.jsonl", lambda f: [f.write(b"\n" * (1 << 20)) for _ in range(16)])
    code, report, peak_kib, took = verify_measured(hostile)
    assert code == 1 and len(report["problems"]) <= 1002
    assert any("more than 1000 problems" in p for p in report["problems"])
    assert report["problems"][-1].startswith("… and ") and peak_kib < 300_000 and took < 30


def test_small_tampering_with_types_is_a_named_problem(package, tmp_path):
    """A float or an integer beyond 2^53 slipped into a body, a list among the manifest's
    records: each named, never a traceback."""
    with zipfile.ZipFile(package) as z:
        lines = z.read("journal.jsonl").decode().splitlines(keepends=True)
        manifest = json.loads(z.read("manifest.json"))
    item = json.loads(lines[0])
    item["body"] = item["body"].replace('"seq":', '"x":1.5,"seq":', 1)
    tampered = [json.dumps(item, ensure_ascii=False) + "\n"] + lines[1:]
    code, report, _, _ = verify_measured(rebuilt(package, tmp_path, "journal.jsonl", lambda f: f.write("".join(tampered).encode())))
    assert code == 1 and any(p.startswith(f"journal.jsonl record {item['seq']}: body is not in canonical form")
                             for p in report["problems"]), report["problems"]
    manifest["records"] = [[1]] + manifest["records"]
    code, report, _, _ = verify_measured(rebuilt(package, tmp_path, "manifest.json", lambda f: f.write(json.dumps(manifest).encode())))
    assert code == 1 and "manifest.json: records holds something other than sequence numbers" in report["problems"]
