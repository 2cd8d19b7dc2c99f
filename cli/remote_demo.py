"""`appliance simulate remote-evaluation` (docs/remote-evaluation.md): a main venue, a secondary
venue and the provincial center on loopback — each venue a real site data folder with its own
keys and journal, the center on PostgreSQL behind its HTTP server, each venue's link to it
through a proxy that can add latency and be cut (cli/linkproxy.py) — playing a whole remote
evaluation: admission at each venue's gate with the commitment signed, sign-in at the
terminals, the chair's vote across venues, every step marked, submitted and confirmed, the
secondary venue's link cut in the middle of a step while one of its members acts, opinions,
the results, the report signed by every member and by a supervisor of each venue for its part,
and issued. It prints a JSON summary.

The members act through the functions their terminals call (appliance.evaluation.actions at the
main venue; appliance.evaluation.remote.forward at the secondary venue); the screens are the
web app's and are tried in tests/test_remote_evaluation.py.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from appliance.evaluation import actions, remote, terminal
from appliance.evaluation import committee as ev
from appliance.kiosks import Kiosks
from appliance.site import Site, init_site, open_site
from appliance.siteops.checkin import gate_by_id, gate_tap
from appliance.siteops.kiosk_checkin import complete, current_prompt, open_prompt
from appliance.siteops.sessions import change_state
from appliance.siteops.simulate import signature_png_of, todays_plan
from appliance.verify import verify_journal
from cli.linkproxy import LinkProxy
from sync.agent import Agent, enroll
from sync.relay import RelayLink

MAIN, SECONDARY = "demo-remote-main", "demo-remote-second"
NAMES = {MAIN: "长白县公共资源交易中心", SECONDARY: "临江市公共资源交易中心"}
SESSION = "S-0922-02"
SEATS = {MAIN: ("P01", "P02", "P03"), SECONDARY: ("P04", "P06")}
TEMPLATE = Path(__file__).resolve().parent.parent / "demo" / "evaluation" / "template.json"
LOCKERS = """
[devices]
simulate = true
[[devices.locker]]
name = "bank-a"
port = "/dev/ttyBUS2"
protocol = "8a"
board = 1
locks = 24
"""


class SimulationError(RuntimeError):
    pass


def plans(now: datetime) -> dict[str, dict[str, Any]]:
    """Today's evaluation session, held at two venues: the main venue's plan with every member
    (P04 and P06 seated at the secondary venue), the secondary venue's with its own people."""
    base = todays_plan(MAIN, now, version=1)
    base["sessions"] = [s for s in base["sessions"] if s["id"] == SESSION]
    session = base["sessions"][0]
    session["bidders"].append({"id": "B3", "name": "某某路桥有限公司"})
    session["remote"] = {"main": MAIN, "venues": [{"site": v, "name": NAMES[v]} for v in (MAIN, SECONDARY)]}
    for entry in session["roster"]:
        if entry["person"] in SEATS[SECONDARY]:
            entry["venue"] = SECONDARY
    second = copy.deepcopy(base)
    second["site_id"] = SECONDARY
    second["rooms"] = [{**r, "kind": "remote_evaluation", "name": "远程异地评标室"} if r["id"] == "PB1" else r for r in second["rooms"]]
    mine = ("P04", "P06", "P08")
    second["people"] = [p for p in second["people"] if p["id"] in mine]
    second["sessions"][0]["roster"] = [{k: v for k, v in e.items() if k != "venue"} for e in session["roster"] if e["person"] in mine]
    return {MAIN: base, SECONDARY: second}


