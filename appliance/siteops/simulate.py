"""A realistic venue day against the device simulators (``appliance simulate day``, and ``make
run`` at human speed): today's plan from demo/day-plan.json moved to now, experts checking in at
the gate kiosk (one declares a conflict and is replaced), a supervisor and a witness entering, a
bidder's representative refused at the evaluation gate, a no-show flagged, a clarification call,
registers filling, a suspension confirmed by a supervisor and the resumption. Everything goes
through the real drivers, the access policy and the journal. Fictitious people only.
"""

from __future__ import annotations

import json
import random
import struct
import threading
import time
import zlib
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appliance.accounts import AccountError, Accounts
from appliance.device_commands import queue_command
from appliance.site import Site
from appliance.siteops.kiosk_checkin import complete, current_prompt
from appliance.siteops.noshow import flag_no_show, request_replacement
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.registers import add_entry, close_entry
from appliance.siteops.sessions import change_state
from devices.idcard.text import RESIDENT, CardText

DEMO_PLAN = Path(__file__).resolve().parent.parent.parent / "demo" / "day-plan.json"
SHANGHAI = ZoneInfo("Asia/Shanghai")
SUPERVISOR = ("sim-supervisor", "simulated-supervisor-password")


def _signature_png(seed: int) -> bytes:
    width, height = 60, 20
    rows = b"".join(b"\x00" + bytes(0 if (x + seed) % 17 == y else 255 for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def todays_plan(site_id: str, now: datetime, version: int) -> dict[str, Any]:
    plan = json.loads(DEMO_PLAN.read_text(encoding="utf-8"))
    local = now.astimezone(SHANGHAI).replace(second=0, microsecond=0)
    plan.update(site_id=site_id, date=local.date().isoformat(), version=version)
    starts = {"S-0922-01": local - timedelta(minutes=10), "S-0922-02": local + timedelta(minutes=15)}
    for session in plan["sessions"]:
        session["start"] = starts[session["id"]].isoformat()
        session["end"] = (starts[session["id"]] + timedelta(hours=6)).isoformat()
    return plan


class DaySimulation:
    def __init__(self, site: Site, service: Any, *, speed: float = 1.0, seed: int = 0) -> None:
        self.site, self.service, self.speed = site, service, speed
        self.random = random.Random(seed)
        self.plan: dict[str, Any] = {}
        self.stop_event = threading.Event()
        self.notes: Counter[str] = Counter()

    # -- helpers ---------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        self.stop_event.wait(seconds / self.speed)
        if self.stop_event.is_set():
            raise InterruptedError

    def card(self, ref: str) -> CardText:
        p = next(p for p in self.plan["people"] if p["id"] == ref)
        return CardText(kind=RESIDENT, name=p["name"], sex="1", nation="01", birth=p["id_number"][6:14],
                        address="吉林省长春市测试路", id_number=p["id_number"], authority="长春市公安局",
                        valid_from="20200101", valid_to="长期")

    def reader(self, name: str) -> Any:
        port = next(r.port for r in self.site.config.devices.idcard if r.name == name)
        return self.service.sims[port]

    def tap(self, ref: str, reader: str = "gate-1-reader") -> dict[str, Any]:
        before = self.site.journal.count()
        sim = self.reader(reader)
        sim.place(self.card(ref))
        deadline = time.monotonic() + 5
        decision = None
        while decision is None and time.monotonic() < deadline:
            records = self.site.journal.records(since=before, kind="gate.decision")
            decision = records[-1].payload if records else None
            time.sleep(0.02)
        sim.remove()
        # Past the reader's debounce, so the next tap of this card counts as a new one.
        debounce = next(r.debounce_s for r in self.site.config.devices.idcard if r.name == reader)
        time.sleep(debounce + 0.1)
        self.notes[f"tap:{(decision or {}).get('reason', 'no_decision')}"] += 1
        return decision or {}

    def checkin(self, ref: str, conflicts: list[str] | None = None) -> dict[str, Any]:
        self.tap(ref)
        prompt = current_prompt(self.site, "gate-1-reader")
        if prompt is None:
            return {}
        self.pause(4)  # reading the commitment and signing
        result = complete(self.site, prompt.id, reader="gate-1-reader", signature_png=_signature_png(prompt.id),
                          conflicts=conflicts or [])
        self.notes[f"checkin:{result['outcome']}"] += 1
        if result["outcome"] == "signed":
            self.pause(3)  # the phone and bag into the locker
            self.tap(ref)  # the card again at the gate
        return result

    # -- the day ---------------------------------------------------------------------------

    def prepare(self) -> None:
        versions = self.site.store.reader().execute("SELECT MAX(version) FROM plans").fetchone()[0] or 0
        self.plan = todays_plan(self.site.config.site.id, self.site.clock.now(), versions + 1)
        load_plan(self.site, parse_plan(json.dumps(self.plan, ensure_ascii=False)))
        try:
            Accounts(self.site).add(SUPERVISOR[0], "supervisor", SUPERVISOR[1], by="simulation")
        except AccountError:
            pass  # a previous simulated day created it

    def run(self) -> dict[str, Any]:
        self.prepare()
        site = self.site
        try:
            change_state(site, "S-0922-01", "admitting", by="simulation")
            change_state(site, "S-0922-01", "in_progress", by="simulation")
            change_state(site, "S-0922-02", "admitting", by="simulation")
            self.pause(3)
            add_entry(site, "materials", {"session": "S-0922-02", "direction": "in", "description": "评标用投标文件光盘 2 张",
                                          "carried_by": "见证人员"}, by="simulation")
            for ref in ("P01", "P02"):
                self.checkin(ref)
                self.pause(3)
            self.tap("P11")  # a bidder's representative at the evaluation gate: refused
            self.pause(2)
            self.checkin("P03", conflicts=["B1"])  # recusal: a replacement is requested
            self.pause(3)
            self.checkin("P04")
            self.checkin("P06")  # the tenderer's representative
            self.tap("P07")  # the supervisor
            self.tap("P08")  # the witness
            self.tap("P13")  # agency staff: refused
            self.pause(3)
            # P05 never comes: flagged (the appliance does it by itself at start + N minutes) and replaced.
            no_show = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = 'P05'").fetchone()[0]
            with site.store.transaction() as conn:
                flag_no_show(site, conn, "S-0922-02", no_show, by="simulation")
            request_replacement(site, "S-0922-02", no_show, by="simulation")
            change_state(site, "S-0922-02", "in_progress", by="simulation")
            self.pause(4)
            queue_command(site, "announce", "evaluation", {"text": "请某某工程有限公司代表到答疑室。", "priority": "call"},
                          requested_by="simulation")
            visit = add_entry(site, "clarification", {"session": "S-0922-02", "bidder": "B2", "people": "1"}, by="simulation")
            self.pause(6)
            close_entry(site, visit, by="simulation")
            add_entry(site, "patrol", {"area": "第一评标室", "finding": "评标秩序正常", "follow_up": "无"}, by="simulation")
            self.pause(3)
            change_state(site, "S-0922-02", "suspended", by="simulation", reason="电子评标系统故障", confirmed_by=SUPERVISOR[0])
            queue_command(site, "announce", "all", {"text": "评标暂停，请在场人员原地等候通知。", "priority": "emergency"},
                          requested_by="simulation")
            self.pause(5)
            change_state(site, "S-0922-02", "in_progress", by="simulation", reason="故障已排除", confirmed_by=SUPERVISOR[0])
            self.tap("P02", reader="gate-1-exit-reader")  # leaving during the evaluation: an alarm
        except InterruptedError:
            self.notes["interrupted"] += 1
        return self.summary()

    def summary(self) -> dict[str, Any]:
        decisions = Counter(r.payload["reason"] for r in self.site.journal.records(kind="gate.decision"))
        return {
            "ok": True,
            "sessions": len(self.plan.get("sessions", [])),
            "people": len(self.plan.get("people", [])),
            "decisions": dict(decisions),
            "checkins": {k.split(":", 1)[1]: v for k, v in self.notes.items() if k.startswith("checkin:")},
            "lockers_opened": sum(len(s.opened) for s in self.service.sims.values() if hasattr(s, "opened")),
            "gate_pulses": sum(len(s.pulses) for s in self.service.sims.values() if hasattr(s, "pulses")),
            "registers": self.site.store.reader().execute("SELECT COUNT(*) FROM register_entries").fetchone()[0],
            "replacement_draws": len(self.site.journal.records(kind="replacement_draw")),
            "journal_records": self.site.journal.count(),
            "interrupted": bool(self.notes["interrupted"]),
        }
