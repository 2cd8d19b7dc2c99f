"""systemd's service notification protocol (sd_notify(3)): READY=1, WATCHDOG=1, STOPPING=1.

The protocol is one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET (a leading '@'
means the abstract namespace). It is small enough that a dependency (python-systemd needs
libsystemd headers to build) would cost more than these lines.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send ``message``; False (and no error) when not running under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec for this process, in seconds, or None when not set."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
