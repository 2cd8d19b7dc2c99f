"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from appliance.personal import id_check_char

SITE_ID = "test-county-01"
SITE_NAME = "测试县公共资源交易中心"
APPLIANCE = str(Path(sys.executable).with_name("appliance"))


def make_id_number(region: str = "220102", birth: str = "19800101", serial: str = "123") -> str:
    """A fictitious resident ID number with a correct GB 11643 check character."""
    first17 = region + birth + serial
    return first17 + id_check_char(first17)


def run_appliance(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the installed console script as a newcomer would."""
    return subprocess.run(
        [APPLIANCE, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def json_line(text: str) -> dict:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line, got: {text!r}"
    return json.loads(lines[0])


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768+), so that nothing the started
    process binds to port 0 (a device simulator, the demo center) can take it first."""
    import random

    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def csrf_token(response) -> str:
    """The CSRF token from a rendered page (its <meta name="csrf-token">)."""
    import re

    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', response.get_data(as_text=True))
    assert match, "page has no CSRF token"
    return match.group(1)


def png_bytes(width: int = 40, height: int = 20) -> bytes:
    """A valid PNG (a drawn stroke: a diagonal line), as a signature pad would produce."""
    import struct
    import zlib

    rows = b"".join(b"\x00" + bytes(255 if x != y else 0 for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def wait_for(predicate, timeout=10.0, interval=0.05):
    """Poll ``predicate`` until it gives something true or ``timeout`` passes; its last value."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def start_center(center_dir: Path, *args: str, port: int = 0, timeout: float = 60):
    """``appliance center serve`` on a free loopback port; returns (process, url) once the center
    has printed its ready line (it binds before printing). A cold start on a fresh machine can
    take seconds, so this waits on the line rather than polling the port for a fixed time."""
    import select
    import time

    proc = subprocess.Popen([APPLIANCE, "center", "serve", "--data", str(center_dir), "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("{") and '"url"' in line:
                return proc, json.loads(line)["url"]
        elif proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the center did not start: {''.join(seen)}")
