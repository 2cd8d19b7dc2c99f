"""Kiosk result paint benchmark: a card tap at the gate → the decision (journaled) → painted on
the gate kiosk in Debian's chromium, against `appliance run` with a simulated reader, gate and
lockers. Measured from the decision's journal timestamp to the browser's next frame after
painting (same machine clock); the decision itself follows the card's last byte by ≈ 1.5 ms
(`appliance bench gate-tap`). Baseline in the same run: a full reload of the kiosk page.

Run: ``python -m bench.kiosk_paint`` (from the checkout). Prints one JSON object.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import percentile, running_appliance
from tests.browser import chromium
from tests.venue import build_venue, card_of


def run(taps: int = 30) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        venue = build_venue(Path(tmp), "bench-site")
        try:
            with running_appliance(venue.data) as base, chromium() as browser:
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
            venue.stop()
    return {
        "benchmark": "kiosk_paint",
        "taps": len(paints),
        "decided_to_painted_ms": {"p50": percentile(paints, 0.5, 1), "p99": percentile(paints, 0.99, 1), "max": round(max(paints), 1)},
        "baseline_full_reload_ms": {"p50": percentile(reloads, 0.5, 1)},
        "paint_vs_reload_p50": round(statistics.median(paints) / statistics.median(reloads), 2),
        "goal_ms": 300,
    }


if __name__ == "__main__":
    print(json.dumps(run()))
