"""Recording: one ffmpeg per camera, segments sealed into the journal as they close.

The seeds require full audio and video recording of openings and evaluations (001 art. 25; 004
§2), kept with the procurement files at least 15 years (Government Procurement Law art. 42).

* **Recorder** — ``ffmpeg`` pulls the camera's main stream (RTSP over TCP, or a V4L2 device),
  copies the video without re-encoding into MP4 segments (``-f segment``, cut at the first
  keyframe after each ``recording.segment_s`` boundary of the clock, ``+faststart`` so browsers
  play them at once), and writes a line to the camera's segment list when a segment is complete.
  Audio is copied when it is AAC; other camera audio (G.711 mostly) is converted to AAC, the only
  change made to the stream, because MP4 in a browser cannot carry G.711. Evidence comes first:
  ffmpeg exiting or going quiet (no new segment within ``stall_s``) is retried every
  ``RETRY_S`` (every second after a minute), so footage resumes within about a second of the
  camera answering again; a ``camera_offline`` alarm is raised once per outage, with the
  sessions it touches, and ``recording.camera_state`` records. ffmpeg's own words go to
  ``ffmpeg.log`` with any password in a URL hidden (they repeat the camera's URL).
* **Sealer** — watchdog (inotify) sees the segment list grow; each new segment is hashed,
  measured and journaled (`appliance.segments.seal_segment`). Its span on the wall clock: within
  one ffmpeg run the segments follow each other, each starting where the one before ended and
  lasting its own stream duration; the first of a run ends when its file was closed. A segment
  whose stream duration disagrees with the wall-clock time between its close and the previous
  one (by more than a second and 10 %) — a camera whose stream clock runs wrong — is raised as
  ``camera_clock`` and journaled (``recording.clock_mismatch``), and its span is the wall clock's.
* **Live view** — `appliance.live_pictures`: the latest picture of each watched camera.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from appliance.clock import utc_timestamp
from appliance.config import CameraConfig
from appliance.credentials import hide_url_passwords
from appliance.segments import RecordingError, probe, recordings_dir, seal_segment, sessions_for
from appliance.service_detail import detail as service_detail
from appliance.site import Site
from appliance.siteops.alarms import raise_alarm

log = logging.getLogger(__name__)
LIST_SUFFIX = ".csv"  # one segment list per ffmpeg run: segments-<unix time>.csv
NAME_FORMAT = "%Y%m%dT%H%M%SZ"
PID_FILE = "ffmpeg.pid"
RETRY_S = 0.5  # a camera that is not recording is tried again this soon: footage first
SLOW_RETRY_AFTER_S = 60.0  # after a minute of outage, once a second
LOG_MAX = 1 << 20  # ffmpeg.log is rotated at this size (one old copy kept)
CLOCK_TOLERANCE = (1.0, 0.10)  # stream and wall clock may differ by this (seconds, share) per segment


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
    """Keeps one ffmpeg recording one camera, retried at once when it fails. An outage lasts
    from a failure (no connection, ffmpeg exiting, no new segment within ``stall_s``) to the
    next sealed segment."""

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
        self.next_try = 0.0
        self.outage = False
        self.outage_since: float | None = None  # wall clock
        self.error = ""
        self.refused_writes = False  # ffmpeg said "No space left on device": the recordings disk is full
        self.audio: str | None | bool = False  # the camera's audio codec once probed (None: no audio); False: not yet
        self._starting: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def stall_s(self) -> float:
        return self.cfg.stall_s or 2 * self.cfg.segment_s + 15

    def start(self) -> None:
        """Start ffmpeg (blocking: a first start probes the camera's audio, a second or two)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.audio is False:  # what the camera sends, asked once: a restart must not wait on it
                self.audio = None
                if not self.camera.url.startswith("/dev/"):
                    streams = probe(self.cfg.ffprobe, self.camera.url, timeout=10).get("streams", [])
                    self.audio = next((s["codec_name"] for s in streams if s.get("codec_type") == "audio"), None)
            self.lists.mkdir(parents=True, exist_ok=True)
            listing = self.lists / f"segments-{time.time_ns()}{LIST_SUFFIX}"
            cmd = ffmpeg_command(self.cfg, self.camera, self.dir, self.audio or None, listing)
            self._reap_previous()
            # UTC file names; its own process group, so a signal to us does not cut it mid-write.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    env={**os.environ, "TZ": "UTC"}, start_new_session=True)
            (self.dir / PID_FILE).write_text(f"{proc.pid}\n")
            self._reader = threading.Thread(target=self._log_stderr, args=(proc,), name=f"ffmpeg-log-{self.camera.name}",
                                            daemon=True)
            self._reader.start()
            with self._lock:
                self.proc = proc
                self.last_segment = time.monotonic()
        except (RecordingError, OSError, subprocess.TimeoutExpired) as exc:
            with self._lock:
                self.proc = None
            self.audio = False if isinstance(exc, RecordingError) else self.audio  # ask again next time
            self._failed(str(exc))

    def _log_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        """ffmpeg's words, passwords in URLs hidden, to ffmpeg.log (rotated at LOG_MAX)."""
        path = self.dir / "ffmpeg.log"
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = hide_url_passwords(raw.decode(errors="replace").rstrip())
            if not line:
                continue
            self.last_line = line[:200]
            if "No space left on device" in line:
                self.refused_writes = True  # the service raises the disk alarm and makes room
            try:
                if path.exists() and path.stat().st_size > LOG_MAX:
                    os.replace(path, path.with_name("ffmpeg.log.1"))
                with open(path, "a", encoding="utf-8") as f:
                    f.write(f"{utc_timestamp(datetime.now(timezone.utc))} {line}\n")
            except OSError:
                pass

    last_line = ""

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
        if self._starting is not None:
            self._starting.join(15)
        with self._lock:
            proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # ffmpeg closes the open segment and its list line
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._reader is not None:
            self._reader.join(2)

    def _failed(self, why: str) -> None:
        if not self.outage:
            self.outage, self.outage_since = True, time.time()
        self.error = hide_url_passwords(why)[:300]
        slow = self.outage_since is not None and time.time() - self.outage_since > SLOW_RETRY_AFTER_S
        self.next_try = time.monotonic() + (1.0 if slow else RETRY_S)

    def segment_sealed(self) -> None:
        self.last_segment = time.monotonic()
        self.outage, self.outage_since = False, None
        self.error = ""

    def check(self) -> tuple[str, str]:
        """Keep it running (a start runs on its own thread: other cameras never wait on it);
        returns (state, detail): 'recording', 'starting' (its first start under way) or 'offline'."""
        now = time.monotonic()
        with self._lock:
            proc = self.proc
        if proc is not None:
            code = proc.poll()
            if code is None and now - self.last_segment > self.stall_s:
                self.stop()
                self._failed(f"no new segment for {int(now - self.last_segment)} s")
            elif code is not None:
                self.stop()
                self._failed(f"ffmpeg exited with {code}: {self.last_line}")
        starting = self._starting is not None and self._starting.is_alive()
        if self.proc is None and not starting and now >= self.next_try:
            self._starting = threading.Thread(target=self.start, name=f"start-{self.camera.name}", daemon=True)
            self._starting.start()
        if self.outage:
            return "offline", self.error
        return ("recording", "") if self.proc is not None else ("starting", "")


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
        # segment list (one ffmpeg run) → (its last segment's end on the wall clock, that
        # segment's close time, its end on the stream clock): the chain the next one continues
        self._runs: dict[str, tuple[datetime, float | None, float]] = {}
        self._seal_lock = threading.Lock()
        self._next_housekeeping = 0.0
        self._next_disk_check = 0.0
        self._refused_writes = False  # a recorder was refused writes (disk full): make room at the next housekeeping
        from appliance.retention import DiskWatch

        self.disk = DiskWatch(site)
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="seal")
        self._offline: set[str] = set()
        self._clock_alarmed: dict[str, float] = {}
        self._observer: Any = None
        self._sealer: threading.Thread | None = None
        self._stop = threading.Event()
        self.health: Any = None
        self.live: Any = None
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
            for r in self.recorders.values():  # what the monitoring room lists (no password kept)
                conn.execute("INSERT INTO camera_streams (name, room, live_url, updated) VALUES (?, ?, ?, ?)",
                             (r.camera.name, r.camera.room, hide_url_passwords(r.camera.substream_url or r.camera.url),
                              utc_timestamp(self.site.clock.now())))
        from appliance.live_pictures import LivePictures

        self.live = LivePictures(self.site.config.recording.ffmpeg,
                                 {n: (r.camera.substream_url or r.camera.url, r.dir) for n, r in self.recorders.items()})
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
        for recorder in self.recorders.values():  # each starts on its own thread: all at once
            recorder.check()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
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
        Segments are hashed and probed on a few threads (many cameras close at the same clock
        boundary)."""
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
                    span = self._span(recorder, key, path, start_s, end_s)
                    if span is not None:
                        jobs.append((recorder, path, span))
        return sum(self._pool.map(lambda job: self._seal(*job), jobs))

    def _span(self, recorder: CameraRecorder, key: str, path: Path, start_s: float,
              end_s: float) -> tuple[datetime, datetime] | None:
        """A segment's span on the wall clock (see the module's doc): chained to the run's
        previous segment, or ending at its own close for the first of a run; the wall clock's
        when the stream's disagrees (a camera whose clock runs wrong), which is journaled."""
        try:
            closed = path.stat().st_mtime
        except OSError:  # deleted (retention) before sealing: the chain restarts after it
            previous = self._runs.get(key)
            if previous is not None:
                self._runs[key] = (previous[0], None, end_s)
            return None
        duration = max(0.0, end_s - start_s)
        previous = self._runs.get(key)
        if previous is None or previous[1] is None:
            end = datetime.fromtimestamp(closed, timezone.utc)
            start = end - timedelta(seconds=duration)
        else:
            prev_end, prev_closed, prev_end_s = previous
            wall, stream = closed - prev_closed, end_s - prev_end_s
            start = prev_end
            if abs(wall - stream) > max(CLOCK_TOLERANCE[0], CLOCK_TOLERANCE[1] * wall):
                end = max(start, datetime.fromtimestamp(closed, timezone.utc))
                self._clock_mismatch(recorder, path, stream, wall, start, end)
            else:
                end = start + timedelta(seconds=duration)
        self._runs[key] = (end, closed, end_s)
        return start, end

    def _clock_mismatch(self, recorder: CameraRecorder, path: Path, stream: float, wall: float,
                        start: datetime, end: datetime) -> None:
        """A segment whose stream time is not the time that passed: journaled, and raised as an
        alarm once per camera and hour (a camera whose clock runs wrong does so all the time)."""
        camera = recorder.camera
        with self.site.store.transaction() as conn:
            sessions = sessions_for(conn, camera.room, start, end)
            record = self.site.journal.append(conn, "recording.clock_mismatch", {
                "camera": camera.name, "room": camera.room, "file": path.name, "stream_s": f"{stream:.3f}",
                "wall_s": f"{wall:.3f}", "sessions": sessions})
            last = self._clock_alarmed.get(camera.name)
            if last is None or time.monotonic() - last > 3600:
                self._clock_alarmed[camera.name] = time.monotonic()
                raise_alarm(self.site, conn, "camera_clock", seq=record.seq, session=sessions[0] if sessions else None,
                            detail={"camera": camera.name, "room": camera.room, "stream_s": f"{stream:.3f}",
                                    "wall_s": f"{wall:.3f}"})
        log.warning("camera %s: segment %s holds %.2f s of stream time for %.2f s of wall time", camera.name, path.name,
                    stream, wall)

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

    def _camera_state(self, recorder: CameraRecorder, state: str, detail: str) -> None:
        """An outage's start or end, journaled with the sessions it touches (so a session's
        evidence package shows why its footage has a gap) and, at its start, alarmed."""
        camera, now = recorder.camera, self.site.clock.now()
        since = datetime.fromtimestamp(recorder.outage_since, timezone.utc) if recorder.outage_since else now
        with self.site.store.transaction() as conn:
            sessions = sessions_for(conn, camera.room, min(since, now), now + timedelta(seconds=1))
            payload = {"camera": camera.name, "room": camera.room, "state": state, "detail": hide_url_passwords(detail),
                       "sessions": sessions}
            if state == "offline":
                payload["since"] = utc_timestamp(since)
            record = self.site.journal.append(conn, "recording.camera_state", payload)
            if state == "offline":
                raise_alarm(self.site, conn, "camera_offline", seq=record.seq, session=sessions[0] if sessions else None,
                            detail={"camera": camera.name, "room": camera.room, "sessions": sessions})

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

            apply_retention(self.site, full=self._refused_writes)
            self._refused_writes = False
        if self.live is not None:
            self.live.step()
        states = {}
        for name, recorder in self.recorders.items():
            state, detail = recorder.check()
            states[name] = state
            if state == "offline" and name not in self._offline:
                self._offline.add(name)
                self._camera_state(recorder, "offline", detail)
            elif state == "recording" and name in self._offline:
                self._offline.discard(name)
                self._camera_state(recorder, "recording", "")
            if recorder.refused_writes:  # the recordings disk is full: say so now, and make room
                recorder.refused_writes = False
                level = self.disk.level
                self.disk.check(refused_writes=True)
                self._refused_writes = True
                if self.disk.level == 2 and level < 2:
                    self._next_housekeeping = now
        if not states:
            return service_detail("recorder_none")
        recording = sum(1 for s in states.values() if s == "recording")
        return service_detail("recorder_summary", recording=recording, total=len(states))
