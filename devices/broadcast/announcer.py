"""The announcement queue: one player, highest priority first (emergency > call > information),
never two announcements at once. Each result carries the SHA-256 of the audio actually played
(as a WAV file), for the journal."""

from __future__ import annotations

import hashlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from devices.broadcast.audio import RATE, Sink, ZoneRouter, chime, read_wav, resample, write_wav
from devices.broadcast.tts import TtsEngine

log = logging.getLogger(__name__)


class Priority(IntEnum):
    EMERGENCY = 0
    CALL = 1
    INFORMATION = 2


@dataclass(order=True)
class Announcement:
    priority: int
    order: int
    text: str | None = field(compare=False, default=None)
    clip: str | None = field(compare=False, default=None)
    with_chime: bool = field(compare=False, default=True)
    id: str = field(compare=False, default="")
    zones: tuple[str, ...] = field(compare=False, default=("all",))


@dataclass(frozen=True)
class Played:
    id: str
    priority: str
    text: str | None
    clip: str | None
    audio_sha256: str
    duration_s: float
    started: float  # wall clock (time.time())
    finished: float
    error: str | None = None
    zones: tuple[str, ...] = ("all",)
    speakers: tuple[str, ...] = ()  # the speakers it played on, when speakers are set up by zone


class Announcer:
    def __init__(self, engine: TtsEngine, sink: Sink, *, clips_dir: Path | None = None,
                 on_played: Callable[[Played], None] | None = None) -> None:
        self.engine, self.sink, self.clips_dir = engine, sink, clips_dir
        self.on_played = on_played or (lambda played: None)
        self._queue: queue.PriorityQueue[Announcement] = queue.PriorityQueue()
        self._order = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.playing = threading.Lock()  # held while audio goes out: never two at once

    def start(self) -> "Announcer":
        self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(Announcement(-1, -1))  # wake the worker
        if self._thread is not None:
            self._thread.join(5)

    def announce(self, text: str | None = None, *, clip: str | None = None, priority: Priority = Priority.INFORMATION,
                 with_chime: bool = True, id: str | None = None, zones: tuple[str, ...] = ("all",)) -> str:
        if (text is None) == (clip is None):
            raise ValueError("an announcement is either text or a pre-recorded clip")
        if not zones:
            raise ValueError("an announcement needs at least one zone ('all' for everywhere)")
        order = next(self._order)
        item = Announcement(int(priority), order, text, clip, with_chime, id or f"a{order}", tuple(zones))
        self._queue.put(item)
        return item.id

    def pending(self) -> int:
        return self._queue.qsize()

    def render(self, item: Announcement) -> bytes:
        """The PCM (mono, 16-bit, RATE) of one announcement: chime, then speech or clip."""
        if item.clip is not None:
            if self.clips_dir is None:
                raise FileNotFoundError("no clips directory configured")
            rate, pcm = read_wav((self.clips_dir / f"{item.clip}.wav").read_bytes())
        else:
            rate, pcm = read_wav(self.engine.synthesize(item.text or ""))
        speech = resample(pcm, rate, RATE)
        gap = bytes(int(RATE * 0.2) * 2)
        return (chime() + gap if item.with_chime else b"") + speech

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if self._stop.is_set():
                return
            started = time.time()
            speakers: tuple[str, ...] = ()
            try:
                pcm = self.render(item)
                digest = hashlib.sha256(write_wav(pcm, RATE)).hexdigest()
                with self.playing:
                    if isinstance(self.sink, ZoneRouter):
                        speakers = tuple(self.sink.play_zones(pcm, RATE, item.zones))
                    else:
                        self.sink.play(pcm, RATE)
                played = Played(item.id, Priority(item.priority).name.lower(), item.text, item.clip, digest,
                                len(pcm) / 2 / RATE, started, time.time(), zones=item.zones, speakers=speakers)
            except Exception as exc:  # a failed announcement is reported, the queue goes on
                log.warning("announcement %s failed: %s", item.id, exc)
                played = Played(item.id, Priority(item.priority).name.lower(), item.text, item.clip, "", 0.0,
                                started, time.time(), str(exc), zones=item.zones)
            self.on_played(played)
