"""The real RTSP camera stand-in for tests (devices/camera/sim.py: Debian's GStreamer RTSP
server, run by Debian's python3 where python3-gi lives)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from devices.camera import SimulatedCamera


@contextmanager
def rtsp_camera(*args: str, port: int = 0) -> Iterator[SimulatedCamera]:
    camera = SimulatedCamera(*args, port=port)
    try:
        yield camera
    finally:
        camera.stop()
