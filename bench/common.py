"""Pieces the benchmarks share: percentiles, a CPU load, and a real `appliance run`."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def percentile(values: list[float], q: float, digits: int = 3) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], digits)


def _burn(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        x = (x * 31 + 7) % 1_000_003


@contextmanager
def cpu_load(processes: int = 2) -> Iterator[None]:
    """Keep ``processes`` cores busy for the duration of the block."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    burners = [ctx.Process(target=_burn, args=(stop,), daemon=True) for _ in range(processes)]
    for p in burners:
        p.start()
    time.sleep(0.5)
    try:
        yield
    finally:
        stop.set()
        for p in burners:
            p.join(5)


@contextmanager
def running_appliance(data: Path) -> Iterator[str]:
    """`appliance run` on a free loopback port; yields its base URL once /healthz says ok."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    appliance = str(Path(sys.executable).with_name("appliance"))
    proc = subprocess.Popen([appliance, "run", "--data", str(data)], env={**os.environ, "APPLIANCE_WEB__PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if json.load(urllib.request.urlopen(base + "/healthz", timeout=2))["ok"]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("appliance did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def fork_call(fn: Any, *args: Any, **kwargs: Any) -> int:
    """``fn(*args)`` in a forked child (the real code paths without Python's start-up each
    time); returns the child's pid. The child exits 0 when ``fn`` returns, 1 when it raises."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn(*args, **kwargs)
        except BaseException:
            code = 1
        os._exit(code)
    return pid


def wait_for_port(port: int, pid: int | None = None, timeout: float = 20.0) -> None:
    """Until something accepts connections on the loopback port (or ``pid`` has exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if pid is not None and os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


def kill_now(pid: int) -> None:
    """SIGKILL, wherever the process is, and reap it."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _host_simulators(conn: Any, readers: list[str], gates: list[str]) -> None:
    from devices.gate.sim import GateSimulator
    from devices.idcard.sim import SamSimulator

    sams = {name: SamSimulator.on_pty().start() for name in readers}
    relays = {name: GateSimulator(walk_time_s=0.3).start() for name in gates}
    conn.send({**{n: s.url for n, s in sams.items()}, **{n: g.url for n, g in relays.items()}})
    while True:
        message = conn.recv()
        if message[0] == "place":
            sams[message[1]].place(message[2])
        elif message[0] == "remove":
            sams[message[1]].remove()
        else:
            break
        conn.send("ok")
    for sim in (*sams.values(), *relays.values()):
        sim.stop()
    conn.send("stopped")


class SimulatorHost:
    """ID card readers and gate relay modules simulated in a child process, on pseudo-terminals,
    as real devices are outside the appliance's process: the devices service being measured does
    not share its interpreter (and its GIL) with the simulators' threads."""

    def __init__(self, readers: list[str], gates: list[str]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_host_simulators, args=(child, readers, gates), daemon=True)
        self._proc.start()
        self.urls: dict[str, str] = self._conn.recv()

    def place(self, reader: str, card: Any) -> None:
        self._conn.send(("place", reader, card))
        self._conn.recv()

    def remove(self, reader: str) -> None:
        self._conn.send(("remove", reader))
        self._conn.recv()

    def stop(self) -> None:
        self._conn.send(("stop",))
        self._conn.recv()
        self._proc.join(5)


_clusters: list[Any] = []


def center_home(folder: Path, *, workers: int | None = None) -> Path:
    """A center data folder with a new database in a private PostgreSQL cluster (one per run,
    durable as in production: fsync on), stopped when the benchmark ends."""
    import atexit
    import tempfile
    import uuid

    from center.config import write
    from center.pgcluster import PrivateCluster

    if not _clusters:
        home = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        home.chmod(0o755)  # PostgreSQL runs as 'nobody' under root and must reach its folder
        cluster = PrivateCluster(home / "pg", max_connections=400)
        cluster.start()
        atexit.register(cluster.stop)
        _clusters.append(cluster)
    url = _clusters[0].create_database(f"bench_{uuid.uuid4().hex[:12]}")
    write(folder, url, workers=workers)
    return folder
