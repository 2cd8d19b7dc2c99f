"""The center's side of recordings going up: a segment uploaded by tus is kept only when its
bytes hash to what the site's journal sealed; the site learns which it holds from a signed
statement (docs/sync-protocol.md)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from appliance.clock import utc_timestamp
from center.footage import FootageStore, StoreError, StoreFull, file_sha256

RETENTION_YEARS = 15


class CenterMedia:
    """Mixed into `center.core.Center` (``self.db``, ``self.clock``, ``self.footage``,
    ``self.staging``, ``_alarm``)."""

    db: Any
    clock: Any
    footage: FootageStore
    staging: Path
    _swept: float
    _alarm: Any
    alarm: Any

    def sealed_segment(self, site_id: str, seq: int) -> dict[str, Any] | None:
        """What the site's journal record ``seq`` sealed, when it is a recording segment the
        center holds."""
        row = self.db.one("SELECT body FROM records WHERE site = %s AND seq = %s AND kind = 'recording.segment'",
                          (site_id, seq))
        if row is None:
            return None
        payload = json.loads(row[0])["payload"]
        return {"sha256": payload["sha256"], "size": payload["size"], "file": payload["file"], "camera": payload["camera"],
                "room": payload["room"], "start": payload["start"], "end": payload["end"], "sessions": payload["sessions"]}

    def finish_upload(self, site_id: str, upload_id: str, path: Path) -> bool:
        """All bytes are in: keep the file only if its SHA-256 is the sealed record's, as an
        object of the footage store named by that hash. A full store raises `StoreFull` (the
        upload stays, complete, and is taken in when there is room; the site keeps its copy)."""
        row = self.db.one("SELECT seq, sha256, length, upload_offset, finished FROM uploads WHERE id = %s", (upload_id,))
        if row is None or row[3] != row[2]:
            return False
        if row[4]:
            return True
        seq, wanted, length = row[0], row[1], row[2]
        if path.exists():
            received = file_sha256(path)
            if received != wanted or path.stat().st_size != length:
                with self.db.transaction() as conn:
                    conn.execute("DELETE FROM uploads WHERE id = %s", (upload_id,))
                    self._alarm(conn, site_id, "media_mismatch", {"seq": seq, "sealed_sha256": wanted, "received_sha256": received})
                path.unlink(missing_ok=True)
                return False
            try:
                self.footage.put_file(wanted, path)
            except StoreFull as exc:
                self.alarm(None, "footage_store_full", {"store": self.footage.name, "error": str(exc)[:300]})
                raise
        elif not self.footage.exists(wanted):  # the bytes are gone (a disk replaced?): the site sends the segment again
            with self.db.transaction() as conn:
                conn.execute("DELETE FROM uploads WHERE id = %s", (upload_id,))
            return False
        # (else: killed between storing the checked object and recording it: it is there, record it)
        now = self.clock.now()
        stamp = utc_timestamp(now)
        sessions = (self.sealed_segment(site_id, seq) or {}).get("sessions") or []
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO objects (sha256, size, stored, retain_until) VALUES (%s, %s, %s, %s) "
                         "ON CONFLICT DO NOTHING", (wanted, length, stamp, utc_timestamp(retain_until(now))))
            # A session under a legal hold keeps its footage that arrives later too.
            conn.execute("UPDATE objects SET legal_hold = %s WHERE sha256 = %s AND legal_hold IS NULL AND EXISTS "
                         "(SELECT 1 FROM legal_holds WHERE site = %s AND session = ANY(%s) AND lifted IS NULL)",
                         (stamp, wanted, site_id, sessions))
            conn.execute("INSERT INTO media (site, seq, sha256, size, received) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                         (site_id, seq, wanted, length, stamp))
            conn.execute("UPDATE uploads SET finished = %s WHERE id = %s", (stamp, upload_id))
        return True

    def part(self, upload_id: str) -> Path:
        """Where a tus upload's bytes gather until they are whole (the store's staging area)."""
        return self.staging / f"{upload_id}.part"

    def sweep_uploads(self) -> int:
        """Remove expired uploads and their bytes (tus expiration); at most once a minute unless
        forced by a new upload. A finished upload's file has moved to the store already."""
        now = self.clock.now().isoformat()
        self._swept = self.clock.monotonic()
        with self.db.transaction() as conn:
            rows = conn.execute("DELETE FROM uploads WHERE expires <= %s RETURNING id", (now,)).fetchall()
        for (upload_id,) in rows:
            self.part(upload_id).unlink(missing_ok=True)
        return len(rows)

    def media_status(self, site_id: str, seqs: list[int]) -> dict[str, str]:
        """Which of these segments (by sealing record) the center holds whole: seq → SHA-256.
        An upload whose last byte was committed but not yet checked (the center was killed in
        between) is checked here."""
        for upload_id, in self.db.all("SELECT id FROM uploads WHERE site = %s AND upload_offset = length AND finished IS NULL",
                                      (site_id,)):
            try:
                with self.db.try_lock(f"tus:{upload_id}") as mine:  # never beside a PATCH of the same upload
                    if mine:  # (else a PATCH in some worker is finishing it now)
                        self.finish_upload(site_id, upload_id, self.part(upload_id))
            except (StoreFull, StoreError):
                break  # (a full store is alarmed) the site keeps its footage until the store takes it
        if self.clock.monotonic() - self._swept > 60:  # every site's round asks: expired uploads go soon enough
            self.sweep_uploads()
        rows = self.db.all("SELECT seq, sha256 FROM media WHERE site = %s AND seq = ANY(%s)", (site_id, seqs))
        return {str(s): h for s, h in rows}


def retain_until(received: datetime) -> datetime:
    """Footage is kept 15 years from receipt (政府采购法 art. 42 keeps procurement files at
    least 15 years); a legal hold keeps it longer."""
    try:
        return received.replace(year=received.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        return received.replace(year=received.year + RETENTION_YEARS, day=28)
