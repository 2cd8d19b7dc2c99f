"""Card tap → gate command benchmark: from the last byte of the reader's answer on the wire to
the gate's open request handed to the port, with the access decision durably journaled
(signed, synchronous=FULL commit) in between. Simulated reader and gate, real drivers, the demo
day plan; idle, with both cores loaded, and while the day simulation runs (its kiosk check-ins,
taps, commands, announcements and registers in the same process and database), in the same run.

Run: ``appliance bench gate-tap``. Prints one JSON object.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from appliance.clock import FixedClock
from appliance.device_service import DeviceService
from bench.common import SimulatorHost, cpu_load, percentile
from appliance.site import init_site, open_site
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from devices.idcard.text import RESIDENT, CardText

ROOT = Path(__file__).parent.parent
NOW = datetime(2026, 11, 22, 1, 30, tzinfo=timezone.utc)
DEVICES = """
[[devices.idcard]]
name = "gate-1-reader"
port = "{reader}"
debounce_s = 0.001
[[devices.gate]]
name = "gate-1"
port = "{gate}"
pulse_ms = 100
"""


GAP_S = 0.2  # between taps: a person walks through before the next taps (and each tap finds the box idle)


def _summary(taps: list[tuple[float, float]]) -> dict[str, Any]:
    """Per tap (total ms, its durable commit's ms): the figure, the commit, and the rest."""
    return {"n": len(taps), "p50": percentile([t for t, _ in taps], 0.5), "p99": percentile([t for t, _ in taps], 0.99),
            "commit_p50": percentile([c for _, c in taps], 0.5),
            "without_commit_p50": percentile([t - c for t, c in taps], 0.5),
            "without_commit_p99": percentile([t - c for t, c in taps], 0.99)} if taps else {"n": 0}


def _taps(service: DeviceService, site: Any, cards: list[CardText], taps: int, host: SimulatorHost) -> list[tuple[float, float]]:
    for i in range(taps):
        before = len(service.tap_latencies)
        host.place("gate-1-reader", cards[i % len(cards)])
        deadline = time.monotonic() + 5
        while len(service.tap_latencies) == before and time.monotonic() < deadline:
            time.sleep(0.001)
        host.remove("gate-1-reader")
        with site.store.transaction() as conn:
            conn.execute("DELETE FROM presence")  # walked out again (the exit gate is not part of this figure)
        time.sleep(GAP_S)
    return [(ms, commit) for reader, ms, _, commit in list(service.tap_latencies)[-taps:] if reader == "gate-1-reader"]


BENCH_READER = """
[[devices.idcard]]
name = "bench-exit-reader"
port = "/dev/ttyBENCHEXIT"
debounce_s = 0.001
[[devices.gate]]
name = "bench-gate"
port = "/dev/ttyBENCHBUS"
pulse_ms = 100
passage_timeout_s = 1
"""


def _during_day(taps: int, speed: float) -> dict[str, Any]:
    """The day simulation runs (demo devices, simulated); meanwhile cards are tapped at a second
    exit gate of the evaluation area with its own reader and relay module (as a second gate is
    wired), in the same devices service and database, so the benchmark's taps never collide with
    the simulation's on one reader or one RS-485 bus."""
    import threading

    from appliance.siteops.simulate import DaySimulation

    class Day(DaySimulation):
        def make_plan(self, version: int) -> dict[str, Any]:
            plan = super().make_plan(version)
            plan["gates"].append({"id": "G-OUT-2", "name": "评标区第二出口", "from_zone": "evaluation", "to_zone": "public",
                                  "direction": "out", "reader": "bench-exit-reader", "gate_device": "bench-gate"})
            return plan

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "site"
        init_site(data, "bench-site", "基准测试交易中心")
        config = data / "appliance.toml"
        config.write_text(config.read_text() + (ROOT / "demo" / "devices.toml").read_text(encoding="utf-8") + BENCH_READER,
                          encoding="utf-8")
        site = open_site(data)
        service = DeviceService(site)
        service.start()
        stop = threading.Event()

        def commands() -> None:
            while not stop.wait(0.05):
                service.step()

        runner = threading.Thread(target=commands, daemon=True)
        runner.start()
        day = Day(site, service, speed=speed, seed=1)
        summary: dict[str, Any] = {}
        simulation = threading.Thread(target=lambda: summary.update(day.run()), daemon=True)
        simulation.start()
        try:
            while not day.plan and simulation.is_alive():
                time.sleep(0.05)
            # The bidders' representatives of the openings: known to the site, on today's rosters,
            # and not people whose comings and goings the simulation itself plays.
            people = [p for p in day.plan["people"] if p["id"].startswith("R")]
            sim = service.sims["/dev/ttyBENCHEXIT"]
            done = 0
            while simulation.is_alive() and done < taps:
                before = len(service.tap_latencies)
                p = people[done % len(people)]
                sim.place(CardText(kind=RESIDENT, name=p["name"], sex="1", nation="01", birth=p["id_number"][6:14],
                                   id_number=p["id_number"], valid_from="20200101", valid_to="长期"))
                deadline = time.monotonic() + 5
                while len(service.tap_latencies) == before and time.monotonic() < deadline:
                    time.sleep(0.001)
                sim.remove()
                done += 1
                time.sleep(GAP_S)
            simulation.join(300)
        finally:
            stop.set()
            runner.join(2)
            service.stop()
            site.close()
    bench = [(ms, commit) for reader, ms, _, commit in service.tap_latencies if reader == "bench-exit-reader"]
    entries = [(ms, commit) for reader, ms, _, commit in service.tap_latencies if reader == "gate-1-reader"]
    return {"bench_exit_taps_ms": _summary(bench), "simulation_entries_ms": _summary(entries),
            "simulation_records": summary.get("journal_records"), "speed": speed}


def run_benchmark(taps: int = 100, *, during_day: bool = True, speed: float = 10.0) -> dict[str, Any]:
    plan = json.loads((ROOT / "demo" / "day-plan.json").read_text(encoding="utf-8"))
    plan["site_id"] = "bench-site"
    host = SimulatorHost(["gate-1-reader"], ["gate-1"])  # the devices, outside the appliance's process
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "site"
        init_site(data, "bench-site", "基准测试交易中心")
        (data / "appliance.toml").write_text((data / "appliance.toml").read_text() + DEVICES.format(
            reader=host.urls["gate-1-reader"], gate=host.urls["gate-1"]), encoding="utf-8")
        site = open_site(data, clock=FixedClock(NOW))
        load_plan(site, parse_plan(json.dumps(plan, ensure_ascii=False)))
        change_state(site, "S-0922-02", "admitting", by="bench")
        cards = []
        for ref in ("P01", "P02", "P03", "P04"):
            person = next(p for p in plan["people"] if p["id"] == ref)
            person_id = site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = ?", (ref,)).fetchone()[0]
            with site.store.transaction() as conn:
                conn.execute("INSERT INTO checkins (session, person_id, commitment_signed, locker) VALUES (?, ?, ?, ?)",
                             ("S-0922-02", person_id, "2026-11-22T01:00:00.000000Z", "bank-a/1"))
            # Built here, not from tests/: `appliance bench` runs from the installed package.
            cards.append(CardText(kind=RESIDENT, name=person["name"], sex="1", nation="01", birth=person["id_number"][6:14],
                                  id_number=person["id_number"], valid_from="20200101", valid_to="长期"))
        service = DeviceService(site)
        service.start()
        try:
            idle = _taps(service, site, cards, taps, host)
            with cpu_load(2):
                loaded = _taps(service, site, cards, taps, host)
        finally:
            service.stop()
            site.close()
            host.stop()
    day = _during_day(taps * 3, speed) if during_day else None
    return {
        "benchmark": "gate_tap",
        "what": "reader answer's last byte → decision journaled (durable) → gate request on the port",
        "idle_ms": _summary(idle),
        "loaded_ms": _summary(loaded),
        "during_day_simulation": day,
        "goal_ms": {"p50": 1.0, "p99": 5.0},
    }


if __name__ == "__main__":
    print(json.dumps(run_benchmark()))
