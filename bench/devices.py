"""Device latency benchmark, idle and with both cores loaded (two busy processes), measured in
the same run so the ratio survives a noisy machine.

* card event latency: the simulator writes the last byte of the read answer to the pseudo-
  terminal → the reader loop has decoded the card and delivered the event;
* gate command latency: `GateDriver.open()` called → the request handed to the port (the
  software overhead before the first byte goes on the wire; the wire time itself is 8 ms at
  9600 baud and the same for any software).

Run: ``appliance bench devices``. Prints one JSON object.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import cpu_load, percentile
from devices.gate.driver import GateDriver, ModbusHub
from devices.gate.sim import GateSimulator
from devices.idcard.reader import CardReaderLoop
from devices.idcard.sim import SamSimulator, fictitious_card


def card_latencies(reads: int) -> list[float]:
    sim = SamSimulator.on_pty().start()
    delivered: list[float] = []
    latencies: list[float] = []

    def on_card(event: Any) -> None:
        delivered.append(time.monotonic())
        if sim.last_answer_at is not None:
            latencies.append((delivered[-1] - sim.last_answer_at) * 1000)

    loop = CardReaderLoop(sim.url, on_card, poll_s=0.01, debounce_s=0.001)
    loop.start()
    try:
        for i in range(reads):
            sim.place(fictitious_card(i))
            deadline = time.monotonic() + 5
            while len(latencies) <= i and time.monotonic() < deadline:
                time.sleep(0.002)
            sim.remove()
            time.sleep(0.02)
    finally:
        loop.stop()
        sim.stop()
    return latencies


def gate_latencies(opens: int) -> list[float]:
    sim = GateSimulator(someone_walks=False).start()
    hub = ModbusHub(sim.url)
    driver = GateDriver(hub, pulse_ms=100)
    out = []
    try:
        for _ in range(opens):
            out.append(driver.open().call_to_sent_ms)
            time.sleep(0.02)  # a tap is not back-to-back with the last request: no inter-frame wait
        return out
    finally:
        hub.close()
        sim.stop()


def measure(reads: int, opens: int) -> dict[str, Any]:
    cards, gates = card_latencies(reads), gate_latencies(opens)
    return {
        "card_event_ms": {"n": len(cards), "p50": percentile(cards, 0.5), "p99": percentile(cards, 0.99)},
        "gate_call_to_sent_ms": {"n": len(gates), "p50": percentile(gates, 0.5), "p99": percentile(gates, 0.99)},
    }


def run_benchmark(reads: int = 200, opens: int = 200) -> dict[str, Any]:
    idle = measure(reads, opens)
    with cpu_load(2):
        loaded = measure(reads, opens)
    return {
        "benchmark": "devices",
        "idle": idle,
        "loaded_2_busy_processes": loaded,
        "loaded_vs_idle_p50": {
            "card": round(loaded["card_event_ms"]["p50"] / max(idle["card_event_ms"]["p50"], 1e-9), 2),
            "gate": round(loaded["gate_call_to_sent_ms"]["p50"] / max(idle["gate_call_to_sent_ms"]["p50"], 1e-9), 2),
        },
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run_benchmark()))
