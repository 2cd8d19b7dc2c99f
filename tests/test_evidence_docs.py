"""docs/evidence.md's check with standard tools (unzip, sha256sum, openssl, python3's standard
library) runs against a real package, and rejects one with a changed byte."""

import json
import re
import subprocess
import zipfile
from datetime import datetime, timedelta, timezone

from appliance.evidence import export
from appliance.recording import NAME_FORMAT
from appliance.segments import recordings_dir, seal_segment
from appliance.site import open_site
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from tests.venue import ROOT, todays_plan

DOC = (ROOT / "docs" / "evidence.md").read_text(encoding="utf-8")
DOC_BLOCK = re.search(r"## Checking with standard tools alone.*?```sh\n(.*?)```", DOC, re.S).group(1)
REMOTE_BLOCK = re.search(r"## A remote session.*?```sh\n(.*?)```", DOC, re.S).group(1)


def make_package(data_dir, out):
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + '\n[[recording.cameras]]\nname = "pb1"\nroom = "PB1"\nurl = "rtsp://127.0.0.1:9/x"\n')
    site = open_site(data_dir)
    load_plan(site, parse_plan(json.dumps(todays_plan("test-county-01"), ensure_ascii=False)))
    change_state(site, "S-0922-02", "admitting", by="staff1")
    folder = recordings_dir(site) / "pb1"
    folder.mkdir(parents=True)
    for i in range(2):  # real MP4 segments made by ffmpeg (a test pattern), sealed as the recorder does
        start = datetime.now(timezone.utc) - timedelta(seconds=10 - 3 * i)
        segment = folder / f"{start:{NAME_FORMAT}}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2",
                        "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart", str(segment)], check=True)
        seal_segment(site, site.config.recording.cameras[0], segment)
    export(site, "S-0922-02", out, by="staff1")
    site.close()


def run_doc_block(folder, package):
    folder.mkdir()
    return subprocess.run(["sh", "-e", "-c", DOC_BLOCK.replace("../package.zip", str(package))], cwd=folder,
                          capture_output=True, text=True, timeout=120)


def test_the_documented_check_passes_and_fails(data_dir, tmp_path):
    package = tmp_path / "package.zip"
    make_package(data_dir, package)
    ok = run_doc_block(tmp_path / "ok", package)
    assert ok.returncode == 0, ok.stderr
    assert "records and segments verified against checkpoint" in ok.stdout
    with zipfile.ZipFile(package) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    segment = next(n for n in entries if n.endswith(".mp4"))
    data = bytearray(entries[segment])
    data[len(data) // 2] ^= 0x80
    entries[segment] = bytes(data)
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(altered, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content)
    bad = run_doc_block(tmp_path / "bad", altered)
    assert bad.returncode != 0 and "FAILED" in bad.stdout + bad.stderr


def rewritten(package, out, change):
    with zipfile.ZipFile(package) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    change(entries)
    with zipfile.ZipFile(out, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content)
    return out


def test_the_documented_check_catches_a_dropped_record_and_an_extra_file(data_dir, tmp_path):
    package = tmp_path / "package.zip"
    make_package(data_dir, package)

    def drop_a_state_change(entries):  # a record that seals no segment: the footage still checks
        lines = entries["journal.jsonl"].decode().splitlines(keepends=True)
        kept = [line for line in lines if '"kind":"session.state"' not in json.loads(line)["body"]]
        assert len(kept) < len(lines)
        entries["journal.jsonl"] = "".join(kept).encode()

    dropped = rewritten(package, tmp_path / "dropped.zip", drop_a_state_change)
    bad = run_doc_block(tmp_path / "dropped", dropped)
    assert bad.returncode != 0 and "FAILED" in bad.stdout + bad.stderr
    extra = rewritten(package, tmp_path / "extra.zip", lambda e: e.__setitem__("segments/pb1/note.txt", b"planted"))
    bad = run_doc_block(tmp_path / "extra", extra)
    assert bad.returncode != 0 and "FAILED: extra" in bad.stdout + bad.stderr
    # The tool agrees, and names both.
    from appliance.evidence import verify

    assert any("not among" in p or "missing or invalid" in p for p in verify(dropped).problems)
    assert any("not in the manifest" in p for p in verify(extra).problems)


def test_the_documented_check_prints_the_fingerprint_to_compare(data_dir, tmp_path):
    from appliance.keys import fingerprint, load_public_key

    package = tmp_path / "package.zip"
    make_package(data_dir, package)
    ok = run_doc_block(tmp_path / "fp", package)
    assert ok.returncode == 0 and ok.stdout.strip().splitlines()[-1] == fingerprint(load_public_key(data_dir / "keys"))
