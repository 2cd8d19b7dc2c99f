"""Start and stop the real RTSP camera stand-in (tests/rtsp_camera.py, Debian's GStreamer RTSP
server, run by Debian's python3 where python3-gi lives)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRIPT = Path(__file__).with_name("rtsp_camera.py")
SYSTEM_PYTHON = "/usr/bin/python3"


class Camera:
    def __init__(self, *args: str, port: int = 0) -> None:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SCRIPT), "--port", str(port), *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError("the RTSP camera did not start (needs python3-gi and gir1.2-gst-rtsp-server-1.0)")
        self.port = json.loads(line)["port"]

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


@contextmanager
def rtsp_camera(*args: str, port: int = 0) -> Iterator[Camera]:
    camera = Camera(*args, port=port)
    try:
        yield camera
    finally:
        camera.stop()
