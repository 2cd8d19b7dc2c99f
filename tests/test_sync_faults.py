"""Sync through a bad link with crashes (issue #7 §7): a fault-injecting proxy between the site
and the center (drop, delay, duplicate, truncate, cut, reset), the agent killed with SIGKILL at
a random point of each of 200 rounds, the center's worker processes (two, as in production)
killed with SIGKILL and its PostgreSQL restarted at random points too, while the venue keeps
journaling. Afterwards, with the link healed, the center's head equals the
site's, every record is the site's own and held once, every session segment is held whole with
its sealed hash, and every feed item was applied exactly once.

The agent runs as a forked process (the real code path, without paying Python's start-up 200
times); the center is `appliance center serve --workers 2`, whose supervisor starts a killed
worker again by itself; the proxy runs in its own process, so the test process has no threads
when it forks."""

import hashlib
import json
import os
import random
import subprocess
import time
from collections import Counter
from datetime import timedelta

import pytest

from appliance.clock import FixedClock
from appliance.segments import recordings_dir, seal_segment
from appliance.site import open_site
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from bench.common import fork_call, kill_now
from tests import faultproxy
from tests.helpers import free_port
from tests.helpers import start_center as start_center_process
from tests.pg import cluster, new_center_dir
from tests.test_site_operations import NOW, plan_text
from tests.test_sync_media import CAMERA

CYCLES = int(os.environ.get("SYNC_FAULT_CYCLES", "200"))
SITE = "test-county-01"


def start_center(center_dir, port):
    proc, _ = start_center_process(center_dir, "--workers", "2", port=port)
    return proc


def workers_of(proc):
    """The supervisor's worker processes (its children)."""
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        return [int(p) for p in f.read().split()]


def agent_round(data_dir):
    import sync.agent
    import sync.media
    from sync.agent import Agent

    sync.agent.BATCH = 150  # small batches and chunks: more requests for the faults to hit
    sync.media.CHUNK = 64 * 1024
    with open_site(data_dir) as site:
        Agent(site).sync_once()


def add_items(center_dir, items):
    from center.core import Center

    c = Center(center_dir)
    try:
        for kind, body in items:
            c.add_item(SITE, kind, body)
    finally:
        c.db.close()


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1500k", str(out)], check=True)
    return out.read_bytes()


