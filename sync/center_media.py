"""The center's side of recordings going up: a segment uploaded by tus is kept only when its
bytes hash to what the site's journal sealed; the site learns which it holds from a signed
statement (docs/sync-protocol.md)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from appliance.clock import utc_timestamp


class CenterMedia:
    """Mixed into `sync.center.Center` (``self.store``, ``self.clock``, ``self.data``, ``_alarm``)."""

    store: Any
    clock: Any
    data: Path
    _swept: float

    def sealed_segment(self, site_id: str, seq: int) -> dict[str, Any] | None:
        """What the site's journal record ``seq`` sealed, when it is a recording segment the
        center holds."""
        row = self.store.reader().execute("SELECT body FROM records WHERE site = ? AND seq = ? AND kind = 'recording.segment'",
                                          (site_id, seq)).fetchone()
        if row is None:
            return None
        payload = json.loads(row[0])["payload"]
        return {"sha256": payload["sha256"], "size": payload["size"], "file": payload["file"], "camera": payload["camera"],
                "room": payload["room"], "start": payload["start"], "end": payload["end"], "sessions": payload["sessions"]}

    def finish_upload(self, site_id: str, upload_id: str, path: Path) -> bool:
        """All bytes are in: keep the file only if its SHA-256 is the sealed record's."""
        row = self.store.reader().execute("SELECT seq, sha256, length, offset, finished FROM uploads WHERE id = ?",
                                          (upload_id,)).fetchone()
        if row is None or row[3] != row[2]:
            return False
        if row[4]:
            return True
        seq, wanted, length = row[0], row[1], row[2]
        gen = self.store.reader().execute("SELECT generation FROM sites WHERE id = ?", (site_id,)).fetchone()
        folder = self.data / "media" / site_id
        final = (folder if not gen or gen[0] == 1 else folder / f"g{gen[0]}") / f"{seq}.mp4"  # a new key, a new folder
        if not path.exists() and final.exists():
            path = final  # killed between moving the checked file and recording it: check it where it is
        if not path.exists():  # the bytes are gone (a disk replaced?): the site sends the segment again
            with self.store.transaction() as conn:
                conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
            return False
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != wanted or path.stat().st_size != length:
            with self.store.transaction() as conn:
                conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
                self._alarm(conn, site_id, "media_mismatch", {"seq": seq, "sealed_sha256": wanted, "received_sha256": digest.hexdigest()})
            path.unlink(missing_ok=True)
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        if path != final:
            os.replace(path, final)
        with self.store.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO media (site, seq, sha256, size, path, received) VALUES (?, ?, ?, ?, ?, ?)",
                         (site_id, seq, wanted, length, str(final.relative_to(self.data)), utc_timestamp(self.clock.now())))
            conn.execute("UPDATE uploads SET finished = ? WHERE id = ?", (utc_timestamp(self.clock.now()), upload_id))
        return True

    def sweep_uploads(self) -> int:
        """Remove expired uploads and their bytes (tus expiration); at most once a minute unless
        forced by a new upload. A finished upload's file has moved to the media folder already."""
        now = self.clock.now().isoformat()
        self._swept = self.clock.monotonic()
        rows = self.store.reader().execute("SELECT id FROM uploads WHERE expires <= ?", (now,)).fetchall()
        with self.store.transaction() as conn:
            conn.executemany("DELETE FROM uploads WHERE id = ?", [(r[0],) for r in rows])
        for (upload_id,) in rows:
            (self.data / "uploads" / f"{upload_id}.part").unlink(missing_ok=True)
        return len(rows)

    def media_status(self, site_id: str, seqs: list[int]) -> dict[str, str]:
        """Which of these segments (by sealing record) the center holds whole: seq → SHA-256.
        An upload whose last byte was committed but not yet checked (the center was killed in
        between) is checked here."""
        for upload_id, in self.store.reader().execute(
                "SELECT id FROM uploads WHERE site = ? AND offset = length AND finished IS NULL", (site_id,)).fetchall():
            self.finish_upload(site_id, upload_id, self.data / "uploads" / f"{upload_id}.part")
        if self.clock.monotonic() - self._swept > 60:  # every site's round asks: expired uploads go soon enough
            self.sweep_uploads()
        out = {}
        for chunk in range(0, len(seqs), 500):
            part = seqs[chunk:chunk + 500]
            rows = self.store.reader().execute(
                f"SELECT seq, sha256 FROM media WHERE site = ? AND seq IN ({','.join('?' * len(part))})", (site_id, *part))
            out.update({str(s): h for s, h in rows})
        return out
