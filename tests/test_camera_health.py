"""Camera health with OpenCV: by example on synthetic frames, and against the real RTSP camera
serving a black, covered, blurred, frozen or normal picture, sampled through ffmpeg."""

import hashlib
import time

import cv2
import numpy as np
import pytest

from appliance.camera_health import HealthWatch, examine, grab_frame, unchanged
from appliance.segments import recordings_dir
from appliance.site import open_site
from appliance.siteops.alarms import open_alarms
from tests.camera import rtsp_camera


def scene(seed=0):
    """A sharp, textured 640×360 scene."""
    rng = np.random.default_rng(seed)
    frame = np.full((360, 640, 3), 110, np.uint8)
    for _ in range(60):
        x, y = rng.integers(0, 600), rng.integers(0, 330)
        cv2.rectangle(frame, (int(x), int(y)), (int(x) + 40, int(y) + 30), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    cv2.putText(frame, "2026-11-22 09:30:00", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
    return frame


@pytest.mark.parametrize("frame, problems", [
    (scene(), ()),
    (np.zeros((360, 640, 3), np.uint8), ("black",)),
    (np.full((360, 640, 3), 90, np.uint8), ("covered",)),
    (cv2.GaussianBlur(scene(), (0, 0), 12), ("blurred",)),
])
def test_examine(frame, problems):
    assert examine(frame, focus_threshold=30)[1].problems == problems


def test_unchanged():
    a, _ = examine(scene(1), focus_threshold=30)
    b, _ = examine(scene(2), focus_threshold=30)
    assert unchanged(a, a.copy()) and not unchanged(a, b)


def camera_site(data_dir, url):
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + f"""
[recording]
frozen_samples = 3
[[recording.cameras]]
name = "pb1"
room = "PB1"
url = "{url}"
""", encoding="utf-8")
    return open_site(data_dir)


@pytest.mark.parametrize("picture", ["black", "covered", "blurred"])
def test_a_bad_picture_raises_an_alarm_with_a_snapshot(data_dir, picture):
    with rtsp_camera("--picture", picture) as camera:
        site = camera_site(data_dir, camera.main)
        watch = HealthWatch(site, site.config.recording.cameras)
        assert watch.sample(site.config.recording.cameras[0]).problems == (picture,)
        watch.sample(site.config.recording.cameras[0])  # still bad: no second alarm
    alarms = open_alarms(site)
    assert [(a["kind"], a["detail"]["problem"]) for a in alarms] == [("camera_picture", picture)]
    record = site.journal.records(kind="recording.picture")[0].payload
    snapshot = recordings_dir(site) / record["snapshot"]
    assert hashlib.sha256(snapshot.read_bytes()).hexdigest() == record["snapshot_sha256"]
    assert cv2.imread(str(snapshot)) is not None  # a real JPEG
    site.close()


def test_frozen_is_told_from_a_still_room_with_a_running_clock(data_dir):
    with rtsp_camera("--picture", "frozen") as frozen, rtsp_camera() as normal:
        site = camera_site(data_dir, frozen.main)
        cam = site.config.recording.cameras[0]
        watch = HealthWatch(site, [cam])
        results = [watch.sample(cam).problems for _ in range(3)]
        assert results == [(), (), ("frozen",)]
        live = cam.model_copy(update={"name": "kb1", "url": normal.main})
        watch = HealthWatch(site, [live])
        frames = []
        for _ in range(3):
            frames.append(watch.sample(live).problems)
            time.sleep(1.1)  # the overlaid clock moves on
        assert frames == [(), (), ()]
    site.close()


def test_grab_frame_from_the_sub_stream():
    with rtsp_camera() as camera:
        assert grab_frame("ffmpeg", camera.sub).shape == (90, 160, 3)
