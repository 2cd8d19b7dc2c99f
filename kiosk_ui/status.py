"""The status page: site, services, journal head and record count (read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template

bp = Blueprint("status", __name__)

STATE_LABELS = {
    "starting": "正在启动 starting",
    "running": "运行中 running",
    "failed": "故障 failed",
    "stopping": "正在停止 stopping",
    "stopped": "已停止 stopped",
}


def _age_seconds(site: Any, stamp: str) -> int:
    then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=site.clock.now().tzinfo)
    return max(0, int((site.clock.now() - then).total_seconds()))


def collect_status() -> dict[str, Any]:
    site = current_app.extensions["site"]
    seq, head = site.journal.current_head()
    latest = site.journal.latest_checkpoint()
    stale_after = site.config.services.heartbeat_s * site.config.services.watchdog_grace
    services = []
    from appliance.runtime import ServiceStatus

    for row in ServiceStatus(site).all():
        age = _age_seconds(site, row["heartbeat"])
        state = row["state"]
        if state == "running" and age > stale_after:
            state = "stale"
        services.append({**row, "state": state, "heartbeat_age_s": age})
    return {
        "site": {"id": site.config.site.id, "name": site.config.site.name},
        "time": site.clock.now().isoformat(timespec="seconds"),
        "journal": {
            "records": seq,
            "head": head,
            "checkpoint_size": latest[0] if latest else 0,
        },
        "services": services,
    }


@bp.get("/")
def status_page() -> str:
    return render_template("status.html", status=collect_status(), labels=STATE_LABELS)


@bp.get("/api/v1/status")
def status_json() -> Any:
    return jsonify(collect_status())