def test_two_hundred_crashes_on_a_bad_link_lose_and_duplicate_nothing(data_dir, tmp_path, small_clip):
    from sync.agent import Agent, enroll
    from center.core import Center

    rng = random.Random(20261122)
    center_dir = new_center_dir(tmp_path / "center")
    center_port, proxy_port = free_port(), free_port()
    folder = None
    with open_site(data_dir, clock=FixedClock(NOW)) as site:
        load_plan(site, parse_plan(plan_text()))
        change_state(site, "S-0922-02", "admitting", by="staff1")
        folder = recordings_dir(site) / CAMERA.name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(400):
            site.journal.record("staff.note", {"text": f"巡场 {i}", "author": "staff1"})
    c = Center(center_dir)
    token = c.add_site(SITE)
    c.db.close()
    add_items(center_dir, [("evaluation_template", {"id": f"T{i}"}) for i in range(20)]
              + [("blacklist", {"id_number": "220102198011111108", "reason": "围标"})])
    center = start_center(center_dir, center_port)
    with open_site(data_dir) as site:
        enroll(site, f"http://127.0.0.1:{center_port}", token)
        with site.store.transaction() as conn:  # from now on through the bad link
            conn.execute("UPDATE meta SET value = ? WHERE key = 'sync_center_url'", (f"http://127.0.0.1:{proxy_port}",))
    proxy = faultproxy.start(proxy_port, ("127.0.0.1", center_port), seed=7, fault_rate=0.3)
    segments = 0
    worker_kills = database_restarts = 0
    try:
        for cycle in range(CYCLES):
            # The venue goes on: records every round, a sealed session segment every tenth.
            with open_site(data_dir, clock=FixedClock(NOW + timedelta(seconds=cycle))) as site:
                for i in range(rng.randrange(0, 30)):
                    site.journal.record("staff.note", {"text": f"第 {cycle} 轮 {i}", "author": "staff1"})
                if cycle % 10 == 0:
                    path = folder / f"segment-{cycle}.mp4"
                    path.write_bytes(small_clip + cycle.to_bytes(4, "big"))
                    start = NOW - timedelta(minutes=30) + timedelta(seconds=10 * cycle)
                    assert seal_segment(site, CAMERA, path, (start, start + timedelta(seconds=10)))
                    segments += 1
            if cycle % 25 == 5:
                add_items(center_dir, [("day_plan", json.loads(plan_text(version=2 + cycle)))])
            agent = fork_call(agent_round, data_dir)
            when = rng.uniform(0.0, 0.6)
            chance = rng.random()
            if chance < 0.15:  # a center worker dies too, at its own random moment (its supervisor restarts it)
                time.sleep(when * rng.random())
                workers = workers_of(center)
                if workers:
                    os.kill(rng.choice(workers), 9)
                    worker_kills += 1
            elif chance < 0.20:  # the database restarts under the workers, mid-batch or not
                time.sleep(when * rng.random())
                cluster().restart()
                database_restarts += 1
            time.sleep(when)
            if cycle % 10 != 9:
                kill_now(agent)  # SIGKILL wherever it is
            else:
                os.waitpid(agent, 0)  # some rounds run to their end (through the faults)
    finally:
        faultproxy.stop(proxy)
    # Work got through the faults and crashes, not only after the link healed.
    c = Center(center_dir)
    through = (c.head(SITE)["size"], c.db.one("SELECT COUNT(*) FROM media")[0])
    c.db.close()
    print(f"during the faults: {through[0]} records and {through[1]} segments got through; "
          f"{worker_kills} center workers killed, PostgreSQL restarted {database_restarts} times")
    assert through[0] > 400 and through[1] >= 1
    # The link heals; the next rounds drain everything.
    proxy = faultproxy.start(proxy_port, ("127.0.0.1", center_port), seed=0, fault_rate=0.0)
    try:
        with open_site(data_dir) as site:
            for _ in range(30):
                result = Agent(site).sync_once()
                if result["pending"] == 0 and result["media"]["pending"] == 0:
                    break
            assert result["pending"] == 0 and result["media"]["pending"] == 0, result
            local = site.store.reader().execute("SELECT seq, hash FROM journal ORDER BY seq").fetchall()
            local_segments = site.store.reader().execute(
                "SELECT seq, sha256, center_ack FROM segments s WHERE EXISTS (SELECT 1 FROM segment_sessions l WHERE l.segment = s.id)"
            ).fetchall()
            applied = Counter((r.payload["lane"], r.payload["seq"]) for r in site.journal.records(kind="feed.applied"))
            cursors = {lane: int(site.store.get_meta(f"feed_cursor_{lane}") or 0) for lane in ("urgent", "plans", "bulk")}
    finally:
        faultproxy.stop(proxy)
        center.terminate()
        center.wait(10)
    c = Center(center_dir)
    held = c.db.all("SELECT seq, hash FROM records WHERE site = %s ORDER BY seq", (SITE,))
    head = c.head(SITE)
    assert head["size"] == len(local) and head["head"] == local[-1][1]
    assert [tuple(r) for r in held] == [tuple(r) for r in local]  # every record, once, the site's own
    assert len(local_segments) == segments and all(r[2] for r in local_segments)
    for seq, sha256, _ in local_segments:
        row = c.db.one("SELECT sha256 FROM media WHERE site = %s AND seq = %s", (SITE, seq))
        assert row[0] == sha256 and hashlib.sha256(c.footage.path(sha256).read_bytes()).hexdigest() == sha256
    heads = {lane: c.db.one("SELECT COALESCE(MAX(seq), 0) FROM feed WHERE site = %s AND lane = %s",
                                            (SITE, lane))[0] for lane in ("urgent", "plans", "bulk")}
    assert cursors == heads
    assert all(n == 1 for n in applied.values()) and sum(applied.values()) == sum(heads.values())
    assert worker_kills >= 10 and database_restarts >= 3
    # A worker killed mid-put may leave a temporary file beside the objects, never a half object
    # under an object's name (checked above, by hash); the sweep (run by the nightly scrub)
    # removes the leftovers once no put can still be writing them — here, the center stopped.
    leftovers = list(c.footage.root.rglob(".*.tmp"))
    assert c.footage.sweep(older_than_s=0) == len(leftovers)
    assert not list(c.footage.root.rglob(".*.tmp"))
    c.db.close()
