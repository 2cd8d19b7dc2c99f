"""The supervisors' review beyond a session's page: footage by room and time (ambient footage
too) with the journal's events of the window, and checking an evidence package uploaded to the
review room (an altered byte is located; a package of another site's key is told apart)."""

import io
import zipfile
from datetime import timedelta

from appliance.evidence import export
from appliance.segments import recordings_dir, seal_segment
from kiosk_ui import create_app
from tests.conftest import PASSWORDS
from tests.helpers import csrf_token
from tests.test_site_operations import NOW
from tests.test_sync_media import CAMERA, clip, recorded  # noqa: F401  (fixtures)


def supervisor(site):
    from appliance.accounts import Accounts

    Accounts(site).add("supervisor1", "supervisor", PASSWORDS["supervisor"])
    app = create_app(site)
    client = app.test_client()
    client.post("/login", data={"username": "supervisor1", "password": PASSWORDS["supervisor"],
                                "csrf_token": csrf_token(client.get("/login"))})
    return app, client


def test_footage_by_room_and_time_includes_ambient_footage(recorded, clip):  # noqa: F811
    site, sealed = recorded
    # An hour earlier, no session in the room: ambient footage, still findable.
    path = recordings_dir(site) / CAMERA.name / "ambient.mp4"
    path.write_bytes(clip + b"ambient")
    ambient = seal_segment(site, CAMERA, path, (NOW - timedelta(hours=1), NOW - timedelta(minutes=59)))
    app, client = supervisor(site)
    try:
        page = client.get("/review/footage?room=PB1&day=2026-11-22&from=08:00&to=09:45").get_data(as_text=True)
        for seg in (*sealed, ambient):
            assert f'id="segment-{seg.id}"' in page
        assert "S-0922-02" in page and "环境录像" in page  # two session segments, one ambient
        narrow = client.get("/review/footage?room=PB1&day=2026-11-22&from=08:20&to=08:40").get_data(as_text=True)
        assert narrow.count('class="segment"') == 1  # only the ambient one overlaps 08:20–08:40 (UTC 00:20–00:40)
        assert "该房间在此时段无录像" in client.get("/review/footage?room=PB1&day=2026-11-21").get_data(as_text=True)
        assert client.get("/review/footage?room=PB1&day=2026-11-22&from=10:00&to=09:00").status_code == 400
    finally:
        app.extensions["live"].stop()


def test_an_uploaded_evidence_package_is_checked_and_an_altered_byte_located(recorded, tmp_path):  # noqa: F811
    site, sealed = recorded
    out = tmp_path / "package.zip"
    export(site, "S-0922-02", out, by="supervisor1")
    app, client = supervisor(site)

    def check(data, name="package.zip"):
        token = csrf_token(client.get("/review/evidence/verify"))
        return client.post("/review/evidence/verify", data={"csrf_token": token, "file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data").get_data(as_text=True)

    try:
        good = out.read_bytes()
        assert len(good) > 1_000_000  # above the forms' 1 MB limit: the package's footage
        page = check(good)
        assert 'data-ok="yes"' in page and "本站点密钥签署" in page
        # One byte of a segment changed: refused, and the segment and its MiB named.
        altered = tmp_path / "altered.zip"
        with zipfile.ZipFile(out) as src, zipfile.ZipFile(altered, "w") as dst:
            for item in src.infolist():
                data = src.read(item.filename)
                if item.filename.startswith("segments/") and item.filename.endswith("segment-1.mp4"):
                    data = data[:1_200_000] + bytes([data[1_200_000] ^ 1]) + data[1_200_001:]
                dst.writestr(item, data)
        page = check(altered.read_bytes())
        assert 'data-ok="no"' in page and "segment-1.mp4 与第" in page and "改动位置 第 1048576–2097151 字节" in page
        assert "segment-1.mp4: SHA-256 differs" in page  # the verifier's own words, folded away for auditors
        # A package signed with another key is told apart from this site's own.
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from appliance.evidence import MANIFEST_CONTEXT

        other = Ed25519PrivateKey.generate()
        foreign = tmp_path / "foreign.zip"
        with zipfile.ZipFile(out) as src, zipfile.ZipFile(foreign, "w") as dst:
            for item in src.infolist():
                data = src.read(item.filename)
                if item.filename == "site.pub":
                    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

                    data = other.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
                elif item.filename == "manifest.sig":
                    import base64
                    import hashlib

                    data = base64.b64encode(other.sign(MANIFEST_CONTEXT + hashlib.sha256(src.read("manifest.json")).digest()))
                dst.writestr(item, data)
        page = check(foreign.read_bytes())
        assert "非本站点密钥签署" in page
        # Nobody but a supervisor may send a large file: staff get the forms' 1 MB limit.
        from appliance.accounts import Accounts

        Accounts(site).add("staff1", "staff", PASSWORDS["staff"])
        staff = app.test_client()
        staff.post("/login", data={"username": "staff1", "password": PASSWORDS["staff"], "csrf_token": csrf_token(staff.get("/login"))})
        assert staff.post("/review/evidence/verify", data={"file": (io.BytesIO(good), "package.zip")},
                          content_type="multipart/form-data").status_code == 413
        results = [r.payload for r in site.journal.records(kind="review.evidence_verified")]
        assert [(r["ok"], r["this_site"]) for r in results][:2] == [(True, True), (False, True)]
        assert not results[2]["this_site"] and {r["by"] for r in results} == {"supervisor1"}
    finally:
        app.extensions["live"].stop()
