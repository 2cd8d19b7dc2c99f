"""Keeping footage, and the recordings disk.

Government procurement files, recordings included, are kept at least 15 years (Government
Procurement Law art. 42: 采购文件的保存期限为从采购结束之日起至少保存十五年). The rules:

* **session footage** (a segment linked to a session) is deleted only when the provincial center
  has confirmed it received the segment (``segments.center_ack``, set by sync) **and**
  ``recording.legal_hold_years`` have passed since its end — never to make room;
* **ambient footage** (linked to no session) loops: deleted ``recording.ambient_days`` after its
  end; when the disk is ``disk_critical_pct`` full it is deleted earlier, oldest first, until the
  disk is below ``disk_warn_pct``;
* the disk at ``disk_warn_pct`` / ``disk_critical_pct`` raises an alarm (once per crossing);
* a session does not start (admitting → in progress) unless the recordings disk has
  ``session_space_factor`` × the footage it is expected to need free (its room's cameras, at
  their recent bitrate — or ``expected_mbps`` — for its planned length).

The database and the journal live in the data directory, which should be another filesystem than
the recordings (``recording.dir``): a full recordings disk stops recording (an outage, alarmed),
not the journal. Every deletion is journaled (``recording.deleted``) with the segment's hash.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.clock import utc_timestamp
from appliance.segments import recordings_dir
from appliance.site import Site
from appliance.siteops.alarms import raise_alarm


class SpaceError(ValueError):
    pass


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def disk_usage(site: Site) -> dict[str, int]:
    path = recordings_dir(site)
    path.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(path)
    return {"total": usage.total, "used": usage.used, "free": usage.free,
            "pct": int(100 * usage.used / usage.total) if usage.total else 100}


def expected_need(site: Site, session_id: str) -> int:
    """Bytes of footage the session is expected to need: each camera of its room at its recent
    bitrate (the last 10 sealed segments) or ``expected_mbps``, for the planned length."""
    row = site.store.reader().execute("SELECT room, start, end FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise SpaceError(f"no session {session_id!r}")
    seconds = max(0.0, (_ts(row[2]) - _ts(row[1])).total_seconds())
    need = 0.0
    for camera in (c for c in site.config.recording.cameras if c.room == row[0]):
        recent = site.store.reader().execute(
            "SELECT SUM(size), SUM(duration_ms) FROM (SELECT size, duration_ms FROM segments WHERE camera = ? "
            "ORDER BY id DESC LIMIT 10)", (camera.name,)).fetchone()
        rate = recent[0] / (recent[1] / 1000) if recent[0] and recent[1] else site.config.recording.expected_mbps * 1e6 / 8
        need += rate * seconds
    return int(need)


def check_space_for(site: Site, session_id: str) -> None:
    """Raise SpaceError when the session must not start for lack of room for its footage."""
    need = expected_need(site, session_id)
    if need == 0:
        return  # no camera in its room
    wanted = int(need * site.config.recording.session_space_factor)
    free = disk_usage(site)["free"]
    if free < wanted:
        raise SpaceError(f"the recordings disk has {free / 1e9:.1f} GB free; this session needs "
                         f"{site.config.recording.session_space_factor} × {need / 1e9:.1f} GB for its footage")


def expired(site: Site, now: datetime) -> list[dict[str, Any]]:
    """Segments whose time is up: ambient ones past ``ambient_days``; session ones confirmed by
    the center and past ``legal_hold_years``."""
    cfg = site.config.recording
    rows = site.store.reader().execute(
        """SELECT s.id, s.path, s.end, s.sha256, s.center_ack,
                  (SELECT COUNT(*) FROM segment_sessions l WHERE l.segment = s.id) AS sessions
           FROM segments s WHERE s.deleted IS NULL ORDER BY s.end""").fetchall()
    out = []
    for seg_id, path, end, digest, ack, sessions in rows:
        age = now - _ts(end)
        if sessions == 0 and age >= timedelta(days=cfg.ambient_days):
            out.append({"id": seg_id, "path": path, "sha256": digest, "reason": "ambient_expired"})
        elif sessions and ack is not None and age >= timedelta(days=365 * cfg.legal_hold_years + cfg.legal_hold_years // 4):
            out.append({"id": seg_id, "path": path, "sha256": digest, "reason": "legal_hold_expired"})
    return out


def _delete(site: Site, segment: dict[str, Any], reason: str) -> None:
    path = recordings_dir(site) / segment["path"]
    with site.store.transaction() as conn:
        conn.execute("UPDATE segments SET deleted = ? WHERE id = ? AND deleted IS NULL",
                     (utc_timestamp(site.clock.now()), segment["id"]))
        site.journal.append(conn, "recording.deleted", {"segment": segment["id"], "file": segment["path"],
                                                        "sha256": segment["sha256"], "reason": reason})
    Path(path).unlink(missing_ok=True)  # after the record: a crash between leaves a file, never a lost record


def apply_retention(site: Site, *, full: bool = False) -> dict[str, int]:
    """Delete what has expired; under disk pressure (or ``full``: writes were refused), ambient
    footage oldest first."""
    now = site.clock.now()
    deleted = {"ambient_expired": 0, "legal_hold_expired": 0, "disk_pressure": 0}
    for segment in expired(site, now):
        _delete(site, segment, segment["reason"])
        deleted[segment["reason"]] += 1
    cfg = site.config.recording
    if full or disk_usage(site)["pct"] >= cfg.disk_critical_pct:
        ambient = site.store.reader().execute(
            """SELECT id, path, sha256 FROM segments s WHERE deleted IS NULL
               AND NOT EXISTS (SELECT 1 FROM segment_sessions l WHERE l.segment = s.id) ORDER BY end""").fetchall()
        for seg_id, path, digest in ambient:
            if disk_usage(site)["pct"] < cfg.disk_warn_pct and not (full and deleted["disk_pressure"] == 0):
                break
            _delete(site, {"id": seg_id, "path": path, "sha256": digest}, "disk_pressure")
            deleted["disk_pressure"] += 1
    return deleted


class DiskWatch:
    """Alarms when the recordings disk crosses the warning and critical levels."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.level = 0  # 0 fine, 1 warning, 2 critical

    def check(self, *, refused_writes: bool = False) -> dict[str, int]:
        """``refused_writes``: a recorder was told "No space left on device": the disk is full
        whatever its percentage says (a large write can fail with 10% still free)."""
        usage = disk_usage(self.site)
        cfg = self.site.config.recording
        level = (2 if refused_writes or usage["pct"] >= cfg.disk_critical_pct
                 else 1 if usage["pct"] >= cfg.disk_warn_pct else 0)
        if level > self.level:
            kind = "disk_critical" if level == 2 else "disk_warning"
            with self.site.store.transaction() as conn:
                record = self.site.journal.append(conn, "recording.disk", {"level": kind, "pct": usage["pct"],
                                                                           "free": usage["free"]})
                raise_alarm(self.site, conn, kind, seq=record.seq, detail={"pct": usage["pct"]})
        self.level = level
        return usage
