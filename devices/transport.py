"""Transports for drivers and simulators.

Drivers open their port by URL with pyserial's ``serial_for_url`` (a device path such as
``/dev/ttyUSB0``, ``socket://127.0.0.1:7000``, ``loop://``, ``spy://...``), so tests and demos
hand them a pseudo-terminal or a socket without code changes.

`PtyPort` is the simulators' side: a pseudo-terminal whose slave end a real driver opens like a
serial device. It can be "unplugged" and "replugged" behind a stable symlink, the way a USB
adapter disappears and comes back.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from pathlib import Path

import serial


def open_port(url: str, *, baudrate: int, timeout: float = 0.05, **kwargs: object) -> serial.SerialBase:
    """Open a serial port by URL (8 data bits, no parity, 1 stop bit unless told otherwise)."""
    return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, **kwargs)


class PtyPort:
    """The device end of a pseudo-terminal. ``path`` is what the driver opens."""

    def __init__(self, link: Path | None = None) -> None:
        self.link = link
        self._lock = threading.Lock()
        self.master = -1
        self._slave = -1
        self._open()

    def _open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no line discipline: bytes pass unchanged, both ways
        tty.setraw(master)
        self.master, self._slave = master, slave
        self.tty_name = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.tty_name)
            tmp.replace(self.link)

    @property
    def path(self) -> str:
        return str(self.link) if self.link is not None else self.tty_name

    def read(self, timeout: float) -> bytes:
        """Bytes the driver wrote, or b"" after ``timeout`` seconds (or when unplugged)."""
        master = self.master
        if master < 0:
            return b""
        try:
            ready, _, _ = select.select([master], [], [], timeout)
            return os.read(master, 65536) if ready else b""
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        with self._lock:
            if self.master >= 0:
                os.write(self.master, data)

    def unplug(self) -> None:
        """The device disappears: the driver's next read or write fails."""
        with self._lock:
            for fd in (self.master, self._slave):
                if fd >= 0:
                    os.close(fd)
            self.master = self._slave = -1
            if self.link is not None:
                self.link.unlink(missing_ok=True)

    def replug(self) -> None:
        """The device comes back under the same link path (a new pseudo-terminal)."""
        with self._lock:
            if self.master < 0:
                self._open()

    def close(self) -> None:
        self.unplug()


class NullModem:
    """Two pseudo-terminals wired back to back, for peers that both need a device path (a
    pymodbus server on one end, the real client on the other), as socat would do."""

    def __init__(self) -> None:
        self.a, self.b = PtyPort(), PtyPort()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="null-modem", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.a.master, self.b.master], [], [], 0.05)
                for fd in ready:
                    data = os.read(fd, 4096)
                    os.write(self.b.master if fd == self.a.master else self.a.master, data)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.a.close()
        self.b.close()


class PtySimulator:
    """Base of the simulators that answer on one `PtyPort` from a thread: ``url`` is what the
    driver opens; subclasses implement ``_run`` and loop until ``self._stop`` is set."""

    def __init__(self, port: PtyPort, name: str) -> None:
        self.port = port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def url(self) -> str:
        return self.port.path

    def start(self):  # type: ignore[no-untyped-def]
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.port.close()

    def _run(self) -> None:
        raise NotImplementedError