def wait_until(what: Any, why: str, timeout: float = 30.0) -> Any:
    """``what()`` once it is true (looked at every 20 ms), or `SimulationError` naming ``why``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.02)
    raise SimulationError(f"not within {timeout:g} s: {why}")


class Venue:
    def __init__(self, site: Site, plan: dict[str, Any]) -> None:
        self.site = site
        self.people = {p["id"]: p for p in plan["people"]}
        self.kiosks: dict[str, terminal.Terminal] = {}

    def person(self, ref: str) -> int:
        return self.site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = ?", (ref,)).fetchone()[0]

    def admit(self, ref: str) -> None:
        """Through the evaluation area's gate: the card, the commitment signed at the kiosk, the
        card again (the access policy and the journal as at a real gate)."""
        gate, reader = gate_by_id(self.site, "G-IN"), "gate-1-reader"

        def prompt(conn: Any, decision: Any, person_id: int | None) -> None:
            if decision.reason == "commitment_missing":
                open_prompt(self.site, conn, reader=reader, gate=gate.id, person_id=person_id, session=decision.session)

        def tap() -> Any:
            return gate_tap(self.site, gate, id_number=self.people[ref]["id_number"], card_valid=True, card_kind="resident",
                            then=prompt)

        decision = tap()
        if decision.reason == "commitment_missing":
            complete(self.site, current_prompt(self.site, reader).id, reader=reader,
                     signature_png=signature_png_of(len(ref) + ord(ref[-1])), conflicts=[])
            decision = tap()
        if not decision.allow:
            raise SimulationError(f"{ref} refused at the gate: {decision.reason}")

    def sign_in(self, ref: str, desk: int) -> None:
        name = f"PB1-{desk}"
        if name not in self.kiosks:
            Kiosks(self.site).add(name, "evaluation", room="PB1")
            kiosk_id = self.site.store.reader().execute("SELECT id FROM kiosks WHERE name = ?", (name,)).fetchone()[0]
            self.kiosks[name] = terminal.Terminal(kiosk_id, name, "PB1", None)
        outcome = terminal.card_sign_in(self.site, self.kiosks[name], id_number=self.people[ref]["id_number"], card_valid=True)
        if outcome["outcome"] != "signed_in":
            raise SimulationError(f"{ref} could not sign in at {name}: {outcome['outcome']}")


class RemoteEvaluation:
    def __init__(self, folder: Path, *, delay_ms: float = 0.0, cut_s: float = 4.0) -> None:
        self.folder, self.delay_s, self.cut_s = folder, delay_ms / 1000, cut_s
        self.venues: dict[str, Venue] = {}
        self.links: dict[str, LinkProxy] = {}
        self.relays: list[RelayLink] = []
        self.center: Any = None
        self.server: Any = None
        self.cluster: Any = None
        self.held = 0
        self.pause_shown_s: float | None = None

    # -- the three parts --------------------------------------------------------------------

    def start(self, *, relays: bool = True) -> None:
        """The center and both venues, enrolled, the day's plan published to each; with
        ``relays``, each venue's relay runs here (else in the venue's own `appliance run`)."""
        import psycopg
        from psycopg import sql

        from center.api import center_server
        from center.config import write as write_config
        from center.core import Center
        from center.pgcluster import PrivateCluster
        from cli.demo_center import SERVER_ENV

        self.folder.mkdir(parents=True, exist_ok=True)
        server_url = os.environ.get(SERVER_ENV)
        if server_url is None:
            self.cluster = PrivateCluster(self.folder.resolve().parent / f"{self.folder.resolve().name}-center-pg")
            server_url = self.cluster.start()
        name = f"remote_demo_{int(time.time() * 1000)}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        write_config(self.folder / "center", server_url.rsplit("/", 1)[0] + "/" + name, workers=1)
        self.center = Center(self.folder / "center")
        self.server = center_server(self.center, "127.0.0.1", 0, threads=12, name="remote-demo-center")
        port = self.server.prepare()
        self.server.start()
        now = datetime.now(timezone.utc)
        for site_id, plan in plans(now).items():
            data = self.folder / site_id
            init_site(data, site_id, NAMES[site_id])
            config = data / "appliance.toml"
            config.write_text(config.read_text(encoding="utf-8") + LOCKERS, encoding="utf-8")
            site = open_site(data)
            self.links[site_id] = LinkProxy(("127.0.0.1", port), delay_s=self.delay_s).start()
            if site.store.get_meta("sync_center_url") is None:
                enroll(site, self.links[site_id].url, self.center.add_site(site_id))
            self.venues[site_id] = Venue(site, plan)
        for site_id, plan in plans(now).items():
            self.center.add_item(site_id, "day_plan", plan)  # the center writes in each venue's key
            Agent(self.venues[site_id].site).sync_once()
            change_state(self.venues[site_id].site, SESSION, "admitting", by="sim-staff")
        for venue in self.venues.values() if relays else ():
            self.relays.append(RelayLink(venue.site).start())

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()
        for link in self.links.values():
            link.stop()
        for venue in self.venues.values():
            venue.site.close()
        if self.server is not None:
            self.server.stop()
        if self.center is not None:
            self.center.db.close()
        if self.cluster is not None:
            self.cluster.stop()

    # -- members acting ---------------------------------------------------------------------

    def act(self, ref: str, action: str, args: dict[str, Any] | None = None) -> None:
        """``ref`` does ``action`` at the terminal of the venue the plan seats them at; an action
        at the secondary venue is waited for until the main venue has answered it."""
        args = args or {}
        if ref in SEATS[MAIN]:
            main = self.venues[MAIN]
            deadline = time.monotonic() + 60
            while True:
                try:
                    actions.perform(main.site, SESSION, main.person(ref), action, args)
                    return
                except ev.EvaluationError as exc:  # paused: the member waits for the link and acts again
                    if exc.code != "committee_paused" or time.monotonic() > deadline:
                        raise SimulationError(f"{ref}'s {action} refused: {exc}") from exc
                    time.sleep(0.2)
        second = self.venues[SECONDARY]
        seq = remote.forward(second.site, SESSION, second.person(ref), action, args, terminal="PB1-1")
        if remote.away(second.site.store.reader(), SESSION):
            self.held += 1
            return
        state = wait_until(lambda: (lambda r: r[0] if r and r[0] in ("applied", "refused") else None)(
            second.site.store.reader().execute("SELECT state, code FROM remote_actions WHERE seq = ?", (seq,)).fetchone()),
            f"the main venue answering {ref}'s {action}")
        if state != "applied":
            code = second.site.store.reader().execute("SELECT code FROM remote_actions WHERE seq = ?", (seq,)).fetchone()[0]
            raise SimulationError(f"the main venue refused {ref}'s {action}: {code}")

    def everyone(self, action: str, args: Any = None) -> None:
        for refs in SEATS.values():
            for ref in refs:
                self.act(ref, action, args(ref) if callable(args) else args)

    def _main_state(self) -> str:
        return ev._state(self.venues[MAIN].site.store.reader(), SESSION)[0]

    def _step_state(self, step: str) -> str:
        return self.venues[MAIN].site.store.reader().execute("SELECT state FROM eval_steps WHERE session = ? AND step = ?",
                                                             (SESSION, step)).fetchone()[0]

    def cut_and_restore(self, ref: str, step: dict[str, Any], marks: dict[str, str]) -> None:
        """The secondary venue's link is cut; every venue shows the pause; ``ref`` (a member
        there) submits meanwhile — held; the link returns and the held action is delivered."""
        main, second = self.venues[MAIN].site, self.venues[SECONDARY].site
        self.links[SECONDARY].cut()
        cut = time.monotonic()
        wait_until(lambda: remote.away(main.store.reader(), SESSION) and remote.away(second.store.reader(), SESSION),
              "every venue showing the committee paused")
        self.pause_shown_s = round(time.monotonic() - cut, 2)
        self.act(ref, "marks", {"step": step["id"], "fields": marks, "submit": True})
        time.sleep(max(0.0, self.cut_s - (time.monotonic() - cut)))
        self.links[SECONDARY].restore()
        wait_until(lambda: not remote.away(main.store.reader(), SESSION) and not remote.away(second.store.reader(), SESSION),
              "the link back at every venue")
        wait_until(lambda: second.store.reader().execute("SELECT COUNT(*) FROM remote_actions WHERE state IN ('held', 'sent')"
                                                    ).fetchone()[0] == 0, "the held action answered")

    def play(self) -> None:
        main = self.venues[MAIN]
        template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
        for venue, refs in ((self.venues[MAIN], SEATS[MAIN]), (self.venues[SECONDARY], SEATS[SECONDARY])):
            for ref in refs:
                venue.admit(ref)
        bids = [{"bidder": "B1", "price": "1000000"}, {"bidder": "B2", "price": "900000"}, {"bidder": "B3", "price": "950000"}]
        ev.start(main.site, SESSION, template, bids, by="sim-staff")
        for desk, ref in enumerate(SEATS[MAIN], start=1):
            main.sign_in(ref, desk)
        second = self.venues[SECONDARY]
        wait_until(lambda: terminal.current_session(second.site.store.reader(), "PB1"), "the main venue's first screens")
        for desk, ref in enumerate(SEATS[SECONDARY], start=1):
            second.sign_in(ref, desk)
        wait_until(lambda: all(r[0] for r in main.site.store.reader().execute("SELECT signed_in FROM eval_members WHERE session = ?",
                                                                         (SESSION,))), "every member signed in")
        self.everyone("read")
        chair = main.person("P01")
        self.everyone("vote", {"candidate": chair})
        wait_until(lambda: self._main_state() == "evaluating", "the chair elected")
        for number, step in enumerate(template["steps"]):
            if step["kind"] != "price":
                marks = {}
                for c in step["criteria"]:
                    for b in ("B1", "B2", "B3"):
                        value = "pass" if step["kind"] == "pass_fail" else str((Decimal(str(c["max"])) * Decimal("0.8")).quantize(Decimal("0.01")))
                        marks[f"m|{b}|{c['id']}"] = value
                for refs in SEATS.values():
                    for ref in refs:
                        if number == 1 and ref == SEATS[SECONDARY][-1]:
                            self.cut_and_restore(ref, step, marks)  # the cut, in the middle of the second step
                        else:
                            self.act(ref, "marks", {"step": step["id"], "fields": marks, "submit": True})
            self.act("P01", "confirm", {"step": step["id"]})
            wait_until(lambda step=step: self._step_state(step["id"]) == "confirmed", f"step {step['id']} confirmed")
        self.act("P01", "opinions")
        self.everyone("agree")
        self.act("P01", "finalize")
        wait_until(lambda: self._main_state() == "finalized", "the results")
        self.everyone("sign", lambda ref: {"signature_png": _b64(signature_png_of(100 + ord(ref[-1]))), "agrees": True,
                                           "dissent": ""})
        self.venue_signoffs()
        self.act("P01", "issue")

    def venue_signoffs(self) -> None:
        """A supervisor at each venue signs for its part of the report (the secondary venue's
        through the relay); the report waits for both."""
        main = self.venues[MAIN].site
        for site_id, venue in self.venues.items():
            remote.sign_for_venue(venue.site, SESSION, supervisor=f"supervisor-{site_id}", remark="本场地评标过程在监督下进行")
        wait_until(lambda: main.store.reader().execute("SELECT COUNT(DISTINCT venue) FROM venue_signoffs WHERE session = ? "
                                                       "AND state = 'signed'", (SESSION,)).fetchone()[0] == len(self.venues),
                   "every venue's supervisor signed for its part")

    # -- what it shows ----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        from center import log as center_log

        main, second = self.venues[MAIN].site, self.venues[SECONDARY].site
        wait_until(lambda: any(r.payload["kind"] == "evaluation.report" for r in second.journal.records(kind="evaluation.remote_record")),
              "the report's record at the secondary venue")
        sent = [r.seq for r in second.journal.records(kind="evaluation.remote_action")]
        received = Counter(r.payload["origin_seq"] for r in main.journal.records(kind="evaluation.remote_received"))
        answered = {r.payload["origin_seq"]: r.payload["outcome"] for r in main.journal.records(kind="evaluation.remote_answered")}
        journals = {}
        for site in (main, second):
            result = verify_journal(site.store.reader(), site.config.site.id, site.public_key)
            size, head = site.journal.current_head()
            journals[site.config.site.id] = {"size": size, "head": head, "verified": result.ok}
        log = center_log.verify(self.center.db.all("SELECT seq, body, hash, sig FROM center_log ORDER BY seq"),
                                self.center.key.public_key())
        journals["center-log"] = {"size": log["records"], "head": log.get("head"), "verified": log["ok"]}
        report = main.store.reader().execute("SELECT pdf_sha256 FROM eval_reports WHERE session = ?", (SESSION,)).fetchone()
        evidence = self.evidence()
        return {
            "ok": all(j["verified"] for j in journals.values()) and not [s for s in sent if s not in answered] and evidence["verified"],
            "session": SESSION, "state": self._main_state(), "report_pdf_sha256": report[0] if report else None,
            "venues": [{"site": s, "name": NAMES[s], "main": s == MAIN} for s in (MAIN, SECONDARY)],
            "members_by_venue": {NAMES[s]: list(refs) for s, refs in SEATS.items()},
            "link_cuts": sum(link.cuts for link in self.links.values()),
            "pause_shown_s": self.pause_shown_s,
            "actions_relayed": len(sent), "actions_held": self.held,
            "actions_lost": len([s for s in sent if s not in answered]),
            "actions_refused": sum(1 for o in answered.values() if o != "applied"),
            "duplicates": sum(n - 1 for n in received.values() if n > 1),
            "relayed_messages": self.center.db.value("SELECT COUNT(*) FROM relay"),
            "journals": journals,
            "evidence": evidence,
        }

    def evidence(self) -> dict[str, Any]:
        """Each venue's journal up to the center, then the remote session's evidence package
        the center exports (every venue's records and keys), checked offline."""
        from appliance.evidence_remote import verify_remote
        from center.evidence import export_remote

        for venue in self.venues.values():
            Agent(venue.site).sync_once()
        out = self.folder / f"{SESSION}-remote-evidence.zip"
        exported = export_remote(self.center, SESSION, out, by="simulation")
        checked = verify_remote(out).as_json()
        return {"file": str(out), "sha256": exported["sha256"], "verified": checked["ok"],
                "venues": {v["site"]: v.get("records") for v in checked["venues"]},
                "embedded_records_checked": checked["embedded_records_checked"],
                "actions": checked["actions"], "actions_answered": checked["actions_answered"], "problems": checked["problems"][:5]}


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def run(folder: Path, *, delay_ms: float = 0.0, cut_s: float = 4.0) -> dict[str, Any]:
    sim = RemoteEvaluation(folder, delay_ms=delay_ms, cut_s=cut_s)
    try:
        sim.start()
        sim.play()
        return sim.summary()
    finally:
        sim.stop()
