"""Recording: one ffmpeg per camera, segments sealed into the journal as they close.

The seeds require full audio and video recording of openings and evaluations (001 art. 25; 004
§2), kept with the procurement files at least 15 years (Government Procurement Law art. 42).

* **Recorder** — ``ffmpeg`` pulls the camera's main stream (RTSP over TCP, or a V4L2 device),
  copies the video without re-encoding into MP4 segments (``-f segment``, cut at the first
  keyframe after each ``recording.segment_s`` boundary of the clock, ``+faststart`` so browsers
  play them at once), and writes a line to the camera's segment list when a segment is complete.
  Audio is copied when it is AAC; other camera audio (G.711 mostly) is converted to AAC, the only
  change made to the stream, because MP4 in a browser cannot carry G.711. ffmpeg exiting or going
  quiet (no new segment within ``stall_s``) is reconnected with backoff (1 s doubling to 30 s),
  with a ``camera_offline`` alarm once per outage and ``recording.camera_state`` records.
* **Sealer** — watchdog (inotify) sees the segment list grow; each new segment is hashed
  (SHA-256), measured (size, ffprobe duration) and journaled (``recording.segment``: camera,
  room, file, start and end, duration, size, hash) in the same transaction as its row in
  ``segments`` and its links to the sessions of that room whose window it overlaps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from appliance.clock import utc_timestamp
from appliance.config import CameraConfig
from appliance.site import Site
from appliance.siteops.alarms import raise_alarm

log = logging.getLogger(__name__)
LIST_SUFFIX = ".csv"  # one segment list per ffmpeg run: segments-<unix time>.csv
NAME_FORMAT = "%Y%m%dT%H%M%SZ"
PID_FILE = "ffmpeg.pid"


class RecordingError(RuntimeError):
    pass


def recordings_dir(site: Site) -> Path:
    return site.config.recording.dir or site.data_dir / "recordings"


def probe(ffprobe: str, target: str, timeout: float = 15.0) -> dict[str, Any]:
    """ffprobe's streams and format of a file or a camera URL, as JSON."""
    args = [ffprobe, "-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration", "-of", "json"]
    if target.startswith("rtsp://"):
        args += ["-rtsp_transport", "tcp"]
    proc = subprocess.run([*args, target], capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RecordingError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"ffprobe failed on {target}")
    return json.loads(proc.stdout or "{}")


def ffmpeg_command(cfg: Any, camera: CameraConfig, out_dir: Path, audio_codec: str | None, listing: Path) -> list[str]:
    source = ["-f", "v4l2", "-i", camera.url] if camera.url.startswith("/dev/") else [
        "-rtsp_transport", "tcp", "-timeout", "5000000", "-i", camera.url]
    if camera.url.startswith("/dev/"):
        video = ["-c:v", "libx264", "-preset", "veryfast"]  # a V4L2 device gives raw frames: encode once
    else:
        video = ["-c:v", "copy"]
    audio = [] if audio_codec is None else ["-map", "0:a:0", "-c:a", "copy" if audio_codec == "aac" else "aac"]
    return [cfg.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *source, "-map", "0:v:0", *video, *audio,
            "-f", "segment", "-segment_time", str(cfg.segment_s), "-segment_atclocktime", "1", "-reset_timestamps", "1",
            "-strftime", "1", "-segment_format", "mp4", "-segment_format_options", "movflags=+faststart",
            "-segment_list", str(listing), "-segment_list_type", "csv", "-segment_list_flags", "+live",
            str(out_dir / f"{NAME_FORMAT}.mp4")]


