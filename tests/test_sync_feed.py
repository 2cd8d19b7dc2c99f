"""The feed down over real HTTP on loopback: center-signed items in priority lanes, applied with
their cursor in one transaction; a revocation reaches the gate; a tampered item changes nothing;
pages are bounded; a cursor the center cannot continue from is answered with a refetch."""

import json
import sqlite3
from datetime import datetime, timezone

import pytest

from sync.agent import Agent, SyncError, enroll
from sync.feed import PAGE_ITEMS, FeedError, open_item
from tests.test_site_operations import NOW, PLAN, plan_text, tap, venue  # noqa: F401  (venue is a fixture)
from tests.test_sync import center  # noqa: F401  (a fixture)

SITE = "test-county-01"


def person(ref):
    return next(p for p in PLAN["people"] if p["id"] == ref)


def cursors(site):
    return {lane: int(site.store.get_meta(f"feed_cursor_{lane}") or 0) for lane in ("urgent", "plans", "bulk")}


def test_revocations_go_first_and_reach_the_gate(venue, center):  # noqa: F811
    site, service = venue
    c, url = center
    enroll(site, url, c.add_site(SITE))
    assert tap(site, service, "/dev/ttyREADER1", "P07")["allow"]  # the supervisor, before the feed
    tap(site, service, "/dev/ttyREADER2", "P07")  # and out again
    # Queued in this order; the urgent lane must still be applied first.
    plan = json.loads(plan_text(version=2))
    plan["sessions"][0]["section_name"] += "（补充）"
    c.add_item(SITE, "day_plan", plan)
    c.add_item(SITE, "evaluation_template", {"id": "T-综合评分-1", "method": "comprehensive", "criteria": []})
    c.add_item(SITE, "revocation", {"id_number": person("P07")["id_number"], "reason": "回避"})
    result = Agent(site).sync_once()
    assert result["feed"] == {"urgent": 1, "plans": 1, "bulk": 1}
    applied = [r.payload["lane"] for r in site.journal.records(kind="feed.applied")]
    assert applied == ["urgent", "plans", "bulk"]
    assert cursors(site) == {"urgent": 1, "plans": 1, "bulk": 1}
    assert tap(site, service, "/dev/ttyREADER1", "P07")["reason"] == "revoked"
    # A later plan (which resets the plan's own revoked list) does not lift the center's revocation.
    assert site.store.reader().execute("SELECT MAX(version) FROM plans").fetchone()[0] == 2
    assert any("（补充）" in r[0] for r in site.store.reader().execute("SELECT section_name FROM sessions"))
    # Lifting it is another item of the same key.
    c.add_item(SITE, "revocation", {"id_number": person("P07")["id_number"], "lifted": True})
    Agent(site).sync_once()
    assert site.store.reader().execute("SELECT lifted FROM center_bars").fetchone()[0] is not None
    # The ID number never appears in the site's journal or logs in clear.
    bodies = " ".join(r[0] for r in site.store.reader().execute("SELECT body FROM journal"))
    assert person("P07")["id_number"] not in bodies
    # The site's clock stands at NOW: the center's Date header shows it behind by the real time since.
    behind = (datetime.now(timezone.utc) - NOW).total_seconds()
    assert abs(int(site.store.get_meta("sync_clock_offset_s")) - behind) <= 3


def test_a_tampered_or_misplaced_item_changes_nothing(site, center):  # noqa: F811
    c, url = center
    enroll(site, url, c.add_site(SITE))
    c.add_item(SITE, "configuration", {"name": "site", "commitment_text": "本人承诺……"})
    # The item in the center's table is altered after signing (a compromised store or a proxy).
    with c.db.transaction() as conn:
        conn.execute("UPDATE feed SET item = replace(item, '本人承诺', '我不承诺')")
    with pytest.raises(SyncError, match="does not verify"):
        Agent(site).sync_once()
    assert cursors(site)["bulk"] == 0
    assert site.store.reader().execute("SELECT COUNT(*) FROM center_documents").fetchone()[0] == 0
    # A genuine item offered in the wrong lane is refused by the site too.
    good = c.add_item(SITE, "evaluation_template", {"id": "T1"})
    row = c.db.one("SELECT item, sig FROM feed WHERE seq = %s AND lane = 'bulk'", (good["seq"],))
    with pytest.raises(FeedError, match="not for this site's 'urgent' lane"):
        open_item(c.key.public_key(), {"item": row[0], "sig": row[1]}, site_id=SITE, lane="urgent")


