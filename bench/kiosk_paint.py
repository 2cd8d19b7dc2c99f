"""Kiosk result paint benchmark: a card tap at the gate → the decision (journaled) → painted on
the gate kiosk in Debian's chromium, against `appliance run` with a simulated reader, gate and
lockers. Measured from the decision's journal timestamp to the browser's next frame after
painting (same machine clock); the decision itself follows the card's last byte by ≈ 1.5 ms
(`appliance bench gate-tap`). Baseline in the same run: a full reload of the kiosk page.

Run: ``python -m bench.kiosk_paint`` (from the checkout). Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.browser import chromium
from tests.venue import build_venue, card_of


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def run(taps: int = 30) -> dict[str, Any]:
    import socket

    with tempfile.TemporaryDirectory() as tmp:
        venue = build_venue(Path(tmp), "bench-site")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        appliance = str(Path(sys.executable).with_name("appliance"))
        proc = subprocess.Popen([appliance, "run", "--data", str(venue.data)], env={**os.environ, "APPLIANCE_WEB__PORT": str(port)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if json.load(urllib.request.urlopen(base + "/healthz", timeout=2))["ok"]:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("appliance did not start")
                time.sleep(0.1)
            with chromium() as browser:
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                page.goto(base + "/kiosk/enrol")
                page.fill("input[name=code]", venue.kiosk_code)
                page.click("#enrol-submit")
                page.wait_for_url(base + "/kiosk/")
                page.wait_for_selector("footer.live.online")
                for i in range(taps):
                    venue.reader.place(card_of("P11" if i % 2 else "P13"))  # bidder / agency staff: refused
                    page.wait_for_function("n => window.__kioskPaints.length >= n", arg=i + 1, timeout=10_000)
                    venue.reader.remove()
                    time.sleep(1.1)  # past the reader's debounce
                paints = [p["decided_to_painted_ms"] for p in page.evaluate("window.__kioskPaints")]
                reloads = []
                for _ in range(10):
                    t0 = time.perf_counter()
                    page.reload(wait_until="load")
                    page.evaluate("new Promise(r => requestAnimationFrame(() => r()))")
                    reloads.append((time.perf_counter() - t0) * 1000)
        finally:
            proc.terminate()
            proc.wait(10)
            venue.stop()
    return {
        "benchmark": "kiosk_paint",
        "taps": len(paints),
        "decided_to_painted_ms": {"p50": _pct(paints, 0.5), "p99": _pct(paints, 0.99), "max": round(max(paints), 1)},
        "baseline_full_reload_ms": {"p50": _pct(reloads, 0.5)},
        "paint_vs_reload_p50": round(statistics.median(paints) / statistics.median(reloads), 2),
        "goal_ms": 300,
    }


if __name__ == "__main__":
    print(json.dumps(run()))
