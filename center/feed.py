"""The center's feed down to each site: signed items per (site, lane), pages after a site's
cursor, snapshots for a cursor that cannot be continued, compaction (docs/sync-protocol.md)."""

from __future__ import annotations

from typing import Any

from appliance.canonical import CanonicalError
from appliance.clock import utc_timestamp
from center.base import CenterError
from sync.feed import FORMAT as FEED_FORMAT
from sync.feed import KIND_LANES, LANES, PAGE_BYTES, PAGE_ITEMS, item_key, sign_item


class CenterFeed:
    """Mixed into `center.core.Center` (``self.db``, ``self.clock``, ``self.key``, ``alarm``)."""

    db: Any
    clock: Any
    key: Any
    register_remote: Any

    def add_item(self, site_id: str, kind: str, body: dict[str, Any], *, conn: Any = None) -> dict[str, Any]:
        """Queue a signed item for the site: the lane comes from the kind, seq is the lane's next.
        ``conn``: in the caller's transaction (publishing to many venues and logging it at once)."""
        if conn is None:
            with self.db.transaction() as own:
                return self.add_item(site_id, kind, body, conn=own)
        if kind not in KIND_LANES:
            raise CenterError(400, "bad_kind", f"unknown feed kind {kind!r} (known: {', '.join(KIND_LANES)})")
        if not isinstance(body, dict):
            raise CenterError(400, "bad_body", "an item's body is a JSON object")
        plan = body.get("plan") if kind == "replacement_result" else body if kind == "day_plan" else None
        if isinstance(plan, dict):  # a remote committee's venues may relay to each other (center/relay.py)
            self.register_remote(conn, site_id, plan)
        lane, key = KIND_LANES[kind], item_key(kind, body)
        # The site's row lock: two items queued at once for one site get consecutive numbers.
        if conn.execute("SELECT 1 FROM sites WHERE id = %s FOR UPDATE", (site_id,)).fetchone() is None:
            raise CenterError(404, "unknown_site", f"site {site_id!r} is not known here")
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM feed WHERE site = %s AND lane = %s", (site_id, lane)).fetchone()[0]
        floor = conn.execute("SELECT floor FROM feed_cursors WHERE site = %s AND lane = %s", (site_id, lane)).fetchone()
        seq = max(seq, (floor[0] if floor else 0) + 1)
        item = {"format": FEED_FORMAT, "site": site_id, "lane": lane, "seq": seq, "kind": kind, "key": key,
                "issued": utc_timestamp(self.clock.now()), "body": body}
        try:
            signed = sign_item(self.key, item)
        except CanonicalError as exc:
            raise CenterError(400, "bad_body", f"the body cannot be signed canonically: {exc}") from exc
        conn.execute("INSERT INTO feed (site, lane, seq, kind, key, item, sig, issued) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                     (site_id, lane, seq, kind, key, signed["item"], signed["sig"], item["issued"]))
        return {"site": site_id, "lane": lane, "seq": seq, "kind": kind}

    def _lane(self, site_id: str, lane: str) -> tuple[int, int, int]:
        if lane not in LANES:
            raise CenterError(404, "bad_lane", f"lanes are {', '.join(LANES)}")
        head = self.db.value("SELECT COALESCE(MAX(seq), 0) FROM feed WHERE site = %s AND lane = %s", (site_id, lane))
        row = self.db.one("SELECT confirmed, floor FROM feed_cursors WHERE site = %s AND lane = %s", (site_id, lane))
        confirmed, floor = row if row else (0, 0)
        return max(head, floor), confirmed, floor

    def feed_page(self, site_id: str, lane: str, after: int, limit: int = PAGE_ITEMS) -> dict[str, Any]:
        """Items after the site's cursor, a bounded page. A cursor the center cannot continue
        from (below the compacted floor, past the lane's head, or behind what the site already
        confirmed: a site restored from an old image) is answered with ``refetch``."""
        head, confirmed, floor = self._lane(site_id, lane)
        if after < floor or after > head or after < confirmed:
            why = ("compacted away" if after < floor else "past the lane's head" if after > head
                   else f"behind the {confirmed} this site already confirmed (restored from an old image?)")
            self.alarm(site_id, "feed_refetch", {"lane": lane, "cursor": after, "why": why})
            raise CenterError(409, "refetch", f"cursor {after} in lane {lane!r} cannot be continued: {why}; "
                              "fetch the lane's snapshot")
        with self.db.transaction() as conn:
            conn.execute("""INSERT INTO feed_cursors (site, lane, confirmed) VALUES (%s, %s, %s)
                            ON CONFLICT(site, lane) DO UPDATE SET confirmed = GREATEST(feed_cursors.confirmed, excluded.confirmed)""",
                         (site_id, lane, after))
        rows = self.db.all("SELECT item, sig FROM feed WHERE site = %s AND lane = %s AND seq > %s ORDER BY seq LIMIT %s",
                           (site_id, lane, after, max(1, min(limit, PAGE_ITEMS))))
        items, size = [], 0
        for item, sig in rows:
            if items and size + len(item) > PAGE_BYTES:
                break
            items.append({"item": item, "sig": sig})
            size += len(item)
        return {"lane": lane, "head": head, "items": items}

    def feed_snapshot(self, site_id: str, lane: str) -> dict[str, Any]:
        """The lane as it stands: the latest item of every key, in seq order, and the head the
        site's cursor moves to once it has applied them."""
        head, _, _ = self._lane(site_id, lane)
        rows = self.db.all(
            """SELECT item, sig FROM feed f WHERE site = %s AND lane = %s
                 AND seq = (SELECT MAX(seq) FROM feed g WHERE g.site = f.site AND g.lane = f.lane AND g.key = f.key)
               ORDER BY seq""", (site_id, lane))
        return {"lane": lane, "head": head, "items": [{"item": i, "sig": s} for i, s in rows]}

    def compact(self, site_id: str) -> dict[str, int]:
        """Drop superseded items (an older item of a key with a newer one); the floor rises to
        the highest dropped seq, and a site whose cursor is below it is told to refetch."""
        out = {}
        with self.db.transaction() as conn:
            for lane in LANES:
                rows = conn.execute(
                    """SELECT seq FROM feed f WHERE site = %s AND lane = %s AND EXISTS (SELECT 1 FROM feed g
                       WHERE g.site = f.site AND g.lane = f.lane AND g.key = f.key AND g.seq > f.seq)""",
                    (site_id, lane)).fetchall()
                if not rows:
                    continue
                top = max(r[0] for r in rows)
                conn.execute("DELETE FROM feed WHERE site = %s AND lane = %s AND seq = ANY(%s)", (site_id, lane, [r[0] for r in rows]))
                conn.execute("""INSERT INTO feed_cursors (site, lane, floor) VALUES (%s, %s, %s)
                                ON CONFLICT(site, lane) DO UPDATE SET floor = GREATEST(feed_cursors.floor, excluded.floor)""", (site_id, lane, top))
                out[lane] = len(rows)
        return out
