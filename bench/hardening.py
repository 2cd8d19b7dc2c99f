"""No single client can stop the venue (issue 13, items 4.1 and 4.2), measured against the real
`appliance serve` on loopback, each phase against an idle baseline in the same run.

* **Login flood**: 20 threads post ``/login`` with unknown names as fast as the server answers,
  while this process — another process, as the devices service is under systemd — appends
  durable journal records (``Journal.record``: BEGIN IMMEDIATE, the record, COMMIT with
  synchronous=FULL) every 20 ms. Reported: the write's p50/p99 idle and during the flood, once
  with the per-address budget (the flood is refused unchecked after 20 tries a minute) and once
  with it lifted (every attempt runs argon2, two at a time, outside any write transaction).
* **Slow clients**: 200 connections each send a request line and then one header line every 4 s
  (slowloris); meanwhile ``/healthz`` and the console's login page are fetched; reported: their
  answer times idle and with the 200 open.

    python -m bench.hardening   # prints one JSON object
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import requests

from bench.common import percentile

APPLIANCE = str(Path(sys.executable).with_name("appliance"))


@contextmanager
def serving(data: Path, env: dict[str, str]) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([APPLIANCE, "serve", "--data", str(data)],
                            env={**os.environ, "APPLIANCE_WEB__PORT": str(port), **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def timed_writes(site: Any, count: int, every_s: float = 0.02) -> list[float]:
    out = []
    for i in range(count):
        started = time.perf_counter()
        site.journal.record("staff.note", {"text": f"bench write {i}", "author": "bench"})
        out.append((time.perf_counter() - started) * 1000)
        time.sleep(every_s)
    return out


def flood(base: str, stop: threading.Event, counter: list[int]) -> None:
    session = requests.Session()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', session.get(base + "/login", timeout=10).text).group(1)
    while not stop.is_set():
        try:
            r = session.post(base + "/login", data={"username": f"nobody{counter[0]}", "password": "guess-guess-guess",
                                                    "csrf_token": token}, timeout=30)
            counter[0] += 1
            counter[1] += r.status_code == 200  # checked (a 429 was refused unchecked)
        except requests.RequestException:
            pass


def login_flood(data: Path, site: Any, budget: bool) -> dict[str, Any]:
    env = {} if budget else {"APPLIANCE_WEB__LOGIN_ATTEMPTS_PER_MINUTE": "10000"}
    with serving(data, env) as base:
        idle = timed_writes(site, 150)
        stop, counter = threading.Event(), [0, 0]
        threads = [threading.Thread(target=flood, args=(base, stop, counter), daemon=True) for _ in range(20)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        started = time.monotonic()
        during = timed_writes(site, 250)
        elapsed = time.monotonic() - started
        stop.set()
        for t in threads:
            t.join(35)
    return {"write_ms_idle_p50": percentile(idle, 0.5), "write_ms_idle_p99": percentile(idle, 0.99),
            "write_ms_flood_p50": percentile(during, 0.5), "write_ms_flood_p99": percentile(during, 0.99),
            "write_ms_flood_max": round(max(during), 3), "login_attempts_per_s": round(counter[0] / elapsed, 1),
            "password_checks_per_s": round(counter[1] / elapsed, 1)}


def answer_times(base: str, rounds: int = 20) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"/healthz": [], "/login": []}
    for _ in range(rounds):
        for path in out:
            started = time.perf_counter()
            requests.get(base + path, timeout=30)
            out[path].append((time.perf_counter() - started) * 1000)
        time.sleep(0.05)
    return out


def slow_clients(data: Path, count: int = 200, every_s: float = 4.0) -> dict[str, Any]:
    with serving(data, {}) as base:
        idle = answer_times(base)
        port = int(base.rsplit(":", 1)[1])
        socks, stop = [], threading.Event()
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n")
            socks.append(s)

        def trickle() -> None:
            n = 0
            while not stop.wait(every_s):
                n += 1
                for s in socks:
                    try:
                        s.sendall(f"X-Slow-{n}: 1\r\n".encode())
                    except OSError:
                        pass

        threading.Thread(target=trickle, daemon=True).start()
        time.sleep(1.0)
        busy = answer_times(base)
        open_after = sum(1 for s in socks if _open(s))
        stop.set()
        for s in socks:
            s.close()
    out: dict[str, Any] = {"slow_connections": count, "slow_connections_still_open_at_end": open_after}
    for label, times in (("idle", idle), ("slow", busy)):
        for path, values in times.items():
            key = path.strip("/")
            out[f"{key}_ms_{label}_p50"] = percentile(values, 0.5)
            out[f"{key}_ms_{label}_max"] = round(max(values), 3)
    return out


def _open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def run_benchmark() -> dict[str, Any]:
    from appliance.site import init_site, open_site

    with tempfile.TemporaryDirectory(prefix="bench-hardening-") as tmp:
        data = Path(tmp) / "site"
        init_site(data, "bench-county-01", "基准测试县公共资源交易中心")
        site = open_site(data)
        try:
            budgeted = login_flood(data, site, budget=True)
            unbudgeted = login_flood(data, site, budget=False)
        finally:
            site.close()
        slow = slow_clients(data)
    return {"login_flood_budgeted": budgeted, "login_flood_every_attempt_checked": unbudgeted, "slowloris": slow}


if __name__ == "__main__":
    print(json.dumps(run_benchmark(), indent=1))
