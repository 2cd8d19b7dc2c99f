"""Remote evaluation (issue #16, docs/remote-evaluation.md), measured in the browser: a main
venue, a secondary venue and the center on loopback (cli/remote_demo.py prepares them), each
venue its own `appliance run` process (web, relay, services), each venue's link to the center
through a userspace shaper adding 50 ms each way (cli/linkproxy.py), its members' terminals open
in Debian's chromium.

* ``action_to_screens`` — a member at the secondary venue votes on their screen (a click); timed
  until every open screen, at both venues, shows that member as having voted (the main venue
  applied it through the relay, and each screen reloaded). Rounds of the chair's vote are split
  on purpose so the vote goes on for many rounds.
* the baseline in the same run — a member at the main venue votes; timed until the main venue's
  other screen shows it (no relay).
* ``pause_shown`` — the secondary venue's link is cut (nothing passes, nothing is answered);
  timed until every open screen at both venues says the committee is paused. Several cuts.

Prints one JSON object (issue #16's key names among them).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.evaluation import committee as ev
from appliance.evaluation import terminal
from appliance.kiosks import Kiosks
from bench.common import percentile
from cli.remote_demo import MAIN, SECONDARY, SEATS, SESSION, TEMPLATE, RemoteEvaluation, wait_until
from tests.browser import chromium
from tests.test_runtime import start, stop, wait_ready

ROUNDS = 12
CUTS = 4
DELAY_MS = 50
SCREENS = {MAIN: ("P01", "P02"), SECONDARY: ("P04", "P06")}  # the members whose terminals are open in the browser


def _voted(name: str) -> str:
    return ("() => [...document.querySelectorAll('#committee tr')].some(tr => tr.textContent.includes(%s)"
            " && tr.textContent.includes('已投票'))" % json.dumps(name))


PAUSED = "() => !!document.getElementById('committee-paused')"
RESUMED = "() => !document.getElementById('committee-paused') && !!document.getElementById('committee')"


def _round_is(n: int) -> str:
    return "() => (document.querySelector('#vote h2') || {textContent: ''}).textContent.includes('第 %d 轮')" % n


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o711)  # the private PostgreSQL cluster beside the folder runs as 'nobody' under root
        sim = RemoteEvaluation(Path(tmp) / "remote", delay_ms=DELAY_MS)
        procs: list[Any] = []
        try:
            sim.start(relays=False)
            bases = {}
            for site_id, venue in sim.venues.items():  # each venue its own process, as on its own box
                proc, port = start(venue.site.data_dir)
                procs.append(proc)
                wait_ready(proc, port, timeout=60)
                bases[site_id] = f"http://127.0.0.1:{port}"
            main = sim.venues[MAIN]
            for site_id, refs in SEATS.items():
                for ref in refs:
                    sim.venues[site_id].admit(ref)
            bids = [{"bidder": "B1", "price": "1000000"}, {"bidder": "B2", "price": "900000"}, {"bidder": "B3", "price": "950000"}]
            ev.start(main.site, SESSION, json.loads(TEMPLATE.read_text(encoding="utf-8")), bids, by="bench")
            with chromium() as browser:
                return _measure(sim, bases, browser)
        finally:
            for proc in procs:
                stop(proc)
            sim.stop()


def _enrol(browser: Any, base: str, code: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    page.goto(base + "/kiosk/enrol")
    page.fill("input[name=code]", code)
    page.click("#enrol-submit")
    return page


def _measure(sim: RemoteEvaluation, bases: dict[str, str], browser: Any) -> dict[str, Any]:
    pages: dict[str, Any] = {}
    second = sim.venues[SECONDARY]
    for site_id, refs in SEATS.items():
        venue = sim.venues[site_id]
        if site_id == SECONDARY:  # its terminals invite a sign-in once the main venue's screens arrived
            wait_until(lambda: terminal.current_session(second.site.store.reader(), "PB1"), "the main venue's first screens")
        for desk, ref in enumerate(refs, start=1):
            name = f"PB1-{desk}"
            code = Kiosks(venue.site).add(name, "evaluation", room="PB1")
            if ref in SCREENS[site_id]:
                pages[ref] = _enrol(browser, bases[site_id], code)
            kiosk_id = venue.site.store.reader().execute("SELECT id FROM kiosks WHERE name = ?", (name,)).fetchone()[0]
            venue.kiosks[name] = terminal.Terminal(kiosk_id, name, "PB1", None)
            venue.sign_in(ref, desk)
    main = sim.venues[MAIN]
    wait_until(lambda: all(r[0] for r in main.site.store.reader().execute("SELECT signed_in FROM eval_members WHERE session = ?",
                                                                          (SESSION,))), "every member signed in")
    sim.everyone("read")
    wait_until(lambda: sim._main_state() == "electing", "the vote open")
    screen = terminal.screen(main.site, SESSION, main.person("P01"))
    names = {m["person_id"]: m["name"] for m in screen["members"]}
    if len(set(names.values())) != len(names):
        raise RuntimeError("two members have the same masked name: the screens cannot tell them apart")
    ids = {ref: (main.person(ref)) for refs in SEATS.values() for ref in refs}
    for ref, page in pages.items():
        _open(page, bases[MAIN if ref in SEATS[MAIN] else SECONDARY] + "/evaluation/")
    remote_ms, local_ms = [], []
    for n in range(1, ROUNDS + 1):
        for page in pages.values():
            page.wait_for_function(_round_is(n), timeout=30_000)
        # The baseline: P02 at the main venue votes for themselves; P01's screen there shows it.
        local_ms.append(_vote_and_time(pages["P02"], ids["P02"], [pages["P01"]], names[ids["P02"]]))
        # The measured action: P04 at the secondary venue votes; every open screen shows it.
        remote_ms.append(_vote_and_time(pages["P04"], ids["P04"], list(pages.values()), names[ids["P04"]]))
        for ref, candidate in (("P01", "P01"), ("P03", "P03"), ("P06", "P01")):  # split: no one has more than half
            sim.act(ref, "vote", {"candidate": ids[candidate]})
    pause_s = []
    for _ in range(CUTS):
        for page in pages.values():
            page.wait_for_function(RESUMED, timeout=60_000)
        sim.links[SECONDARY].cut()
        cut = time.monotonic()
        for page in pages.values():
            page.wait_for_function(PAUSED, timeout=30_000, polling=20)
        pause_s.append(time.monotonic() - cut)
        time.sleep(1.0)
        sim.links[SECONDARY].restore()
    hops = _hops(sim)
    return {
        **hops,
        "venues": 2, "delay_ms_each_way": DELAY_MS, "rounds": ROUNDS, "cuts": CUTS,
        "action_to_screens_p50_ms": percentile(remote_ms, 0.5, 1), "action_to_screens_p95_ms": percentile(remote_ms, 0.95, 1),
        "action_to_screens_max_ms": round(max(remote_ms), 1),
        "baseline_local_action_to_screen_p50_ms": percentile(local_ms, 0.5, 1),
        "baseline_local_action_to_screen_p95_ms": percentile(local_ms, 0.95, 1),
        "pause_shown_max_s": round(max(pause_s), 2), "pause_shown_p50_s": percentile(pause_s, 0.5, 2),
        "goals": {"action_to_screens_p95_ms": 1000, "pause_shown_max_s": 3.0},
    }


SETTLED = ("async () => { const t = document.getElementById('terminal'); if (!t) return false;"
           " const r = await fetch('/evaluation/state'); const d = await r.json(); return d.fingerprint === t.dataset.fingerprint; }")


def _vote_and_time(page: Any, candidate: int, watchers: list[Any], name: str) -> float:
    """Click the vote on a screen that shows what the venue holds now (a screen about to reload
    would lose the click), then wait until every watcher's screen shows the vote."""
    page.wait_for_function(SETTLED, timeout=30_000, polling=50)
    page.check(f"input[name=candidate][value='{candidate}']")
    started = time.monotonic()
    page.click("#vote-submit")
    for watcher in watchers:
        watcher.wait_for_function(_voted(name), timeout=30_000, polling=10)
    return (time.monotonic() - started) * 1000


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _hops(sim: RemoteEvaluation) -> dict[str, float]:
    """Where a secondary member's action spends its time, from the journals' timestamps (both
    venues on this machine's clock): journaled at the secondary venue → journaled as received at
    the main venue → the main venue's answer journaled back at the secondary venue."""
    main, second = sim.venues[MAIN].site, sim.venues[SECONDARY].site
    sent = {r.seq: _ts(r.ts) for r in second.journal.records(kind="evaluation.remote_action")}
    received = {r.payload["origin_seq"]: _ts(r.ts) for r in main.journal.records(kind="evaluation.remote_received")}
    answers = {json.loads(r.payload["record"]["body"])["payload"]["origin_seq"]: _ts(r.ts)
               for r in second.journal.records(kind="evaluation.remote_record") if r.payload["kind"] == "evaluation.remote_answered"}
    up = [1000 * (received[s] - t) for s, t in sent.items() if s in received]
    down = [1000 * (answers[s] - received[s]) for s in sent if s in answers and s in received]
    return {"hop_secondary_to_main_p50_ms": percentile(up, 0.5, 1), "hop_main_answer_back_p50_ms": percentile(down, 0.5, 1)}


def _open(page: Any, url: str) -> None:
    """Go to the terminal's screen (the screen may be reloading itself meanwhile: try again)."""
    for _ in range(10):
        try:
            page.goto(url)
            return
        except Exception:  # noqa: BLE001 - "interrupted by another navigation": the terminal reloaded itself
            time.sleep(0.2)
    page.goto(url)



if __name__ == "__main__":
    print(json.dumps(run(), ensure_ascii=False))