def test_bounded_pages_and_an_item_the_site_cannot_apply(site, center):  # noqa: F811
    c, url = center
    enroll(site, url, c.add_site(SITE))
    for i in range(PAGE_ITEMS * 2 + 7):
        c.add_item(SITE, "evaluation_template", {"id": f"T{i}", "criteria": [{"name": "技术", "max": i}]})
    page = c.feed_page(SITE, "bulk", 0)
    assert len(page["items"]) == PAGE_ITEMS and page["head"] == PAGE_ITEMS * 2 + 7
    # A plan for another site is signed by the center but refused by this site: journaled,
    # alarmed, and the lane moves on instead of blocking every later item.
    other = json.loads(plan_text(version=1))
    other["site_id"] = "another-county"
    c.add_item(SITE, "day_plan", other)
    Agent(site).sync_once()
    assert cursors(site) == {"urgent": 0, "plans": 1, "bulk": PAGE_ITEMS * 2 + 7}
    assert site.store.reader().execute("SELECT COUNT(*) FROM center_documents").fetchone()[0] == PAGE_ITEMS * 2 + 7
    refused = site.journal.records(kind="feed.refused")
    assert len(refused) == 1 and "another-county" in refused[0].payload["reason"]
    assert site.store.reader().execute("SELECT kind FROM alarms").fetchone()[0] == "feed_refused"


def test_a_restored_site_and_a_compacted_lane_are_told_to_refetch(site, center, tmp_path):  # noqa: F811
    c, url = center
    enroll(site, url, c.add_site(SITE))
    for version in (1, 2, 3):
        plan = json.loads(plan_text(version=version))
        c.add_item(SITE, "day_plan", plan)
    c.add_item(SITE, "blacklist", {"id_number": person("P11")["id_number"], "reason": "围标串标"})
    Agent(site).sync_once()
    assert cursors(site)["plans"] == 3
    assert site.store.reader().execute("SELECT MAX(version) FROM plans").fetchone()[0] == 3
    # The site is "restored from an old image": its cursor goes back behind what it confirmed.
    c.add_item(SITE, "day_plan", json.loads(plan_text(version=4)))
    Agent(site).sync_once()  # confirms 3 by asking after it, gets 4
    with site.store.transaction() as conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'feed_cursor_plans'")
    Agent(site).sync_once()
    refetched = site.journal.records(kind="feed.refetched")
    assert [r.payload for r in refetched] == [{"lane": "plans", "head": 4, "items": 1}]  # only the latest plan of the day
    assert cursors(site)["plans"] == 4
    assert "feed_refetch" in [r[0] for r in c.db.all("SELECT kind FROM alarms")]
    # Compaction drops superseded plans; a cursor below the floor must refetch too.
    assert c.compact(SITE) == {"plans": 3}
    with site.store.transaction() as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'feed_cursor_plans'")
    with pytest.raises(Exception) as refused:
        c.feed_page(SITE, "plans", 0)
    assert getattr(refused.value, "code", None) == "refetch"
    Agent(site).sync_once()
    assert cursors(site)["plans"] == 4 and len(site.journal.records(kind="feed.refetched")) == 2
    # The blacklist survived all of it.
    with sqlite3.connect(site.store.path) as db:
        assert db.execute("SELECT kind, lifted FROM center_bars").fetchall() == [("blacklist", None)]
