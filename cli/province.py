"""A province in a box (`appliance center simulate-province`): N county venues, each a real
site data folder with its own keys and a signed journal of D days (the demo day plan loaded for
each day, sessions admitted, patrol notes, a venue alarm, sealed session footage made by
ffmpeg), enrolled with a center and synced into it concurrently over HTTP — so the province's
pages have a realistic province to show.

Three venues are made to show what staff must notice: one **behind** (its last records never
sent), one **diverged** (its box restored from an old copy after the center received more: the
site reports fewer records than the center holds), one **silent** (its last contact moved back
30 hours in the center's database — the one place the simulation writes the center's tables
directly, as time cannot pass here).

Site code drives this (the venues are real sites), so it lives beside the command line, not in
the center's package.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from appliance.clock import VENUE_TZ, FixedClock, utc_timestamp
from appliance.config import CameraConfig
from appliance.segments import recordings_dir, seal_segment
from appliance.site import init_site, open_site
from appliance.siteops.alarms import raise_alarm
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from sync.agent import Agent, enroll

COUNTIES = ["长春", "九台", "榆树", "德惠", "农安", "永吉", "蛟河", "桦甸", "舒兰", "磐石", "公主岭", "梨树", "伊通", "双辽",
            "东丰", "东辽", "梅河口", "集安", "通化", "辉南", "柳河", "抚松", "靖宇", "长白", "临江", "前郭", "长岭", "乾安",
            "扶余", "镇赉", "通榆", "洮南", "大安", "延吉", "图们", "敦化", "珲春", "龙井", "和龙", "汪清", "安图"]
PLAN = Path(__file__).resolve().parent.parent / "demo" / "day-plan.json"
CAMERA = CameraConfig(name="pb1-overview", room="PB1", url="rtsp://camera.invalid/Streaming/Channels/101")


def venue_id(i: int) -> str:
    return f"cn-22{i // 100:02d}{i % 100:02d}-jyzx"


def venue_name(i: int) -> str:
    county = COUNTIES[i % len(COUNTIES)]
    return f"{county}{'' if i < len(COUNTIES) else i // len(COUNTIES) + 1}县公共资源交易中心"


def clip(folder: Path) -> bytes:
    """Two seconds of real H.264 in MP4 (small: the demo's footage is many of these)."""
    out = folder / "clip.mp4"
    if not out.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10", "-t", "2",
                        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "200k", "-movflags", "+faststart", str(out)],
                       check=True, timeout=120)
    return out.read_bytes()


def make_venue(folder: Path, i: int, days: int, notes_per_day: int, footage: bytes, first_day: datetime) -> Path:
    """A venue's data folder with ``days`` days of journal and footage."""
    site_id, data = venue_id(i), folder / venue_id(i)
    if not (data / "appliance.toml").exists():
        init_site(data, site_id, venue_name(i))
    template = json.loads(PLAN.read_text(encoding="utf-8"))
    for d in range(days):
        day = first_day + timedelta(days=d)
        start = datetime(day.year, day.month, day.day, 8, 30, tzinfo=VENUE_TZ).astimezone(timezone.utc)
        with open_site(data, clock=FixedClock(start)) as site:
            plan = _plan_for(template, site_id, day, d + 1)
            load_plan(site, parse_plan(json.dumps(plan, ensure_ascii=False)), by="staff1")
            for s in plan["sessions"]:
                change_state(site, s["id"], "admitting", by="staff1")
            for n in range(notes_per_day):
                site.journal.record("staff.note", {"text": f"{venue_name(i)} 第 {d + 1} 天巡场记录 {n + 1}", "author": "staff1"})
            if (i + d) % 3 == 0:
                with site.store.transaction() as conn:
                    raise_alarm(site, conn, "gate_fault", seq=None, session=plan["sessions"][-1]["id"], detail={"gate": "G-IN"})
            folder_rec = recordings_dir(site) / CAMERA.name
            folder_rec.mkdir(parents=True, exist_ok=True)
            for k in range(2):
                path = folder_rec / f"{day:%Y%m%d}-{k}.mp4"
                path.write_bytes(footage + f"{site_id}/{d}/{k}".encode())
                begin = start + timedelta(minutes=90 + 10 * k)
                seal_segment(site, CAMERA, path, (begin, begin + timedelta(minutes=10)))
    return data


