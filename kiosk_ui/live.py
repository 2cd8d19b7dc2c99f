"""Live updates for every screen, as server-sent events.

One feed per web process watches the database: watchdog (inotify) reports each write to the
SQLite WAL, by whichever process, and a 1 s poll catches anything else (heartbeats aging, the
clock). When the snapshot changes, every open stream gets it. Screens paint the values they
show from it, so nothing needs a reload.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from kiosk_ui.status import collect_status

log = logging.getLogger(__name__)
POLL_S = 1.0
KEEPALIVE_S = 15.0
READ_ONLY_EVENTS = frozenset({"opened", "closed_no_write"})


def _comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """What a change is: not the clock, not a service's heartbeat going on as before (each
    worker beats every few seconds; a beat that stops shows as the state ``stale``)."""
    return {**{k: v for k, v in snapshot.items() if k != "time"},
            "services": [{k: v for k, v in s.items() if k != "heartbeat"} for s in snapshot.get("services", [])]}


class _Poke(FileSystemEventHandler):
    def __init__(self, feed: "LiveFeed") -> None:
        self.feed = feed

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Writes only: our own reads open the files too (inotify reports opens), which would
        # otherwise wake us in a loop.
        if event.event_type not in READ_ONLY_EVENTS and str(event.src_path).endswith((".db", ".db-wal")):
            self.feed.poke()


class LiveFeed:
    def __init__(self, site: Any) -> None:
        self.site = site
        self.version = 0
        self.snapshot: dict[str, Any] | None = None
        self._changed = threading.Condition()
        self._poked = threading.Event()
        self._stop = threading.Event()
        self._started = False
        self._start_lock = threading.Lock()
        self._observer: Any = None
        self.keepalive_s = KEEPALIVE_S  # also how soon a stream whose client left notices it
        # Streams hold a web thread each: at most ``per_client`` for one login session or kiosk,
        # ``per_account`` for all the sessions of one account, and ``total`` in all, so one
        # client (24 tabs, a looping script, an account logged in 50 times) cannot take every thread.
        web = site.config.web
        self.per_client, self.total = web.streams_per_client, max(1, web.threads - 8)
        self.per_account = web.streams_per_account
        self._open: dict[str, list[threading.Event]] = {}  # client → its streams' stop signals, oldest first
        self._account_of: dict[str, str] = {}  # client → its account (sessions only)
        self._open_lock = threading.Lock()

    def admit(self, client: str, account: str | None = None) -> threading.Event | None:
        """A stream slot for ``client`` (a login session or a kiosk; ``account`` the session's
        account): its stop signal, or None when the account's sessions together hold their
        share or the web server has no slot left at all. A client at its own share gets the
        slot of its oldest stream, which ends within a second (a screen reloading leaves such
        streams behind until they notice). `release` gives the slot back."""
        with self._open_lock:
            mine = self._open.setdefault(client, [])
            if len(mine) >= self.per_client:
                mine.pop(0).set()
            elif (account is not None and sum(len(v) for c, v in self._open.items()
                                              if self._account_of.get(c) == account) >= self.per_account) \
                    or sum(len(v) for v in self._open.values()) >= self.total:
                if not mine:
                    self._open.pop(client, None)
                return None
            if account is not None:
                self._account_of[client] = account
            stop = threading.Event()
            mine.append(stop)
            return stop

    def release(self, client: str, stop: threading.Event) -> None:
        with self._open_lock:
            mine = self._open.get(client, [])
            if stop in mine:
                mine.remove(stop)
            if not mine:
                self._open.pop(client, None)
                self._account_of.pop(client, None)

    def streams(self, client: str | None = None) -> int:
        with self._open_lock:
            return len(self._open.get(client, [])) if client else sum(len(v) for v in self._open.values())

    def ensure_started(self) -> None:
        with self._start_lock:
            if self._started:
                return
            self._refresh()  # raises (and is retried by the next stream) when the database is unusable
            self._started = True
            threading.Thread(target=self._run, name="live-feed", daemon=True).start()
            try:
                self._observer = Observer()
                self._observer.schedule(_Poke(self), str(self.site.data_dir), recursive=False)
                self._observer.start()
            except OSError:  # no inotify: the poll still works, only slower
                log.warning("file watching unavailable; live updates fall back to polling")
                self._observer = None

    def poke(self) -> None:
        self._poked.set()

    def stop(self) -> None:
        self._stop.set()
        self._poked.set()
        with self._changed:
            self._changed.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(2)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _refresh(self) -> None:
        snapshot = collect_status(self.site)
        if self.snapshot is None or _comparable(snapshot) != _comparable(self.snapshot):
            with self._changed:
                self.snapshot = snapshot
                self.version += 1
                self._changed.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            poked = self._poked.wait(POLL_S)
            self._poked.clear()
            # A WAL write is reported when its frames are written, which can be just before the
            # commit becomes visible: look again shortly after, unless a new write comes first.
            for delay in (0.0, 0.005, 0.02, 0.1) if poked else (0.0,):
                if delay and (self._poked.wait(delay) or self._stop.is_set()):
                    break
                try:
                    self._refresh()
                except Exception:  # a locked or busy database must not end live updates
                    log.exception("live feed refresh failed")

    def wait(self, seen: int, timeout: float) -> tuple[int, dict[str, Any] | None]:
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen or self._stop.is_set(), timeout)
            return self.version, self.snapshot

    def stream(self, still_allowed: Any, view: Any = None, ended: Any = None) -> Iterator[str]:
        """Server-sent events: ``status`` events with the snapshot (or ``view(snapshot)``),
        comments as keep-alives. Ends when the feed stops, ``still_allowed()`` turns false, or
        ``ended`` (events: the client left, the stream's slot was given to a newer one) is set:
        those are looked at every second."""
        self.ensure_started()
        seen = -1
        yield "retry: 2000\n\n"
        while not self._stop.is_set():
            waited, version, snapshot = 0.0, seen, None
            while waited < self.keepalive_s and version == seen and not self._stop.is_set():
                if ended and any(e.is_set() for e in ended):
                    return
                step = min(1.0, self.keepalive_s - waited)
                version, snapshot = self.wait(seen, step)
                waited += step
            if (ended and any(e.is_set() for e in ended)) or not still_allowed():
                return
            if version != seen and snapshot is not None:
                seen = version
                event = {**(view(snapshot) if view else snapshot), "emitted": time.time()}
                yield f"event: status\nid: {version}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
            else:
                yield ": keep-alive\n\n"
