"""The footage store's scrub (nightly, `appliance center scrub`): every stored object is read
back whole and hashed; its name is the SHA-256 the venue's journal sealed, so any difference —
a flipped bit on a disk, a truncated copy, an object gone — is found, recorded on the object
and raised as an alarm naming the venues and journal records that sealed it. No object is
repaired or deleted here: the venue may still hold its copy, and staff decide. What writers
killed mid-put left behind (temporary files, unfinished multipart uploads — never an object)
is swept first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from appliance.clock import utc_timestamp


def scrub(center: Any, *, older_than_days: int = 0) -> dict[str, Any]:
    try:
        swept = center.footage.sweep()
    except OSError as exc:
        return {"checked": 0, "bytes": 0, "bad": [], "swept": 0, "stopped": f"the footage store: {exc}"}
    now = center.clock.now()
    cutoff = utc_timestamp(now - timedelta(days=older_than_days)) if older_than_days else None
    rows = center.db.all("SELECT sha256, size FROM objects WHERE %s::text IS NULL OR last_scrub IS NULL OR last_scrub < %s "
                         "ORDER BY sha256", (cutoff, cutoff))
    checked, total, bad = 0, 0, []
    for sha256, size in rows:
        try:
            got = center.footage.digest(sha256)
            problem = None if got == sha256 else "footage_scrub_mismatch"
        except FileNotFoundError:
            got, problem = None, "footage_missing"
        except OSError as exc:  # the store cannot be reached: stop, nothing marked, said why
            return {"checked": checked, "bytes": total, "bad": bad, "swept": swept, "stopped": f"the footage store: {exc}"}
        checked += 1
        total += int(size)
        with center.db.transaction() as conn:
            conn.execute("UPDATE objects SET last_scrub = %s, scrub_ok = %s WHERE sha256 = %s",
                         (utc_timestamp(center.clock.now()), problem is None, sha256))
            if problem:
                sealed = conn.execute("SELECT site, seq FROM media WHERE sha256 = %s ORDER BY site, seq", (sha256,)).fetchall()
                for site, seq in sealed or [(None, None)]:
                    center._alarm(conn, site, problem, {"sha256": sha256, "seq": seq, "found_sha256": got})
        if problem:
            bad.append({"sha256": sha256, "problem": problem})
    return {"checked": checked, "bytes": total, "bad": bad, "swept": swept}
