"""The durable command table: anyone queues ("open locker 12 of bank-a"); the devices service,
which owns the ports, executes it with read-back and journals the outcome in the same
transaction as the command's final state."""

from __future__ import annotations

import json
from typing import Any

from appliance.clock import utc_timestamp
from appliance.site import Site

KINDS = ("gate.open", "locker.open", "locker.open_all", "announce")


class CommandError(ValueError):
    pass


def queue_command(site: Site, kind: str, target: str, args: dict[str, Any] | None = None, *, requested_by: str) -> int:
    with site.store.transaction() as conn:
        return queue_command_in(site, conn, kind, target, args, requested_by=requested_by)


def queue_command_in(site: Site, conn: Any, kind: str, target: str, args: dict[str, Any] | None = None, *,
                     requested_by: str) -> int:
    """Inside the caller's transaction: the command exists only if what decided it committed."""
    if kind not in KINDS:
        raise CommandError(f"unknown device command {kind!r}")
    cur = conn.execute(
        "INSERT INTO device_commands (kind, target, args, requested_by, created) VALUES (?, ?, ?, ?, ?)",
        (kind, target, json.dumps(args or {}, ensure_ascii=False), requested_by, utc_timestamp(site.clock.now())),
    )
    command_id = int(cur.lastrowid or 0)
    site.journal.append(conn, "device.command_queued",
                        {"command_id": command_id, "kind": kind, "target": target, "args": args or {},
                         "requested_by": requested_by})
    return command_id


def command(site: Site, command_id: int) -> dict[str, Any] | None:
    row = site.store.reader().execute("SELECT * FROM device_commands WHERE id = ?", (command_id,)).fetchone()
    if row is None:
        return None
    out = dict(row)
    out["args"] = json.loads(out["args"])
    out["result"] = json.loads(out["result"]) if out["result"] else None
    return out
