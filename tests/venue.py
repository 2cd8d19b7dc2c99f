"""A live venue for browser tests and benchmarks: today's plan (from demo/day-plan.json, moved
to today), simulators owned by the caller (so it can tap cards and watch locks and gates), and
`appliance run` as a real process whose devices are those simulators' ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appliance.kiosks import Kiosks
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
    desks: list[SamSimulator]  # the evaluation room PB1's desk readers, one per terminal
    desk_codes: list[str]  # the enrolment codes of those terminals (PB1-1, PB1-2, …)

    def stop(self) -> None:
        for sim in (self.reader, self.gate, self.lockers, *self.desks):
            sim.stop()


def build_venue(tmp: Path, site_id: str = "test-county-01", *, desks: int = 0, plan: bool = True) -> Venue:
    """The demo venue; ``desks``: evaluation terminals in room PB1, each with a desk reader.
    ``plan=False``: no plan loaded and no kiosks added (the caller's plan comes from a center;
    `add_kiosks` then)."""
    data = tmp / "site"
    init_site(data, site_id, "测试县公共资源交易中心")
    reader = SamSimulator.on_pty(tmp / "ttyREADER").start()
    gate = GateSimulator(walk_time_s=0.3).start()
    lockers = LockerBoardSim("8a", boards=(1,)).start()
    desk_sims = [SamSimulator.on_pty(tmp / f"ttyDESK{i}").start() for i in range(1, desks + 1)]
    config = data / "appliance.toml"
    config.write_text(config.read_text() + "".join(f"""
[[devices.idcard]]
name = "pb1-desk-{i}"
port = "{sim.url}"
debounce_s = 0.5
""" for i, sim in enumerate(desk_sims, start=1)) + f"""
[[devices.idcard]]
name = "gate-1-reader"
label = "1号闸机入口读卡器"
port = "{reader.url}"
debounce_s = 1.0
[[devices.gate]]
name = "gate-1"
label = "1号闸机"
port = "{gate.url}"
pulse_ms = 500
[[devices.broadcast.speakers]]
name = "hall"
label = "公共区广播"
zones = ["public"]
sink = "file"
[[devices.broadcast.speakers]]
name = "corridor"
label = "答疑室走廊广播"
zones = ["corridor"]
sink = "file"
[[devices.broadcast.speakers]]
name = "evaluation-area"
label = "评标区广播"
zones = ["evaluation"]
sink = "file"
[[devices.locker]]
name = "bank-a"
label = "A组储物柜"
port = "{lockers.url}"
protocol = "8a"
board = 1
locks = 24
""", encoding="utf-8")
    venue = Venue(data, reader, gate, lockers, "", desk_sims, [])
    if plan:
        with open_site(data) as site:
            load_plan(site, parse_plan(json.dumps(todays_plan(site_id), ensure_ascii=False)))
            change_state(site, "S-0922-02", "admitting", by="setup")
            add_kiosks(site, venue)
    return venue


def add_kiosks(site: Any, venue: Venue) -> None:
    """The gate's kiosk and room PB1's terminals, each with its reader (their enrolment codes)."""
    venue.kiosk_code = Kiosks(site).add("gate-1-kiosk", "gate", reader="gate-1-reader")
    venue.desk_codes = [Kiosks(site).add(f"PB1-{i}", "evaluation", reader=f"pb1-desk-{i}", room="PB1")
                        for i in range(1, len(venue.desks) + 1)]


def enter_evaluation_area(site: Any, ref: str, *, reader: str = "gate-1-reader", gate_id: str = "G-IN") -> None:
    """A member through the evaluation-area gate as the kiosk would take them (tap, commitment
    signed, locker assigned, tap again), by the domain functions: for tests whose subject is
    what happens inside (the gate itself is tested through the real devices and browser)."""
    from appliance.siteops.checkin import gate_by_id, gate_tap
    from appliance.siteops.kiosk_checkin import complete, current_prompt, open_prompt
    from tests.helpers import png_bytes

    gate = gate_by_id(site, gate_id)
    card = card_of(ref)

    def prompt(conn: Any, decision: Any, person_id: int | None) -> None:
        if decision.reason == "commitment_missing":
            open_prompt(site, conn, reader=reader, gate=gate.id, person_id=person_id, session=decision.session)

    def tap() -> Any:
        return gate_tap(site, gate, id_number=card.id_number, card_valid=True, card_kind=card.kind, then=prompt)

    decision = tap()
    if decision.reason == "commitment_missing":
        complete(site, current_prompt(site, reader).id, reader=reader, signature_png=png_bytes(), conflicts=[])
        decision = tap()
    assert decision.allow, (ref, decision.reason)


@contextmanager
def served(venue: Venue) -> Iterator[str]:
    """`appliance run` on the venue, as a real process: yields its base URL; afterwards it is
    stopped with SIGTERM and must exit cleanly, and the simulators are stopped."""
    from tests.test_runtime import output, start, stop, wait_ready

    proc, port = start(venue.data)
    try:
        wait_ready(proc, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        code, _ = stop(proc)
        venue.stop()
    assert code == 0, output(proc)
