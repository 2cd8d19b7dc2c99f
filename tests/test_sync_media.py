"""Recordings up by tus over real HTTP on loopback: real MP4 segments (made by ffmpeg) sealed by
the recorder's own sealing, uploaded in chunks with tuspy, resumed after an interruption without
starting over, confirmed only when the center holds the file with the sealed SHA-256; and the
center's tus endpoint answering the protocol's status codes."""

import base64
import hashlib
import subprocess
from datetime import timedelta

import pytest

from appliance.clock import FixedClock
from appliance.config import CameraConfig
from appliance.segments import recordings_dir, seal_segment
from appliance.site import open_site
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from sync import media
from sync.agent import Agent, SyncError, _set_meta, enroll
from tests.test_site_operations import NOW, plan_text
from tests.test_sync import center  # noqa: F401  (a fixture)

SITE = "test-county-01"
CAMERA = CameraConfig(name="pb1-overview", room="PB1", url="rtsp://camera.invalid/Streaming/Channels/101")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A few seconds of real H.264 in MP4, about 2-3 MB."""
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-t", "5",
                    "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "4M", "-movflags", "+faststart", str(out)], check=True)
    return out.read_bytes()


@pytest.fixture
def recorded(data_dir, clip, monkeypatch):
    """A site in session S-0922-02 (room PB1) with two sealed segments of that session."""
    monkeypatch.setattr(media, "CHUNK", 256 * 1024)
    site = open_site(data_dir, clock=FixedClock(NOW))
    load_plan(site, parse_plan(plan_text()))
    change_state(site, "S-0922-02", "admitting", by="staff1")
    folder = recordings_dir(site) / CAMERA.name
    folder.mkdir(parents=True, exist_ok=True)
    sealed = []
    for i in range(2):
        path = folder / f"segment-{i}.mp4"
        path.write_bytes(clip + bytes([i]) * 1000)  # two different files
        start = NOW - timedelta(minutes=2 - i)
        sealed.append(seal_segment(site, CAMERA, path, (start, start + timedelta(minutes=1))))
    assert all(s is not None for s in sealed)
    yield site, sealed
    site.close()


def acked(site):
    return [r[0] for r in site.store.reader().execute("SELECT center_ack FROM segments ORDER BY id")]


def test_segments_go_up_resume_and_are_confirmed_whole(recorded, center, monkeypatch):  # noqa: F811
    site, sealed = recorded
    c, url = center
    enroll(site, url, c.add_site(SITE))
    agent = Agent(site)
    agent.push_journal(0)  # the seals must be at the center before their files
    # The first upload is cut after three chunks (a dropped link): its URL stays in the store.
    first = dict(site.store.reader().execute("SELECT id, path, sha256, size, seq FROM segments ORDER BY id").fetchone())
    uploader = media.SignedUploader(file_path=str(recordings_dir(site) / first["path"]),
                                    client=media.TusClient(f"{agent.base}/media/uploads"), chunk_size=media.CHUNK,
                                    store_url=True, url_storage=media.SqliteUrlStore(site),
                                    fingerprinter=media.SealedFingerprint(first["sha256"]), upload_checksum=True,
                                    http=agent.http, metadata={"seq": str(first["seq"]), "sha256": first["sha256"]})
    uploader.upload(stop_at=3 * media.CHUNK)
    assert uploader.get_offset() == 3 * media.CHUNK
    assert site.store.reader().execute("SELECT COUNT(*) FROM tus_uploads").fetchone()[0] == 1
    assert acked(site) == [None, None]
    # The next round resumes it (no new upload is created for it) and sends the second whole.
    created = []
    real_create = media.SignedUploader.create_url
    monkeypatch.setattr(media.SignedUploader, "create_url", lambda self: created.append(1) or real_create(self))
    result = Agent(site).sync_once()
    assert result["media"] == {"uploaded": 2, "confirmed": 2, "pending": 0}
    assert len(created) == 1
    assert all(acked(site)) and site.store.reader().execute("SELECT COUNT(*) FROM tus_uploads").fetchone()[0] == 0
    for s in sealed:
        held = c.db.one("SELECT sha256 FROM media WHERE site = %s AND seq = %s", (SITE, s.seq))
        # Kept in the footage store under its content address: the sealed hash.
        assert held[0] == s.sha256 and c.footage.path(s.sha256).read_bytes() == s.path.read_bytes()
    assert [r.payload["seal_seq"] for r in site.journal.records(kind="recording.center_ack")] == [s.seq for s in sealed]
    assert Agent(site).sync_once()["media"] == {"uploaded": 0, "confirmed": 0, "pending": 0}


def test_a_file_that_is_not_the_sealed_one_is_refused(recorded, center):  # noqa: F811
    site, sealed = recorded
    c, url = center
    enroll(site, url, c.add_site(SITE))
    data = bytearray(sealed[1].path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, after sealing
    sealed[1].path.write_bytes(bytes(data))
    with pytest.raises(SyncError, match="does not hold it with the sealed hash"):
        Agent(site).sync_once()
    assert acked(site)[0] is not None and acked(site)[1] is None  # the good one went; the altered one did not
    assert "media_mismatch" in [r[0] for r in c.db.all("SELECT kind FROM alarms")]
    assert not c.footage.exists(sealed[1].sha256) and c.db.one("SELECT COUNT(*) FROM objects")[0] == 1


def test_the_tus_endpoint_speaks_the_protocol(recorded, center):  # noqa: F811
    site, sealed = recorded
    c, url = center
    enroll(site, url, c.add_site(SITE))
    agent = Agent(site)
    agent.push_journal(0)
    http, base = agent.http, f"{agent.base}/media/uploads"
    seg = sealed[0]
    size = seg.path.stat().st_size
    tus = {"Tus-Resumable": "1.0.0"}

    def meta(**values):
        return ",".join(f"{k} {base64.b64encode(str(v).encode()).decode()}" for k, v in values.items())

    options = http.options(base, timeout=10)
    assert options.status_code == 204 and options.headers["Tus-Version"] == "1.0.0"
    assert set(options.headers["Tus-Extension"].split(",")) == {"creation", "checksum", "termination", "expiration"}
    assert "sha1" in options.headers["Tus-Checksum-Algorithm"].split(",")
    assert http.post(base, headers={"Upload-Length": str(size)}, timeout=10).status_code == 412
    assert http.post(base, headers={**tus, "Upload-Length": str(size), "Upload-Metadata": meta(seq=1, sha256=seg.sha256)},
                     timeout=10).status_code == 409  # record 1 is not a segment's seal
    assert http.post(base, headers={**tus, "Upload-Length": str(size + 1), "Upload-Metadata": meta(seq=seg.seq, sha256=seg.sha256)},
                     timeout=10).status_code == 409  # not the sealed size
    created = http.post(base, headers={**tus, "Upload-Length": str(size), "Upload-Metadata": meta(seq=seg.seq, sha256=seg.sha256)},
                        timeout=10)
    assert created.status_code == 201 and "Upload-Expires" in created.headers
    where = url + created.headers["Location"]
    chunk = seg.path.read_bytes()[:1000]
    octets = {**tus, "Content-Type": "application/offset+octet-stream"}
    assert http.patch(where, data=chunk, headers={**tus, "Upload-Offset": "0"}, timeout=10).status_code == 415
    assert http.patch(where, data=chunk, headers={**octets, "Upload-Offset": "5"}, timeout=10).status_code == 409
    wrong = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    assert http.patch(where, data=chunk, headers={**octets, "Upload-Offset": "0", "Upload-Checksum": f"sha1 {wrong}"},
                      timeout=10).status_code == 460
    assert http.patch(where, data=chunk, headers={**octets, "Upload-Offset": "0", "Upload-Checksum": "md5 AAAA"},
                      timeout=10).status_code == 400
    right = base64.b64encode(hashlib.sha1(chunk).digest()).decode()
    done = http.patch(where, data=chunk, headers={**octets, "Upload-Offset": "0", "Upload-Checksum": f"sha1 {right}"}, timeout=10)
    assert done.status_code == 204 and done.headers["Upload-Offset"] == "1000"
    head = http.head(where, headers=tus, timeout=10)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "1000" and head.headers["Upload-Length"] == str(size)
    assert head.headers["Cache-Control"] == "no-store" and head.headers["Upload-Metadata"] == meta(seq=seg.seq, sha256=seg.sha256)
    assert http.options(where, timeout=10).headers["Tus-Version"] == "1.0.0"  # OPTIONS on an upload URL too
    # A body that is not the one its signature's Content-Digest names (altered on the way): discarded.
    import requests

    altered = http.prepare_request(requests.Request("PATCH", where, data=seg.path.read_bytes()[1000:2000],
                                                    headers={**octets, "Upload-Offset": "1000"}))
    altered.body = bytes(b ^ 1 for b in altered.body)
    assert http.send(altered, timeout=10).status_code == 400
    # Damaged on the way with a tus checksum too: the checksum's 460 comes first, as tus says.
    sha1 = base64.b64encode(hashlib.sha1(seg.path.read_bytes()[1000:2000]).digest()).decode()
    damaged = http.prepare_request(requests.Request("PATCH", where, data=seg.path.read_bytes()[1000:2000],
                                                    headers={**octets, "Upload-Offset": "1000", "Upload-Checksum": f"sha1 {sha1}"}))
    damaged.body = bytes(b ^ 1 for b in damaged.body)
    assert http.send(damaged, timeout=10).status_code == 460
    assert http.head(where, headers=tus, timeout=10).headers["Upload-Offset"] == "1000"
    # A duplicated PATCH (same offset, already applied) is refused, not appended twice.
    assert http.patch(where, data=chunk, headers={**octets, "Upload-Offset": "0"}, timeout=10).status_code == 409
    # The rest of the file in one PATCH, sent chunked (no Content-Length), as tus clients may.
    rest = seg.path.read_bytes()[1000:]
    whole = http.prepare_request(requests.Request("PATCH", where, data=rest, headers={**octets, "Upload-Offset": "1000"}))
    whole.body = (rest[i:i + 300_000] for i in range(0, len(rest), 300_000))
    del whole.headers["Content-Length"]
    done = http.send(whole, timeout=30)
    assert done.status_code == 204 and done.headers["Upload-Offset"] == str(size)
    # Finished: HEAD still answers, with the full offset; the center holds the sealed file.
    finished = http.head(where, headers=tus, timeout=10)
    assert finished.status_code == 200 and finished.headers["Upload-Offset"] == str(size)
    assert agent.media_held([seg.seq]) == {str(seg.seq): seg.sha256}
    # Termination of an upload under way, and what is left of it.
    where = url + http.post(base, headers={**tus, "Upload-Length": str(size), "Upload-Metadata": meta(seq=seg.seq, sha256=seg.sha256)},
                            timeout=10).headers["Location"]
    assert http.delete(where, headers=tus, timeout=10).status_code == 204
    assert http.head(where, headers=tus, timeout=10).status_code == 404
    # Expiration: an upload untouched past Upload-Expires is gone (410) and its bytes removed.
    again = url + http.post(base, headers={**tus, "Upload-Length": str(size), "Upload-Metadata": meta(seq=seg.seq, sha256=seg.sha256)},
                            timeout=10).headers["Location"]
    c.clock = FixedClock(c.clock.now() + timedelta(days=2))
    assert http.head(again, headers=tus, timeout=10).status_code == 410
    assert not list((c.data / "uploads").glob("*.part"))
    # Unsigned requests get nothing — in a tus answer.
    unsigned = requests.head(again, headers=tus, timeout=10)
    assert unsigned.status_code == 401 and unsigned.headers["Tus-Resumable"] == "1.0.0"


def test_footage_is_freed_only_on_the_centers_signed_word(recorded, center):  # noqa: F811
    """A man in the middle (or a broken proxy) answering "held" for everything, unsigned or
    with an old statement, frees nothing."""
    import json

    import requests
    from appliance.webserver import WebServer
    from tests.helpers import free_port

    site, sealed = recorded
    c, url = center
    enroll(site, url, c.add_site(SITE))
    agent = Agent(site)
    agent.push_journal(0)
    replayed = {}

    def liar(environ, start_response):
        """Passes everything to the center, but answers media/status itself."""
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ["PATH_INFO"].endswith("/media/status"):
            held = {str(s.seq): s.sha256 for s in sealed}
            answer = replayed.get("old") or {"held": held}
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(answer).encode()]
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
        resp = requests.request(environ["REQUEST_METHOD"], url + environ["PATH_INFO"], data=body, headers=headers, timeout=30)
        start_response(f"{resp.status_code} X", [(k, v) for k, v in resp.headers.items()
                                                 if k.lower() not in ("transfer-encoding", "connection", "content-length")])
        return [resp.content]

    port = free_port()
    server = WebServer(liar, "127.0.0.1", port, threads=4, body_limit=lambda scope: (64 << 20, 64 << 20))
    server.start()
    def center_at(where):
        with site.store.transaction() as conn:
            _set_meta(site, conn, "sync_center_url", where)

    try:
        center_at(f"http://127.0.0.1:{port}")
        with pytest.raises(SyncError, match="does not verify"):
            Agent(site).push_media()
        # A statement the center really signed, for another challenge: replayed, refused.
        replayed["old"] = agent._post("media/status", {"seqs": [s.seq for s in sealed], "challenge": "0" * 32})
        with pytest.raises(SyncError, match="not the answer to this request"):
            Agent(site).push_media()
    finally:
        server.stop()
        center_at(url)
    assert acked(site) == [None, None]  # nothing confirmed, nothing may be freed