class CameraRecorder:
    """Keeps one ffmpeg recording one camera; reconnects with backoff. An outage lasts from a
    failure (no connection, ffmpeg exiting, no new segment within ``stall_s``) to the next
    sealed segment."""

    def __init__(self, site: Site, camera: CameraConfig) -> None:
        self.site, self.camera = site, camera
        self.cfg = site.config.recording
        self.dir = recordings_dir(site) / camera.name
        # The segment lists live apart from the video: the sealer watches this folder only, so
        # ffmpeg's thousands of writes a second into the segment never wake it (watching the
        # segment folder cost 80 % of a core per 4 Mbit/s stream).
        self.lists = self.dir / "lists"
        self.proc: subprocess.Popen[bytes] | None = None
        self.last_segment = time.monotonic()
        self.backoff = 1.0
        self.next_try = 0.0
        self.outage = False
        self.error = ""
        self._stderr: Any = None

    @property
    def stall_s(self) -> float:
        return self.cfg.stall_s or 2 * self.cfg.segment_s + 15

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            audio = None
            if not self.camera.url.startswith("/dev/"):
                streams = probe(self.cfg.ffprobe, self.camera.url).get("streams", [])
                audio = next((s["codec_name"] for s in streams if s.get("codec_type") == "audio"), None)
            self.lists.mkdir(parents=True, exist_ok=True)
            listing = self.lists / f"segments-{time.time_ns()}{LIST_SUFFIX}"
            cmd = ffmpeg_command(self.cfg, self.camera, self.dir, audio, listing)
            self._reap_previous()
            self._stderr = open(self.dir / "ffmpeg.log", "ab")
            # UTC file names; its own process group, so a signal to us does not cut it mid-write.
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                         env={**os.environ, "TZ": "UTC"}, start_new_session=True)
            (self.dir / PID_FILE).write_text(f"{self.proc.pid}\n")
            self.last_segment = time.monotonic()
        except (RecordingError, OSError, subprocess.TimeoutExpired) as exc:
            self.proc = None
            self._failed(str(exc))

    def _reap_previous(self) -> None:
        """An ffmpeg left by a run of ours that was killed (kill -9, a crash) still records this
        camera: stop it the gentle way, so it closes its segment (sealed with the rest), before
        a second one starts. Only a process whose command line names this camera's list folder."""
        try:
            pid = int((self.dir / PID_FILE).read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            return
        if str(self.lists) not in cmdline:
            return
        log.warning("camera %s: stopping the ffmpeg (pid %d) of an earlier run", self.camera.name, pid)
        os.kill(pid, signal.SIGINT)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # ffmpeg closes the open segment and its list line
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _failed(self, why: str) -> None:
        self.outage = True
        self.error = why[:300]
        self.next_try = time.monotonic() + self.backoff
        self.backoff = min(30.0, self.backoff * 2)

    def segment_sealed(self) -> None:
        self.last_segment = time.monotonic()
        self.backoff = 1.0
        self.outage = False
        self.error = ""

    def check(self) -> tuple[str, str]:
        """Keep it running; returns (state, detail): 'recording' or 'offline'."""
        now = time.monotonic()
        if self.proc is not None:
            code = self.proc.poll()
            if code is None and now - self.last_segment > self.stall_s:
                self.stop()
                self._failed(f"no new segment for {int(now - self.last_segment)} s")
            elif code is not None:
                self.stop()
                self._failed(f"ffmpeg exited with {code}: {self._last_error()}")
        if self.proc is None and now >= self.next_try:
            self.start()
        return ("offline", self.error) if self.outage else ("recording", "")

    def _last_error(self) -> str:
        try:
            lines = (self.dir / "ffmpeg.log").read_text(errors="replace").strip().splitlines()
            return lines[-1][:200] if lines else ""
        except OSError:
            return ""


@dataclass(frozen=True)
class Sealed:
    id: int
    path: Path
    sha256: str
    seq: int


CHUNK = 1 << 20  # segments are also hashed per MiB, so a changed byte can be located


def sha256_file(path: Path) -> str:
    return file_digests(path)[0]


def file_digests(path: Path) -> tuple[str, list[str]]:
    """(SHA-256 of the whole file, SHA-256 of each CHUNK-byte piece), hex."""
    whole, chunks = hashlib.sha256(), []
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            whole.update(block)
            chunks.append(hashlib.sha256(block).hexdigest())
    return whole.hexdigest(), chunks


def chunks_root(chunks: list[str]) -> str:
    """SHA-256 over the concatenated raw chunk digests: signed in the segment's record."""
    return hashlib.sha256(b"".join(bytes.fromhex(c) for c in chunks)).hexdigest()


def seal_segment(site: Site, camera: CameraConfig, path: Path,
                 span: tuple[datetime, datetime] | None = None) -> Sealed | None:
    """Hash, measure and journal one closed segment; None when it was sealed before.

    ``span``: its wall-clock start and end, from the recorder's segment list (see
    ``RecorderService``). Without it, the end is the file's modification time — ffmpeg closes a
    segment when the first keyframe after the boundary arrives, live, and never writes it again —
    and the start that minus the duration."""
    base = recordings_dir(site)
    rel = str(path.relative_to(base))
    if site.store.reader().execute("SELECT 1 FROM segments WHERE path = ?", (rel,)).fetchone():
        return None
    info = probe(site.config.recording.ffprobe, str(path))
    duration_ms = int(float(info.get("format", {}).get("duration") or 0) * 1000)
    stat = path.stat()
    if span is None:
        end = datetime.fromtimestamp(stat.st_mtime_ns // 1000 / 1e6, timezone.utc)
        span = (end - timedelta(milliseconds=duration_ms), end)
    start, end = span
    digest, chunks = file_digests(path)
    size = stat.st_size
    with site.store.transaction() as conn:
        sessions = [r[0] for r in conn.execute(
            """SELECT id FROM sessions WHERE room = ? AND state != 'scheduled' AND start <= ? AND COALESCE(ended, end) >= ?""",
            (camera.room, utc_timestamp(end + timedelta(hours=2)), utc_timestamp(start)))
            if _in_window(conn, r[0], start, end)]
        record = site.journal.append(conn, "recording.segment", {
            "camera": camera.name, "room": camera.room, "file": rel, "start": utc_timestamp(start), "end": utc_timestamp(end),
            "duration_ms": duration_ms, "size": size, "sha256": digest, "chunk_size": CHUNK,
            "chunks_sha256": chunks_root(chunks), "sessions": sessions})
        cur = conn.execute(
            """INSERT INTO segments (camera, room, path, start, end, duration_ms, size, sha256, chunks, seq, sealed)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (camera.name, camera.room, rel, utc_timestamp(start), utc_timestamp(end), duration_ms, size, digest,
             " ".join(chunks), record.seq, utc_timestamp(site.clock.now())))
        segment_id = int(cur.lastrowid or 0)
        for session in sessions:
            conn.execute("INSERT INTO segment_sessions (segment, session) VALUES (?, ?)", (segment_id, session))
    return Sealed(segment_id, path, digest, record.seq)


def _in_window(conn: Any, session: str, start: datetime, end: datetime) -> bool:
    """The session's window: from admission (start − admission_opens_min) to its end (or its
    planned end while it runs)."""
    row = conn.execute("SELECT start, end, ended, admission_opens_min FROM sessions WHERE id = ?", (session,)).fetchone()
    opens = datetime.fromisoformat(row[0].replace("Z", "+00:00")) - timedelta(minutes=row[3])
    closes = datetime.fromisoformat((row[2] or row[1]).replace("Z", "+00:00"))
    return start < closes and end > opens


class _ListWatcher(FileSystemEventHandler):
    def __init__(self, service: "RecorderService") -> None:
        self.service = service

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Writes only: the sealer's own reads of the list open it too (inotify reports opens),
        # which would otherwise wake it in a loop.
        if event.event_type not in ("opened", "closed_no_write") and str(event.src_path).endswith(LIST_SUFFIX):
            self.service.wake.set()


class RecorderService:
    """The recorder worker of ``appliance run`` / ``appliance record``."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.simulated: list[Any] = []
        cameras = list(site.config.recording.cameras)
        if site.config.recording.simulate:
            cameras = [self._simulated(c) for c in cameras]
        self.recorders = {c.name: CameraRecorder(site, c) for c in cameras}
        self.wake = threading.Event()
        self._offsets: dict[str, int] = {}
        self._anchors: dict[str, float] = {}  # segment list → wall clock at its stream time 0
        self._seal_lock = threading.Lock()
        self._next_housekeeping = 0.0
        self._next_disk_check = 0.0
        from appliance.retention import DiskWatch

        self.disk = DiskWatch(site)
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="seal")
        self._offline: set[str] = set()
        self._observer: Any = None
        self._sealer: threading.Thread | None = None
        self._stop = threading.Event()
        self.health: Any = None
        self.sealed: list[tuple[str, float]] = []  # (file, seconds from list line to sealed record), for benchmarks

    def _simulated(self, camera: CameraConfig) -> CameraConfig:
        """The camera's stream from a simulated camera on loopback (10 fps to spare the CPU)."""
        from devices.camera import CameraSimError, SimulatedCamera

        try:
            sim = SimulatedCamera("--fps", "10", "--bitrate", "500")
        except CameraSimError as exc:
            log.warning("camera %s: %s", camera.name, exc)
            return camera.model_copy(update={"url": "rtsp://127.0.0.1:9/unavailable-simulated-camera"})
        self.simulated.append(sim)
        return camera.model_copy(update={"url": sim.main, "substream_url": sim.sub})

    def start(self) -> None:
        if shutil.which(self.site.config.recording.ffmpeg) is None and self.recorders:
            raise RecordingError("ffmpeg is not installed (Debian package ffmpeg)")
        with self.site.store.transaction() as conn:
            conn.execute("DELETE FROM camera_streams")
            for r in self.recorders.values():
                conn.execute("INSERT INTO camera_streams (name, room, live_url, updated) VALUES (?, ?, ?, ?)",
                             (r.camera.name, r.camera.room, r.camera.substream_url or r.camera.url,
                              utc_timestamp(self.site.clock.now())))
        self._observer = Observer()
        for recorder in self.recorders.values():
            recorder.lists.mkdir(parents=True, exist_ok=True)
            self._observer.schedule(_ListWatcher(self), str(recorder.lists), recursive=False)
        self._observer.start()
        self._sealer = threading.Thread(target=self._seal_loop, name="sealer", daemon=True)
        self._sealer.start()
        from appliance.camera_health import HealthWatch

        self.health = HealthWatch(self.site, [r.camera for r in self.recorders.values()])
        threading.Thread(target=self._health_loop, name="camera-health", daemon=True).start()
        # Each start asks the camera what it sends (ffprobe, a second or two): all at once.
        starters = [threading.Thread(target=r.start, name=f"start-{name}") for name, r in self.recorders.items()]
        for t in starters:
            t.start()
        for t in starters:
            t.join()

    def stop(self) -> None:
        for recorder in self.recorders.values():
            recorder.stop()
        self.seal_pending()  # the segments closed by stopping
        self._stop.set()
        self.wake.set()
        if self._sealer is not None:
            self._sealer.join(10)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
        for sim in self.simulated:
            sim.stop()
        self._pool.shutdown(wait=True)

    def _health_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.health.step()
            except Exception:  # a bad frame must not end the watch
                log.exception("camera health check failed")

    def _seal_loop(self) -> None:
        while not self._stop.is_set():
            self.wake.wait(1.0)
            self.wake.clear()
            try:
                self.seal_pending()
            except Exception:  # a bad segment must not stop the sealing of the others
                log.exception("sealing failed")

    def seal_pending(self) -> int:
        """Seal every segment the lists name that is not sealed yet (after a restart too).

        Times come from the list: ffmpeg writes each segment's start and end on the stream's
        clock, continuous within one run; one anchor per run ties that clock to the wall clock: a
        segment's close (its modification time) is its end, give or take the delay of the close
        under load, so the anchor is the earliest that any of the run's segments gives. Within a
        run, consecutive segments abut (or overlap by the anchor's correction), never leave a gap. Segments are hashed and
        probed on a few threads (many cameras close at the same clock boundary)."""
        with self._seal_lock:  # the sealer thread, and stop() for the last segments
            return self._seal_lists()

    def _seal_lists(self) -> int:
        jobs = []
        for recorder in self.recorders.values():
            for listing in sorted(recorder.lists.glob(f"segments-*{LIST_SUFFIX}")):
                key = str(listing)
                with open(listing, "rb") as f:
                    f.seek(self._offsets.get(key, 0))
                    data = f.read()
                complete = data[: data.rfind(b"\n") + 1]  # a line being written waits for the next round
                self._offsets[key] = self._offsets.get(key, 0) + len(complete)
                for line in complete.decode(errors="replace").splitlines():
                    parts = [p.strip() for p in line.split(",")]
                    if len(parts) < 3 or not parts[0]:
                        continue
                    try:
                        start_s, end_s = float(parts[1]), float(parts[2])
                    except ValueError:
                        continue
                    path = recorder.dir / parts[0]
                    try:  # a close can be late (load), never early: the earliest estimate is the best
                        anchor = min(self._anchors.get(key, float("inf")), path.stat().st_mtime - end_s)
                    except OSError:
                        continue
                    self._anchors[key] = anchor
                    span = (datetime.fromtimestamp(anchor + start_s, timezone.utc), datetime.fromtimestamp(anchor + end_s, timezone.utc))
                    jobs.append((recorder, path, span))
        return sum(self._pool.map(lambda job: self._seal(*job), jobs))

    def _seal(self, recorder: CameraRecorder, path: Path, span: tuple[datetime, datetime]) -> int:
        try:
            sealed = seal_segment(self.site, recorder.camera, path, span)
        except (RecordingError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            log.warning("segment %s of %s not sealed: %s", path.name, recorder.camera.name, exc)
            return 0
        recorder.segment_sealed()
        if sealed is None:
            return 0
        self.sealed.append((path.name, time.time() - path.stat().st_mtime))
        return 1

    def step(self) -> str:
        now = time.monotonic()
        if now >= self._next_disk_check:  # statvfs: cheap, and a filling disk must be seen early
            self._next_disk_check = now + 5
            level = self.disk.level
            self.disk.check()
            if self.disk.level == 2 and level < 2:
                self._next_housekeeping = now  # make room at once
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + 60
            from appliance.retention import apply_retention

            apply_retention(self.site)
        states = {}
        for name, recorder in self.recorders.items():
            state, detail = recorder.check()
            states[name] = state
            if state == "offline" and name not in self._offline:
                self._offline.add(name)
                with self.site.store.transaction() as conn:
                    record = self.site.journal.append(conn, "recording.camera_state", {
                        "camera": name, "room": recorder.camera.room, "state": "offline", "detail": detail})
                    raise_alarm(self.site, conn, "camera_offline", seq=record.seq,
                                detail={"camera": name, "room": recorder.camera.room})
            elif state == "recording" and name in self._offline:
                self._offline.discard(name)
                self.site.journal.record("recording.camera_state", {"camera": name, "room": recorder.camera.room,
                                                                    "state": "recording", "detail": ""})
        if not states:
            return "no cameras configured yet"
        recording = sum(1 for s in states.values() if s == "recording")
        return f"{recording}/{len(states)} cameras recording"
