"""A venue's link to the center on loopback, as the remote-evaluation demonstration and its
benchmark need it: a TCP proxy that adds a fixed latency to every byte in each direction (a
userspace shaper: ``delay_s``) and can be **cut** — from then on nothing passes either way and
nothing is answered (a pulled cable or a dead uplink: the venue learns of it only by its own
timeouts) — and restored. Threads, one pair per connection and direction; loopback only."""

from __future__ import annotations

import queue
import socket
import threading
import time


class LinkProxy:
    def __init__(self, upstream: tuple[str, int], *, delay_s: float = 0.0) -> None:
        self.upstream, self.delay_s = upstream, delay_s
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.cuts = 0

    def start(self) -> "LinkProxy":
        threading.Thread(target=self._accept, name="link-accept", daemon=True).start()
        return self

    def cut(self) -> None:
        """Nothing passes from now on; the connections under way hang (their bytes are dropped)."""
        self.cuts += 1
        self._cut.set()

    def restore(self) -> None:
        """The link is back: the hung connections are closed (their peers retry on new ones)."""
        with self._lock:
            hung, self._sockets = self._sockets, set()
        for s in hung:
            _close(s)
        self._cut.clear()

    def stop(self) -> None:
        self._stop.set()
        _close(self._listener)
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="link-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            self._sockets.add(client)
        if self._cut.is_set():  # accepted (as a peer's kernel would) and never answered
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _close(client)
            return
        server.settimeout(None)
        with self._lock:
            self._sockets.add(server)
        for src, dst in ((client, server), (server, client)):
            pending: queue.Queue[tuple[float, bytes]] = queue.Queue()
            threading.Thread(target=self._read, args=(src, pending), daemon=True).start()
            threading.Thread(target=self._write, args=(dst, pending), daemon=True).start()

    def _read(self, src: socket.socket, pending: "queue.Queue[tuple[float, bytes]]") -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if self._cut.is_set() and data:
                continue  # dropped on the floor
            pending.put((time.monotonic() + self.delay_s, data))
            if not data:
                return

    def _write(self, dst: socket.socket, pending: "queue.Queue[tuple[float, bytes]]") -> None:
        while True:
            due, data = pending.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not data:
                try:
                    if not self._cut.is_set():
                        dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if self._cut.is_set():
                continue
            try:
                dst.sendall(data)
            except OSError:
                return


def _close(s: socket.socket) -> None:
    try:
        s.close()
    except OSError:
        pass
