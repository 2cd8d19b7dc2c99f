"""Camera health: is the picture worth recording? OpenCV on frames sampled from each camera's
sub-stream (the main stream when there is none), one frame every
``recording.health_interval_s``, decoded by ffmpeg — a few milliseconds of CPU per sample.

Problems, checked on a grayscale frame scaled to 320 px wide:

* ``black`` — mean brightness under 16 of 255 and 99 % of pixels under 40 (lens capped in the
  dark, video lost, camera off behind a working encoder);
* ``covered`` — the picture is nearly uniform (standard deviation under 6): a hand, cloth or tape
  over the lens, or a wall an inch away;
* ``blurred`` — detail (the variance of the Laplacian) under ``recording.focus_threshold``: out of
  focus, fogged or smeared lens;
* ``frozen`` — the frame has not changed (fewer than 4 pixels differ by more than compression
  noise) for ``recording.frozen_samples`` samples in a row: a hung encoder repeating one picture.
  Cameras overlay a running clock (OSD), so a still room is not frozen.

A problem that appears raises the ``camera_picture`` alarm with a JPEG snapshot (kept under
``<recordings>/<camera>/snapshots/``, its SHA-256 journaled in ``recording.picture``); its
disappearance is journaled too.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from dataclasses import dataclass

import cv2
import numpy as np

from appliance.config import CameraConfig
from appliance.credentials import hide_url_passwords
from appliance.segments import recordings_dir
from appliance.site import Site
from appliance.siteops.alarms import raise_alarm

WIDTH = 320


@dataclass(frozen=True)
class Picture:
    brightness: float
    contrast: float
    detail: float
    problems: tuple[str, ...]


def grab_frame(ffmpeg: str, url: str, timeout: float = 15.0) -> np.ndarray:
    """One decoded frame (BGR) from a camera URL."""
    args = [ffmpeg, "-v", "error", "-nostdin"]
    if url.startswith("rtsp://"):
        args += ["-rtsp_transport", "tcp"]
    proc = subprocess.run([*args, "-i", url, "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"],
                          capture_output=True, timeout=timeout)
    frame = cv2.imdecode(np.frombuffer(proc.stdout, np.uint8), cv2.IMREAD_COLOR) if proc.stdout else None
    if frame is None:
        raise ValueError(hide_url_passwords(proc.stderr.decode(errors="replace").strip())[-200:] or "no frame")
    return frame


def examine(frame: np.ndarray, *, focus_threshold: float) -> tuple[np.ndarray, Picture]:
    """(the grayscale thumbnail, what it shows) — frozen is judged across samples, not here."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    scale = WIDTH / gray.shape[1]
    small = cv2.resize(gray, (WIDTH, max(1, round(gray.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    brightness, contrast = float(small.mean()), float(small.std())
    detail = float(cv2.Laplacian(small, cv2.CV_64F).var())
    problems = []
    if brightness < 16 and float(np.percentile(small, 99)) < 40:
        problems.append("black")
    elif contrast < 6:
        problems.append("covered")
    elif detail < focus_threshold:
        problems.append("blurred")
    return small, Picture(brightness, contrast, detail, tuple(problems))


def unchanged(a: np.ndarray, b: np.ndarray) -> bool:
    """No pixel changed by more than compression noise. A moving clock's digits or a person
    shifting in a chair change hundreds of pixels even at 320 px; a hung encoder none."""
    return a.shape == b.shape and int(np.count_nonzero(cv2.absdiff(a, b) > 12)) < 4


class HealthWatch:
    """Samples each camera in turn from the recorder worker's step."""

    def __init__(self, site: Site, cameras: list[CameraConfig]) -> None:
        self.site, self.cameras = site, cameras
        self.cfg = site.config.recording
        self.next_at = {c.name: 0.0 for c in cameras}
        self.last: dict[str, np.ndarray] = {}
        self.still: dict[str, int] = {}
        self.reported: dict[str, tuple[str, ...]] = {}

    def step(self) -> None:
        now = time.monotonic()
        for camera in self.cameras:
            if now >= self.next_at[camera.name]:
                self.next_at[camera.name] = now + self.cfg.health_interval_s
                try:
                    self.sample(camera)
                except (ValueError, OSError, subprocess.TimeoutExpired):
                    pass  # no picture at all is the recorder's outage alarm, not this one

    def sample(self, camera: CameraConfig, frame: np.ndarray | None = None) -> Picture:
        if frame is None:
            frame = grab_frame(self.cfg.ffmpeg, camera.substream_url or camera.url)
        small, picture = examine(frame, focus_threshold=self.cfg.focus_threshold)
        previous = self.last.get(camera.name)
        self.still[camera.name] = self.still.get(camera.name, 0) + 1 if previous is not None and unchanged(previous, small) else 0
        self.last[camera.name] = small
        problems = picture.problems
        if self.still[camera.name] + 1 >= self.cfg.frozen_samples and not problems:
            problems = ("frozen",)
        self._report(camera, problems, frame, picture)
        return Picture(picture.brightness, picture.contrast, picture.detail, problems)

    def _report(self, camera: CameraConfig, problems: tuple[str, ...], frame: np.ndarray, picture: Picture) -> None:
        before = self.reported.get(camera.name, ())
        if problems == before:
            return
        self.reported[camera.name] = problems
        figures = {"brightness": round(picture.brightness), "contrast": round(picture.contrast), "detail": round(picture.detail)}
        if not problems:
            self.site.journal.record("recording.picture", {"camera": camera.name, "room": camera.room, "problems": [],
                                                           "cleared": list(before), **figures})
            return
        folder = recordings_dir(self.site) / camera.name / "snapshots"
        folder.mkdir(parents=True, exist_ok=True)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
        name = f"{self.site.clock.now().strftime('%Y%m%dT%H%M%SZ')}-{problems[0]}.jpg"
        data = jpeg.tobytes() if ok else b""
        (folder / name).write_bytes(data)
        with self.site.store.transaction() as conn:
            record = self.site.journal.append(conn, "recording.picture", {
                "camera": camera.name, "room": camera.room, "problems": list(problems), **figures,
                "snapshot": f"{camera.name}/snapshots/{name}", "snapshot_sha256": hashlib.sha256(data).hexdigest()})
            raise_alarm(self.site, conn, "camera_picture", seq=record.seq,
                        detail={"camera": camera.name, "room": camera.room, "problem": problems[0]})
