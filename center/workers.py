"""The center's API on every core: one supervisor process binds the listening socket, brings the
schema up to date, makes the center's key, and starts N worker processes that all accept on
that socket. Each worker is the same asyncio HTTP server as the site's (appliance.webserver:
no slow client holds a thread) with its own thread pool and its own PostgreSQL pool; workers
share nothing but PostgreSQL and the footage store, so more machines can run more of them
behind a load balancer.

A worker that dies (kill -9, out of memory) is started again within a second; the requests it
held fail and the sites send them again (their transactions rolled back). SIGTERM or SIGINT
stops the workers, then the supervisor.

    python -m center.workers --data DIR [--host H] [--port P] [--workers N] [--tls-cert C --tls-key K]

is what ``appliance center serve`` runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("center.workers")
RESTART_DELAY_S = 0.5


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, data: Path, host: str, port: int, workers: int, *, threads: int = 16,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.data, self.host, self.workers, self.threads, self.tls = data, host, workers, threads, tls
        self.sock = bind(host, port)
        self.port = self.sock.getsockname()[1]
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self.restarts = 0

    def _spawn(self, index: int) -> None:
        args = [sys.executable, "-m", "center.workers", "--worker", "--fd", str(self.sock.fileno()), "--data",
                str(self.data), "--host", self.host, "--threads", str(self.threads)]
        if self.tls:
            args += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        self.children[index] = subprocess.Popen(args, pass_fds=[self.sock.fileno()])

    def run(self, ready: Any = None) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        for index in range(self.workers):
            self._spawn(index)
        if ready is not None:
            ready(self)
        while not self.stopping:
            for index, child in list(self.children.items()):
                if child.poll() is not None and not self.stopping:
                    log.warning("center worker %d (pid %d) ended with %s: starting it again", index, child.pid,
                                child.returncode)
                    self.restarts += 1
                    time.sleep(RESTART_DELAY_S)
                    self._spawn(index)
            time.sleep(0.2)
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 5
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        return 0

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True


def _worker(args: argparse.Namespace) -> None:
    from center.api import center_server
    from center.core import Center

    sock = socket.socket(fileno=args.fd)
    center = Center(args.data, migrate_schema=False, pool_size=args.threads + 4)
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    server = center_server(center, args.host, 0, threads=args.threads, tls=tls, name=f"center-worker-{os.getpid()}")
    server.prepare(sock)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server._server, "should_exit", True))
    server.serve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m center.workers")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=16, help="threads per worker (live alarm streams take at most half)")
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.worker:
        _worker(args)
        return
    serve(args.data, args.host, args.port, args.workers or None, tls=(args.tls_cert, args.tls_key) if args.tls_cert else None,
          threads=args.threads)


def serve(data: Path, host: str, port: int, workers: int | None, *, tls: tuple[Path, Path] | None = None,
          threads: int = 16) -> None:
    """Prepare the center (schema, key, secrets), then supervise its workers until stopped;
    prints one JSON line with the URL once the socket listens."""
    from center.core import Center
    from center.ui import prepare_secrets

    center = Center(data)  # migrates and makes the key once, before any worker starts
    prepare_secrets(center)
    count = workers or center.config.workers
    center.db.close()
    supervisor = Supervisor(data, host, port, count, threads=threads, tls=tls)
    scheme = "https" if tls else "http"

    def ready(s: Supervisor) -> None:
        print(json.dumps({"ok": True, "url": f"{scheme}://{host}:{s.port}", "workers": count}), flush=True)

    sys.exit(supervisor.run(ready))


if __name__ == "__main__":
    main()