def _plan_for(template: dict[str, Any], site_id: str, day: datetime, version: int) -> dict[str, Any]:
    text = json.dumps(template, ensure_ascii=False).replace(template["date"], f"{day:%Y-%m-%d}")
    plan = json.loads(text)
    plan.update(site_id=site_id, version=version)
    for s in plan["sessions"]:
        s["id"] = f"{s['id']}-{day:%m%d}"
    return plan


def sync_all(url: str, folders: list[Path], tokens: dict[str, str], *, workers: int = 8) -> dict[str, Any]:
    def one(data: Path) -> int:
        with open_site(data) as site:
            if site.store.get_meta("sync_center_url") is None:
                if site.config.site.id not in tokens:
                    return 0  # (made by an earlier, interrupted simulation and never enrolled)
                enroll(site, url, tokens[site.config.site.id])
            for _ in range(20):
                result = Agent(site).sync_once()
                if result["pending"] == 0 and result["media"]["pending"] == 0:
                    break
            return site.journal.count()

    with ThreadPoolExecutor(workers) as pool:
        counts = list(pool.map(one, folders))
    return {"venues": len(folders), "records": sum(counts)}


def simulate(center: Any, url: str, folder: Path, sites: int, days: int, *, notes_per_day: int = 60,
             first_day: datetime | None = None, special: bool = True) -> dict[str, Any]:
    """Make ``sites`` venues in ``folder`` and sync them into the center served at ``url``."""
    folder.mkdir(parents=True, exist_ok=True)
    first = first_day or (datetime.now(VENUE_TZ) - timedelta(days=days - 1))
    with tempfile.TemporaryDirectory() as tmp:
        footage = clip(Path(tmp))
    tokens = {}
    for i in range(sites):
        if not center.db.one("SELECT 1 FROM sites WHERE id = %s", (venue_id(i),)):
            tokens[venue_id(i)] = center.add_site(venue_id(i))
    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda i: make_venue(folder, i, days, notes_per_day, footage, first), range(sites)))
    out = sync_all(url, folders, tokens)
    if special and sites >= 3:
        out["behind"], out["diverged"], out["silent"] = _behind(folders[1]), _diverged(url, folders[2]), _silent(center, folders[3 % sites])
    return out


def _behind(data: Path) -> str:
    """Records made after the last round, reported but never sent (the link went down)."""
    with open_site(data) as site:
        for n in range(25):
            site.journal.record("staff.note", {"text": f"断网期间巡场记录 {n + 1}", "author": "staff1"})
        Agent(site)._post("head", {"local_size": site.journal.count()})
        return site.config.site.id


def _diverged(url: str, data: Path) -> str:
    """The box restored from a copy older than what the center holds."""
    copy = data.with_name(data.name + ".old")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data, copy)
    with open_site(data) as site:
        for n in range(10):
            site.journal.record("staff.note", {"text": f"恢复前记录 {n + 1}", "author": "staff1"})
        Agent(site).sync_once()
    shutil.rmtree(data)
    copy.rename(data)
    with open_site(data) as site:
        Agent(site)._post("head", {"local_size": site.journal.count()})
        return site.config.site.id


def _silent(center: Any, data: Path) -> str:
    with open_site(data) as site:
        site_id = site.config.site.id
    when = utc_timestamp(center.clock.now() - timedelta(hours=30))
    with center.db.transaction() as conn:
        conn.execute("UPDATE sites SET last_seen = %s, reported_at = %s WHERE id = %s", (when, when, site_id))
    return site_id


def resync(url: str, folder: Path, sites: int) -> dict[str, Any]:
    """A later start of the demo: the simulated venues that are not meant to be behind, diverged
    or silent send what they have again, so they stay in sync from day to day."""
    folders = [folder / venue_id(i) for i in range(sites) if i not in (1, 2, 3) and (folder / venue_id(i)).exists()]
    return sync_all(url, folders, {})
