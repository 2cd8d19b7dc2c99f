"""A live venue for browser tests and benchmarks: today's plan (from demo/day-plan.json, moved
to today), simulators owned by the caller (so it can tap cards and watch locks and gates), and
`appliance run` as a real process whose devices are those simulators' ports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appliance.accounts import Accounts
from appliance.site import init_site, open_site
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from appliance.siteops.simulate import todays_plan as simulate_plan
from devices.gate.sim import GateSimulator
from devices.idcard.sim import SamSimulator
from devices.idcard.text import RESIDENT, CardText
from devices.locker.sim import LockerBoardSim

ROOT = Path(__file__).parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
PLAN = json.loads((ROOT / "demo" / "day-plan.json").read_text(encoding="utf-8"))


def todays_plan(site_id: str) -> dict[str, Any]:
    """The demo plan moved to today: the opening began a little ago, admission to the evaluation is open."""
    return simulate_plan(site_id, datetime.now(SHANGHAI), version=1)


def card_of(ref: str) -> CardText:
    p = next(p for p in PLAN["people"] if p["id"] == ref)
    return CardText(kind=RESIDENT, name=p["name"], sex="1", nation="01", birth=p["id_number"][6:14], address="吉林省测试路",
                    id_number=p["id_number"], authority="测试公安局", valid_from="20200101", valid_to="长期")


@dataclass
class Venue:
    data: Path
    reader: SamSimulator
    gate: GateSimulator
    lockers: LockerBoardSim
    kiosk_code: str

    def stop(self) -> None:
        for sim in (self.reader, self.gate, self.lockers):
            sim.stop()


def build_venue(tmp: Path, site_id: str = "test-county-01") -> Venue:
    data = tmp / "site"
    init_site(data, site_id, "测试县公共资源交易中心")
    reader = SamSimulator.on_pty(tmp / "ttyREADER").start()
    gate = GateSimulator(walk_time_s=0.3).start()
    lockers = LockerBoardSim("8a", boards=(1,)).start()
    config = data / "appliance.toml"
    config.write_text(config.read_text() + f"""
[[devices.idcard]]
name = "gate-1-reader"
port = "{reader.url}"
debounce_s = 1.0
[[devices.gate]]
name = "gate-1"
port = "{gate.url}"
pulse_ms = 500
[[devices.locker]]
name = "bank-a"
port = "{lockers.url}"
protocol = "8a"
board = 1
locks = 24
""", encoding="utf-8")
    with open_site(data) as site:
        load_plan(site, parse_plan(json.dumps(todays_plan(site_id), ensure_ascii=False)))
        change_state(site, "S-0922-02", "admitting", by="setup")
        code = Accounts(site).add_kiosk("gate-1-kiosk", "gate", reader="gate-1-reader")
    return Venue(data, reader, gate, lockers, code)
