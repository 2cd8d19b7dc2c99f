"""Cameras. The recorder itself is appliance/recording.py (ffmpeg); this package holds the
simulated IP camera: ``sim.py`` is a GStreamer RTSP server script run by Debian's python3 (where
python3-gi lives), and ``SimulatedCamera`` starts and stops it from the appliance's Python."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("sim.py")
SYSTEM_PYTHON = "/usr/bin/python3"


class CameraSimError(RuntimeError):
    pass


class SimulatedCamera:
    """A live test pattern served over RTSP on loopback, Hikvision-style paths: main stream
    ``/Streaming/Channels/101``, sub-stream ``/Streaming/Channels/102``."""

    def __init__(self, *args: str, port: int = 0) -> None:
        try:
            self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SCRIPT), "--port", str(port), *args], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError as exc:
            raise CameraSimError(f"cannot start the simulated camera: {exc}") from exc
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            self.proc.wait(5)
            raise CameraSimError("the simulated camera did not start (needs Debian's python3-gi and gir1.2-gst-rtsp-server-1.0)")
        self.port = int(json.loads(line)["port"])

    @property
    def main(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/Streaming/Channels/101"

    @property
    def sub(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/Streaming/Channels/102"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
