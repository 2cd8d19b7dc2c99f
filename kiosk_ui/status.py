"""What the site's screens show about the appliance itself: site, clock, services, journal.
Read-only queries; shared by the console home, the JSON API and the live-update feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance.clockstatus import clock_status
from appliance.keys import fingerprint, grouped
from appliance.names import device_labels
from appliance.runtime import ServiceStatus
from appliance.siteops.alarms import open_alarms
from sync.agent import sync_status

# Capabilities later issues bring; until then the console says so instead of showing nothing.
VENUE_TZ = ZoneInfo("Asia/Shanghai")


def _age_seconds(now: datetime, stamp: str) -> int:
    then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return max(0, int((now - then).total_seconds()))


def collect_status(site: Any) -> dict[str, Any]:
    now = site.clock.now()
    seq, head = site.journal.current_head()
    head_ts = None
    if seq:
        row = site.store.reader().execute("SELECT ts FROM journal WHERE seq = ?", (seq,)).fetchone()
        head_ts = row[0] if row else None
    latest = site.journal.latest_checkpoint()
    stale_after = site.config.services.heartbeat_s * site.config.services.watchdog_grace
    services = []
    for row in ServiceStatus(site).all():
        state = row["state"]
        age = _age_seconds(now, row["heartbeat"])
        if state == "running" and age > stale_after:
            state = "stale"
        services.append({"name": row["name"], "state": state, "detail": row["detail"], "pid": row["pid"],
                         "heartbeat": row["heartbeat"]})
    labels = device_labels(site.config)
    devices = [{**dict(r), "label": labels.get(r["name"], r["name"])} for r in site.store.reader().execute(
        "SELECT name, kind, state, detail, updated FROM device_health ORDER BY kind, name")]
    clock = clock_status()
    return {
        "site": {"id": site.config.site.id, "name": site.config.site.name},
        "time": now.isoformat(timespec="seconds"),
        "clock": {"synchronized": clock.synchronized, "max_error_ms": clock.max_error_ms},
        "journal": {
            "records": seq,
            "head": head,
            "head_ts": head_ts,
            "checkpoint_size": latest[0] if latest else 0,
            # What staff wrote down at init, and what the center shows beside the pinned key.
            "key_fingerprint": fingerprint(site.public_key),
            "key_fingerprint_grouped": grouped(fingerprint(site.public_key)),
        },
        "services": services,
        "devices": devices,
        "sync": sync_status(site),
        # A remote committee's screens arriving from the main venue are not journaled: their
        # version is what tells a secondary venue's terminals to look again (docs/remote-evaluation.md).
        "remote_screens": site.store.reader().execute("SELECT MAX(version) FROM remote_screens").fetchone()[0],
        "sessions_today": [dict(r) for r in site.store.reader().execute(
            """SELECT s.id, s.kind, s.section_name, s.state, s.start, r.name AS room FROM sessions s
               JOIN rooms r ON r.id = s.room WHERE s.day = ? ORDER BY s.start""",
            (now.astimezone(VENUE_TZ).date().isoformat(),))],
        "alarms": [{k: a[k] for k in ("id", "kind", "raised", "session", "section", "person")} for a in open_alarms(site, 20)],
    }
