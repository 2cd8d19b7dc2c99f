"""Bounded, in-memory throttles for events an attacker can repeat for free: which of them to
journal, and how many one address may make a minute. Per process; memory bounded."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable


class JournalThrottle:
    """Which of many similar events to journal: the first per key each ``every_s`` seconds, and
    at most ``cap`` a minute over all keys; each journaled one says how many were left out since
    the last of its key. Memory is bounded (the oldest keys are forgotten)."""

    def __init__(self, clock: Callable[[], float], every_s: float = 60.0, cap: int = 30, keys: int = 4096) -> None:
        self.clock, self.every_s, self.cap, self.keys = clock, every_s, cap, keys
        self._last: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._window: list[float] = []
        self._lock = threading.Lock()

    def take(self, key: str) -> int | None:
        """None: leave this one out; else the number left out since this key's last record."""
        with self._lock:
            now = self.clock()
            last, skipped = self._last.pop(key, (-1e18, 0))
            self._window = [t for t in self._window if now - t < 60.0]
            if now - last < self.every_s or len(self._window) >= self.cap:
                self._last[key] = (last, skipped + 1)
                out = None
            else:
                self._last[key] = (now, 0)
                self._window.append(now)
                out = skipped
            while len(self._last) > self.keys:
                self._last.popitem(last=False)
            return out


class AddressBudget:
    """At most ``per_minute`` attempts per address in any minute (a sliding window per address,
    bounded memory)."""

    def __init__(self, clock: Callable[[], float], per_minute: int, keys: int = 4096) -> None:
        self.clock, self.per_minute, self.keys = clock, per_minute, keys
        self._seen: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, address: str) -> bool:
        with self._lock:
            now = self.clock()
            times = [t for t in self._seen.pop(address, []) if now - t < 60.0]
            allowed = len(times) < self.per_minute
            if allowed:
                times.append(now)
            self._seen[address] = times
            while len(self._seen) > self.keys:
                self._seen.popitem(last=False)
            return allowed
