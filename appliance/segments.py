"""The footage catalogue: where segments live, their hashes, and sealing a closed segment into
the journal with its links to the sessions of its room (docs/recording.md). The recorder
(`appliance.recording`), the health checks, retention, evidence packages and sync read it.

A segment belongs to a session when it overlaps the session's window: from the admission's
opening (``start − admission_opens_min``) to the session's end — its planned end while it has not
ended, or later while it is still going on. Sessions are linked whatever their state (a session
still ``scheduled`` inside its admission window gets its footage), and footage sealed before a
session was planned or moved is linked when the plan loads or the session changes state
(``recording.linked``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from appliance.evidence_format import CHUNK, chunks_root  # noqa: F401  (here for the recorder and the evidence export)
from appliance.clock import utc_timestamp
from appliance.config import CameraConfig
from appliance.credentials import hide_url_passwords
from appliance.site import Site

# The longest a session's window reaches before its start (the plan allows 720 minutes of
# admission): how far back of a segment the sessions that may own it are looked for.
MAX_ADMISSION = timedelta(minutes=720)


class RecordingError(RuntimeError):
    pass


def recordings_dir(site: Site) -> Path:
    return site.config.recording.dir or site.data_dir / "recordings"


def probe(ffprobe: str, target: str, timeout: float = 15.0) -> dict[str, Any]:
    """ffprobe's streams and format of a file or a camera URL, as JSON."""
    args = [ffprobe, "-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration", "-of", "json"]
    if target.startswith("rtsp://"):
        args += ["-rtsp_transport", "tcp", "-timeout", "5000000"]  # a camera that hangs: 5 s, not forever
    try:
        proc = subprocess.run([*args, target], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:  # its text names the command line, URL and password included
        raise RecordingError(f"ffprobe gave no answer within {timeout:.0f} s") from exc
    if proc.returncode:  # its words may repeat the URL, password included
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "ffprobe failed"
        raise RecordingError(hide_url_passwords(last)[:300])
    return json.loads(proc.stdout or "{}")


@dataclass(frozen=True)
class Sealed:
    id: int
    path: Path
    sha256: str
    seq: int




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
        sessions = sessions_for(conn, camera.room, start, end)
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


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def session_window(row: Any, footage_end: datetime | None = None) -> tuple[datetime, datetime]:
    """A session's window (start, end, ended, state, admission_opens_min): from the admission's
    opening to its end; while it has not ended and is under way, up to ``footage_end`` if later
    than its planned end (an evaluation running late keeps its footage)."""
    start, end, ended, state, opens_min = row
    opens = _ts(start) - timedelta(minutes=opens_min)
    if ended:
        return opens, _ts(ended)
    closes = _ts(end)
    if state in ("admitting", "in_progress", "suspended") and footage_end is not None:
        closes = max(closes, footage_end)
    return opens, closes


def sessions_for(conn: Any, room: str, start: datetime, end: datetime) -> list[str]:
    """The sessions of ``room`` whose window overlaps [start, end), whatever their state."""
    out = []
    for session, *window in conn.execute(
            """SELECT id, start, end, ended, state, admission_opens_min FROM sessions
               WHERE room = ? AND start <= ? AND (ended IS NULL OR ended > ?)""",
            (room, utc_timestamp(end + MAX_ADMISSION), utc_timestamp(start))):
        opens, closes = session_window(window, end)
        if start < closes and end > opens:
            out.append(session)
    return out


def relink(site: Site, conn: Any, session: str) -> list[int]:
    """Link the sealed segments of the session's room that overlap its window and are not linked
    yet (footage sealed before the session was planned or moved, or while its window was
    shorter), in the caller's transaction; journaled as ``recording.linked`` with the segments'
    sealing records. Returns their seqs."""
    row = conn.execute("SELECT room, start, end, ended, state, admission_opens_min FROM sessions WHERE id = ?",
                       (session,)).fetchone()
    if row is None:
        return []
    room, *window = row
    opens, closes = session_window(window, site.clock.now())
    found = conn.execute(
        """SELECT s.id, s.seq FROM segments s WHERE s.room = ? AND s.deleted IS NULL AND s.start < ? AND s.end > ?
             AND NOT EXISTS (SELECT 1 FROM segment_sessions l WHERE l.segment = s.id AND l.session = ?) ORDER BY s.seq""",
        (room, utc_timestamp(closes), utc_timestamp(opens), session)).fetchall()
    if not found:
        return []
    conn.executemany("INSERT INTO segment_sessions (segment, session) VALUES (?, ?)", [(r[0], session) for r in found])
    seqs = [r[1] for r in found]
    site.journal.append(conn, "recording.linked", {"session": session, "segments": seqs})
    return seqs
