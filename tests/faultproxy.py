"""A fault-injecting HTTP proxy on loopback, for sync under a bad link (issue #7 §7).

Each request from the site is read whole (headers and Content-Length body) and then, by a
seeded draw, one of:

* ``pass``      forwarded, the answer returned;
* ``drop``      the connection closed before anything is forwarded;
* ``delay``     forwarded after 50–400 ms, the answer likewise delayed;
* ``duplicate`` forwarded twice on two upstream connections (in either order), one answer returned;
* ``truncate``  forwarded, and the answer cut after a random number of bytes;
* ``cut``       only part of the request forwarded (the center sees a body end early);
* ``reset``     forwarded, then the site's connection reset (RST) before any answer.

The proxy adds ``Connection: close`` to what it forwards (not a signed component) and serves
one request per connection. It runs in its own process (`start`), so a test that forks the
agent and the center has no threads of its own.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

from bench.common import fork_call, kill_now, wait_for_port

FAULTS = ("pass", "drop", "delay", "duplicate", "truncate", "cut", "reset")


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(min(1 << 20, length - len(body)))
        if not chunk:
            return None
        body += chunk
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + body


def _exchange(upstream: tuple[str, int], request: bytes, cut: int | None = None) -> bytes:
    with socket.create_connection(upstream, timeout=30) as up:
        up.sendall(request if cut is None else request[:cut])
        if cut is not None:
            return b""
        out = b""
        while True:
            chunk = up.recv(1 << 20)
            if not chunk:
                return out
            out += chunk


def _serve(client: socket.socket, upstream: tuple[str, int], fault: str, rng: random.Random) -> None:
    try:
        request = _read_request(client)
        if request is None or fault == "drop":
            return
        if fault == "cut":
            _exchange(upstream, request, cut=rng.randrange(1, len(request)))
            return
        if fault == "delay":
            time.sleep(rng.uniform(0.05, 0.4))
        if fault == "duplicate":
            first, second = _exchange(upstream, request), _exchange(upstream, request)
            answer = rng.choice((first, second))
        else:
            answer = _exchange(upstream, request)
        if fault == "reset":
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if fault == "truncate" and answer:
            answer = answer[:rng.randrange(0, len(answer))]
        if fault == "delay":
            time.sleep(rng.uniform(0.05, 0.4))
        client.sendall(answer)
    except OSError:
        pass
    finally:
        client.close()


def serve(port: int, upstream: tuple[str, int], *, seed: int, fault_rate: float) -> None:
    """Serve forever (in the calling process): each request faulted with ``fault_rate``."""
    rng = random.Random(seed)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    while True:
        client, _ = listener.accept()
        fault = rng.choice(FAULTS[1:]) if rng.random() < fault_rate else "pass"
        threading.Thread(target=_serve, args=(client, upstream, fault, random.Random(rng.random())), daemon=True).start()


def start(port: int, upstream: tuple[str, int], *, seed: int, fault_rate: float) -> int:
    """The proxy in a forked process; returns its pid (stop it with `stop`)."""
    pid = fork_call(serve, port, upstream, seed=seed, fault_rate=fault_rate)
    wait_for_port(port, pid)
    return pid


def stop(pid: int) -> None:
    kill_now(pid)
