"""The monitoring room's live view: the latest picture of each camera, kept fresh by the recorder
while someone watches — a request never waits for a decoder.

The web page of a camera's picture (another process) touches ``<recordings>/<camera>/live.wanted``
and serves ``live.jpg`` as it is. The recorder service, which owns the cameras, keeps one small
ffmpeg per watched camera that decodes its sub-stream and rewrites ``live.jpg`` every
``INTERVAL_S`` (written to a temporary name and renamed, so a reader never sees half a file); a
camera nobody has looked at for ``IDLE_S`` has its ffmpeg stopped. The ffmpeg's words are thrown
away: they would repeat the camera's URL, password included.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)
WANTED = "live.wanted"
PICTURE = "live.jpg"
INTERVAL_S = 2
IDLE_S = 30.0
FRESH_S = 3 * INTERVAL_S + 2  # older than this, the picture is not live: the page says so


def want(folder: Path) -> None:
    """The web's side: someone is watching this camera."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / WANTED
    marker.touch()


def latest(folder: Path, now: float | None = None) -> bytes | None:
    """The camera's latest picture, or None when there is none fresh enough to call live."""
    path = folder / PICTURE
    try:
        if (now or time.time()) - path.stat().st_mtime > FRESH_S:
            return None
        return path.read_bytes()
    except OSError:
        return None


def picture_command(ffmpeg: str, url: str, folder: Path) -> list[str]:
    source = ["-f", "v4l2", "-i", url] if url.startswith("/dev/") else ["-rtsp_transport", "tcp", "-timeout", "5000000", "-i", url]
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "quiet", *source, "-an",
            "-vf", f"fps=1/{INTERVAL_S},scale='min(640,iw)':-2", "-q:v", "5", "-f", "image2", "-update", "1",
            "-atomic_writing", "1", "-y", str(folder / PICTURE)]


class LivePictures:
    """One per recorder service: `step()` once a second starts and stops the pictures' ffmpegs."""

    def __init__(self, ffmpeg: str, cameras: dict[str, tuple[str, Path]]) -> None:
        self.ffmpeg = ffmpeg
        self.cameras = cameras  # name → (sub-stream URL, folder)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def step(self, now: float | None = None) -> None:
        now = now or time.time()
        for name, (url, folder) in self.cameras.items():
            try:
                wanted = now - (folder / WANTED).stat().st_mtime < IDLE_S
            except OSError:
                wanted = False
            proc = self.procs.get(name)
            running = proc is not None and proc.poll() is None
            if wanted and not running:
                folder.mkdir(parents=True, exist_ok=True)
                try:
                    self.procs[name] = subprocess.Popen(picture_command(self.ffmpeg, url, folder), stdin=subprocess.DEVNULL,
                                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                        start_new_session=True)
                except OSError as exc:
                    log.warning("camera %s: no live picture: %s", name, exc)
            elif not wanted and running:
                self._stop(name)

    def _stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(3)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(3)

    def stop(self) -> None:
        for name in list(self.procs):
            self._stop(name)
