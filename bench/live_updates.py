"""Live-update benchmark: a journal record appended by another process → painted on the console
in a real browser (Debian's chromium), against `appliance run` on loopback.

Run: ``python -m bench.live_updates`` (from the checkout; ``make bench`` runs it). Prints one
JSON object. The baseline, measured in the same run, is a full reload of the console page
(what a screen without live updates would need just to fetch and paint the new state).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.accounts import Accounts
from bench.common import percentile, running_appliance
from appliance.site import init_site, open_site
from tests.browser import chromium, log_in

PASSWORD = "bench-password-1"
# A function, not an expression string: the page's CSP forbids eval.
PAINTED = "seq => Number(document.getElementById('journal-records').textContent) >= seq"


def run(events: int = 60, interval_s: float = 0.15) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "site"
        init_site(data, "bench-site", "基准测试交易中心")
        site = open_site(data)
        Accounts(site).add("bench", "staff", PASSWORD)
        try:
            with running_appliance(data) as base, chromium() as browser:
                page = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
                log_in(page, base, "bench", PASSWORD)
                page.wait_for_url(base + "/console/")
                page.wait_for_selector("footer.live.online")
                seqs = []
                for i in range(events):
                    seq = site.journal.record("staff.note", {"text": f"巡场记录 {i}"}).seq
                    seqs.append(seq)
                    page.wait_for_function(PAINTED, arg=seq, timeout=10_000)
                    time.sleep(interval_s)
                page.wait_for_timeout(300)
                samples = page.evaluate("window.__liveLatencies")
                by_seq = {s["seq"]: s for s in samples}
                appended = [by_seq[s]["appended_to_painted_ms"] for s in seqs if s in by_seq]
                emitted = [by_seq[s]["emitted_to_painted_ms"] for s in seqs if s in by_seq]
                reloads = []
                for _ in range(15):
                    t0 = time.perf_counter()
                    page.reload(wait_until="load")
                    page.evaluate("new Promise(r => requestAnimationFrame(() => r()))")
                    reloads.append((time.perf_counter() - t0) * 1000)
        finally:
            site.close()
    return {
        "benchmark": "live_updates",
        "events": len(seqs),
        "painted": len(appended),
        "appended_to_painted_ms": {"p50": percentile(appended, 0.5, 1), "p99": percentile(appended, 0.99, 1), "max": round(max(appended), 1)},
        "emitted_to_painted_ms": {"p50": percentile(emitted, 0.5, 1), "p99": percentile(emitted, 0.99, 1)},
        "baseline_full_reload_ms": {"p50": percentile(reloads, 0.5, 1), "p99": percentile(reloads, 0.99, 1)},
        "live_vs_reload_p50_ratio": round(statistics.median(appended) / statistics.median(reloads), 3),
        "goal_ms": 300,
    }


if __name__ == "__main__":
    print(json.dumps(run(), ensure_ascii=False))
