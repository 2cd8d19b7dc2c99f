"""What people read for the venue's things: each device's display name from the configuration
(`label`, falling back to its name), each gate's, room's, zone's and session's from the day
plan. The screens show these, never the ids the code uses."""

from __future__ import annotations

from typing import Any

from appliance.config import Config


def device_labels(config: Config) -> dict[str, str]:
    """Every configured device's name → the name people read (readers, gates, locker banks,
    speakers, cameras)."""
    devices = config.devices
    out: dict[str, str] = {}
    for item in (*devices.idcard, *devices.gate, *devices.locker, *devices.broadcast.speakers, *config.recording.cameras):
        out[item.name] = item.label or item.name
    return out


def plan_labels(conn: Any) -> dict[str, dict[str, str]]:
    """The day plan's names: ``gates``, ``rooms``, ``zones`` and ``sessions`` (id → name)."""
    return {
        "gates": dict(conn.execute("SELECT id, name FROM gates")),
        "rooms": dict(conn.execute("SELECT id, name FROM rooms")),
        "zones": dict(conn.execute("SELECT id, name FROM zones")),
        "sessions": dict(conn.execute("SELECT id, section_name FROM sessions")),
    }
