"""Waiting for SIGTERM/SIGINT safely.

The signals wake a self-pipe (``signal.set_wakeup_fd``) that the main thread selects on; the
Python-level handlers do nothing. Setting a ``threading.Event`` from a signal handler can
deadlock: the handler runs on the main thread, possibly while that thread holds the Event's
internal lock inside ``Event.wait()``.
"""

from __future__ import annotations

import os
import select
import signal


class StopSignals:
    def __init__(self) -> None:
        self._read_fd, write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)

    def wait(self, timeout: float) -> str | None:
        """The name of the stop signal received within ``timeout`` seconds, else None."""
        ready, _, _ = select.select([self._read_fd], [], [], timeout)
        if not ready:
            return None
        data = os.read(self._read_fd, 64)
        stops = [b for b in data if b in (signal.SIGTERM, signal.SIGINT)]
        return signal.Signals(stops[-1]).name if stops else None
