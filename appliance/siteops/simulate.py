"""A realistic venue day against the device simulators (``appliance simulate day``, and ``make
run`` at human speed): today's plan from demo/day-plan.json moved to now, with an afternoon
opening and the bidders' representatives of both openings added (three sessions, about thirty
people); tomorrow's room bookings scheduled; experts checking in at the gate kiosk (one declares a
conflict and is replaced), the tenderer's representative checked by staff because the card will
not read, a supervisor and a witness entering, bidders' representatives and agency staff refused
at the evaluation gate, a no-show flagged, a clarification call, registers filling, an approved
exit for a sample inspection and the return, a suspension confirmed by a supervisor and the
resumption, an expert leaving without approval (an alarm left open for the console), the
evaluation completed and its fee sheet finalized. Everything goes through the real drivers, the
access policy and the journal. Fictitious people only.
"""

from __future__ import annotations

import json
import logging
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
from appliance.clock import utc_timestamp
from appliance.device_commands import queue_command
from appliance.site import Site
from appliance.personal import id_check_char
from appliance.siteops.assisted import assisted_check
from appliance.siteops.checkin import gate_for_reader
from appliance.siteops.exits import approve_exit
from appliance.siteops.fees import fee_sheet, finalize_sheet, luhn_ok, set_bank_card
from appliance.siteops.kiosk_checkin import complete, current_prompt
from appliance.siteops.noshow import flag_no_show, request_replacement
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.registers import add_entry, close_entry
from appliance.siteops.scheduling import add_booking, parse_requests, schedule_day
from appliance.siteops.sessions import change_state
from devices.idcard.text import RESIDENT, CardText

DEMO = Path(__file__).resolve().parent.parent.parent / "demo"
DEMO_PLAN = DEMO / "day-plan.json"
SHANGHAI = ZoneInfo("Asia/Shanghai")
log = logging.getLogger(__name__)
SUPERVISOR = ("sim-supervisor", "simulated-supervisor-password")


def signature_png_of(seed: int) -> bytes:
    """A fictitious signature as a signature pad would draw it (a valid PNG), different per seed."""
    width, height = 60, 20
    rows = b"".join(b"\x00" + bytes(0 if (x + seed) % 17 == y else 255 for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _bank_card(i: int) -> str:
    """A fictitious 19-digit card number with a valid Luhn check digit."""
    body = f"621700{i:012d}"
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def todays_plan(site_id: str, now: datetime, version: int) -> dict[str, Any]:
    plan = json.loads(DEMO_PLAN.read_text(encoding="utf-8"))
    local = now.astimezone(SHANGHAI).replace(second=0, microsecond=0)
    plan.update(site_id=site_id, date=local.date().isoformat(), version=version)
    starts = {"S-0922-01": local - timedelta(minutes=10), "S-0922-02": local + timedelta(minutes=15)}
    for session in plan["sessions"]:
        session["start"] = starts[session["id"]].isoformat()
        session["end"] = (starts[session["id"]] + timedelta(hours=6)).isoformat()
    return plan


COMPANIES = ["长春宏达建设", "吉林华信工程", "四平建工集团", "通化路桥", "延边城建", "白山水利", "辽源市政", "松原建安",
             "白城鑫源", "梅河口建筑", "公主岭恒基", "敦化森工建设"]
SURNAMES = "陈林黄周吴徐孙马朱胡郭何高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁"


def _fictitious_id(i: int) -> str:
    born = datetime(1975, 1, 1) + timedelta(days=97 * i)
    first17 = f"220104{born:%Y%m%d}{500 + i:03d}"
    return first17 + id_check_char(first17)


def busier_day(plan: dict[str, Any]) -> dict[str, Any]:
    """The demo plan with the bidders' representatives of the morning opening and an afternoon
    opening of a second section, as a county venue's day looks."""
    opening = next(s for s in plan["sessions"] if s["id"] == "S-0922-01")
    afternoon = dict(opening, id="S-0922-03", section_code="JL2026-SZ-0121-01", section_name="某乡村道路硬化工程施工",
                     bidders=[], roster=[{"person": "P13", "role": "agency_staff"}, {"person": "P07", "role": "supervisor"}])
    start = datetime.fromisoformat(opening["start"]) + timedelta(hours=5)
    afternoon.update(start=start.isoformat(), end=(start + timedelta(hours=2)).isoformat())
    people = []
    for i, company in enumerate(COMPANIES):
        session = opening if i < 6 else afternoon
        bidder = f"B{i + 3}"
        session["bidders"] = [*session["bidders"], {"id": bidder, "name": f"{company}有限公司"}]
        for k in range(2 if i < 6 else 1):
            ref = f"R{i + 1:02d}{k}"
            people.append({"id": ref, "name": SURNAMES[(3 * i + k) % len(SURNAMES)] + "代表", "id_number": _fictitious_id(2 * i + k),
                           "organisation": f"{company}有限公司"})
            session["roster"] = [*session["roster"], {"person": ref, "role": "bidder_representative", "bidder": bidder}]
    return {**plan, "people": plan["people"] + people, "sessions": [*plan["sessions"], afternoon]}


# The paced day (make run): each step's pause this many times longer, this long between the
# day's phases, and the start held until someone logs in (at most this long), so a newcomer
# watches every step; at --simulate-speed 1 the day takes about twenty minutes.
PACED_STEP = 5.0
PHASE_GAP_S = 90.0
WAIT_FOR_LOGIN_S = 300.0
PHASES = ("waiting_for_login", "opening", "checkin", "evaluation", "closing", "finished", "already_played")


class DaySimulation:
    def __init__(self, site: Site, service: Any, *, speed: float = 1.0, seed: int = 0, paced: bool = False) -> None:
        """``paced`` (make run): human pace, held until someone logs in, and once a day — a
        restart the same day does not play it again (no second copy of the sessions)."""
        if not 0 < speed <= 10_000:
            raise ValueError("speed: more than 0 (1 is real time, 10 ten times faster)")
        self.site, self.service, self.speed, self.paced = site, service, speed, paced
        self.random = random.Random(seed)
        self.plan: dict[str, Any] = {}
        self.stop_event = threading.Event()
        self.notes: Counter[str] = Counter()
        self.ids: dict[str, str] = {}

    # -- helpers ---------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        self.stop_event.wait(seconds * (PACED_STEP if self.paced else 1.0) / self.speed)
        if self.stop_event.is_set():
            raise InterruptedError

    def phase(self, name: str) -> None:
        """The day moves to its next phase: said in the log and on the console (meta demo_phase);
        paced, after a gap to look at the screens."""
        assert name in PHASES
        if self.paced and name not in ("waiting_for_login", "opening", "finished", "already_played"):
            self.stop_event.wait(PHASE_GAP_S / self.speed)
            if self.stop_event.is_set():
                raise InterruptedError
        with self.site.store.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('demo_phase', ?)", (name,))
        log.info("demo day: %s", name)

    def played_today(self) -> bool:
        day = self.site.clock.now().astimezone(SHANGHAI).date().isoformat()
        return self.site.store.reader().execute(
            "SELECT 1 FROM sessions WHERE day = ? AND id LIKE 'S-0922-01%'", (day,)).fetchone() is not None

    def wait_for_login(self, since: str) -> None:
        """Held until a person logs in to the web screens after ``since`` (when the appliance
        started), or WAIT_FOR_LOGIN_S, so the day's first taps are not over before anyone looks."""
        deadline = time.monotonic() + WAIT_FOR_LOGIN_S / self.speed
        while time.monotonic() < deadline:
            if self.site.store.reader().execute("SELECT 1 FROM web_sessions WHERE created >= ?", (since,)).fetchone():
                return
            if self.stop_event.wait(0.5):
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
        gate = gate_for_reader(self.site, reader)
        while decision is None and time.monotonic() < deadline:
            # This reader's gate only: other gates may be deciding at the same time.
            records = [r for r in self.site.journal.records(since=before, kind="gate.decision")
                       if gate is not None and r.payload["gate"] == gate.id]
            decision = records[-1].payload if records else None
            time.sleep(0.02)
        sim.remove()
        # Past the reader's debounce, so the next tap of this card counts as a new one.
        debounce = next(r.debounce_s for r in self.site.config.devices.idcard if r.name == reader)
        time.sleep(debounce + 0.1)
        self.notes[f"tap:{(decision or {}).get('reason', 'no_decision')}"] += 1
        return decision or {}

    def checkin(self, ref: str, conflicts: list[str] | None = None, *, card_reads: bool = True) -> dict[str, Any]:
        if card_reads:
            self.tap(ref)
        else:
            self.assisted(ref)
        prompt = current_prompt(self.site, "gate-1-reader")
        if prompt is None:
            return {}
        self.pause(4)  # reading the commitment and signing
        result = complete(self.site, prompt.id, reader="gate-1-reader", signature_png=signature_png_of(prompt.id),
                          conflicts=conflicts or [])
        self.notes[f"checkin:{result['outcome']}"] += 1
        if result["outcome"] == "signed":
            self.pause(3)  # the phone and bag into the locker
            if card_reads:
                self.tap(ref)  # the card again at the gate
            else:
                self.assisted(ref)
        return result

    DESK = "pb1-desk-1"

    def has_desk(self) -> bool:
        from appliance.evaluation.terminal import terminal_for_reader

        return any(r.name == self.DESK for r in self.site.config.devices.idcard) and terminal_for_reader(self.site, self.DESK) is not None

    def desk_sign_in(self, ref: str) -> bool:
        """A card on the demo terminal's desk reader; True once the member is seated there."""
        before = self.site.journal.count()
        sim = self.reader(self.DESK)
        sim.place(self.card(ref))
        deadline = time.monotonic() + 5
        outcome = None
        while outcome is None and time.monotonic() < deadline:
            taps = self.site.journal.records(since=before, kind="evaluation.terminal_tap")
            outcome = taps[-1].payload["outcome"] if taps else None
            time.sleep(0.02)
        sim.remove()
        self.notes[f"desk:{outcome}"] += 1
        return outcome == "signed_in"

    def replacement(self, ref: str, *, person: dict[str, Any] | None = None) -> None:
        """The replacement draw's result (补抽) from the center: a newer plan with ``ref`` on the
        evaluation's roster as an expert; the committee's size stays the plan's."""
        plan = json.loads(json.dumps(self.plan))
        plan["version"] += 1
        if person is not None:
            plan["people"].append(person)
        session = next(s for s in plan["sessions"] if s["id"] == self.sid("S-0922-02"))
        session["roster"].append({"person": ref, "role": "expert"})
        load_plan(self.site, parse_plan(json.dumps(plan, ensure_ascii=False)))
        self.plan = plan
        self.notes["replacements"] += 1

    def ref_of(self, person_id: int) -> str:
        return self.site.store.reader().execute("SELECT ref FROM person_refs WHERE person_id = ?", (person_id,)).fetchone()[0]

    def assisted(self, ref: str) -> str:
        """The card will not read: staff check the person against a temporary ID card."""
        person = next(p for p in self.plan["people"] if p["id"] == ref)
        self.pause(5)  # comparing the person with the photo, typing the number
        decision = assisted_check(self.site, "G-IN", id_number=person["id_number"], document="temporary_card",
                                  reason="临时身份证，无芯片", photo_compared=True, by="sim-staff")
        self.notes[f"assisted:{decision.reason}"] += 1
        return decision.reason

    def person_id(self, ref: str) -> int:
        return self.site.store.reader().execute("SELECT person_id FROM person_refs WHERE ref = ?", (ref,)).fetchone()[0]

    def book_tomorrow(self) -> None:
        """Tomorrow's booking requests (demo/bookings.json moved to tomorrow), given rooms."""
        tomorrow = self.site.clock.now().astimezone(SHANGHAI).date() + timedelta(days=1)
        for request in parse_requests((DEMO / "bookings.json").read_text(encoding="utf-8")):
            shift = tomorrow - request.earliest.date()
            add_booking(self.site, day=tomorrow.isoformat(), section_code=request.section_code,
                        section_name=request.section_name, session_kind=request.session_kind, room_kind=request.room_kind,
                        attendees=request.attendees, duration_min=request.duration_min, earliest=request.earliest + shift,
                        latest_end=request.latest_end + shift, equipment=request.equipment, by="sim-staff")
        result = schedule_day(self.site, tomorrow.isoformat(), by="sim-staff")
        self.notes["bookings_scheduled"] += len(result["scheduled"])

    def opening(self) -> None:
        """The morning opening's record: every bidder's price and duration, two bid files made
        with the same pricing-software lock (a collusion signal), confirmations, sign-off."""
        from appliance.evaluation import opening

        session = self.sid("S-0922-01")
        bidders = [r[0] for r in self.site.store.reader().execute(
            "SELECT bidder FROM session_bidders WHERE session = ? ORDER BY bidder", (session,))]
        bids = []
        for i, bidder in enumerate(bidders):
            lock = "JSJ-2026-55031" if bidder in ("B4", "B6") else f"JSJ-2026-{10000 + 7 * i}"
            bids.append({"bidder": bidder, "price": str(9_860_000 - 137_000 * i + 23_000 * (i % 3)),
                         "attendance": "remote" if i == 2 else "onsite",
                         "fields": {"工期（日历天）": str(300 - 5 * (i % 4)), "质量标准": "合格"},
                         "metadata": {"lock_number": lock, "ip": f"10.20.{i}.8"}})
        opening.open_bids(self.site, session, bids, by="sim-staff")
        self.pause(3)
        for b in bids:
            opening.confirm(self.site, session, b["bidder"], agrees=True, by=f"{b['bidder']} 代表")
        opening.sign_off(self.site, session, supervisor=SUPERVISOR[0])

    def committee(self) -> None:
        """The evaluation from sign-in to the signed report, by the members present (the recused
        and the no-show are not on the committee): a tied first vote, pass/fail steps, scores, a
        clarification, opinions with a revision, results, every member's signature, the PDF."""
        from appliance.evaluation import committee as ev
        from appliance.evaluation import opening, report

        session = self.sid("S-0922-02")
        template = json.loads((DEMO / "evaluation" / "template.json").read_text(encoding="utf-8"))
        section = self.site.store.reader().execute("SELECT section_code FROM sessions WHERE id = ?", (session,)).fetchone()[0]
        ours = {r[0] for r in self.site.store.reader().execute("SELECT bidder FROM session_bidders WHERE session = ?", (session,))}
        bids = [b for b in opening.bids_for_evaluation(self.site, section) if b["bidder"] in ours]
        ev.start(self.site, session, template, bids, by="sim-staff")
        members = [r[0] for r in self.site.store.reader().execute(
            "SELECT person_id FROM eval_members WHERE session = ? ORDER BY person_id", (session,))]
        experts = [m for m in members if self.site.store.reader().execute(
            "SELECT role FROM eval_members WHERE session = ? AND person_id = ?", (session, m)).fetchone()[0] == "expert"]
        first, second = experts[0], experts[1]
        # The member who will chair signs in at the demo terminal's desk reader, so a terminal
        # enrolled there follows the evaluation; the others sign in at terminals of their own.
        desk = self.desk_sign_in(self.ref_of(second)) if self.has_desk() else False
        for m in members:
            if not (desk and m == second):
                ev.sign_in(self.site, session, m)
            self.pause(1)
            ev.confirm_read(self.site, session, m)
        self.pause(3)
        for i, m in enumerate(members):  # round 1 splits; round 2 elects the second expert
            ev.vote(self.site, session, m, first if i % 2 == 0 else second)
        if self.site.store.reader().execute("SELECT chair FROM evaluations WHERE session = ?", (session,)).fetchone()[0] is None:
            for m in members:
                ev.vote(self.site, session, m, second)
        chair = self.site.store.reader().execute("SELECT chair FROM evaluations WHERE session = ?", (session,)).fetchone()[0]
        bidders = sorted(b["bidder"] for b in bids if b["valid"])
        for step in template["steps"]:
            if step["kind"] == "price":
                continue
            for k, m in enumerate(members):
                for j, bidder in enumerate(bidders):
                    for c in step["criteria"]:
                        # Scores between 78 % and 92 % of the maximum, drawn from the day's seed.
                        value = "pass" if step["kind"] == "pass_fail" else str(int(c["max"]) * self.random.randint(78, 92) // 100)
                        ev.mark(self.site, session, m, step["id"], bidder, c["id"], value)
                ev.submit_step(self.site, session, m, step["id"])
            self.pause(2)
            ev.confirm_step(self.site, session, chair, step["id"])
            if step["id"] == "compliance":
                question = ev.ask_clarification(self.site, session, chair, bidders[-1], "请澄清投标报价中暂列金额的计取依据。",
                                                room="DY1")
                visit = add_entry(self.site, "clarification", {"session": session, "bidder": bidders[-1], "people": "1"},
                                  by="simulation")
                self.pause(5)
                ev.record_answer(self.site, question, "暂列金额按招标文件规定的10%计取。", by="sim-staff")
                close_entry(self.site, visit, by="simulation")
        ev.confirm_step(self.site, session, chair, "price")
        ev.ask_opinions(self.site, session, chair)
        ev.revise(self.site, session, members[0], "technical", bidders[0], "plan", "34", "复核后上调一分")
        for m in members:
            ev.agree(self.site, session, m)
        ev.finalize(self.site, session, chair)
        for i, m in enumerate(members):
            report.sign(self.site, session, m, agrees=True, signature_png=signature_png_of(1000 + i))
        report.issue(self.site, session)
        self.notes["evaluations_finalized"] += 1

    # -- the day ---------------------------------------------------------------------------

    def make_plan(self, version: int) -> dict[str, Any]:
        """Today's plan; played again the same day (``make run`` restarted), its sessions get
        new ids, since the earlier ones have moved on (a session's state never goes back)."""
        plan = busier_day(todays_plan(self.site.config.site.id, self.site.clock.now(), version))
        if version > 1:
            for session in plan["sessions"]:
                self.ids[session["id"]] = session["id"] = f"{session['id']}-{version}"
        return plan

    def sid(self, name: str) -> str:
        """The id this run gives the demo plan's session ``name``."""
        return self.ids.get(name, name)

    def prepare(self) -> None:
        versions = self.site.store.reader().execute("SELECT MAX(version) FROM plans").fetchone()[0] or 0
        self.plan = self.make_plan(versions + 1)
        load_plan(self.site, parse_plan(json.dumps(self.plan, ensure_ascii=False)))
        try:
            Accounts(self.site).add(SUPERVISOR[0], "supervisor", SUPERVISOR[1], by="simulation")
        except AccountError:
            pass  # a previous simulated day created it

    def run(self) -> dict[str, Any]:
        started = utc_timestamp(self.site.clock.now() - timedelta(seconds=5))  # a login as the web came up counts
        if self.paced and self.played_today():
            self.phase("already_played")
            log.info("demo day: today's day has played already (make demo-reset plays it again)")
            return {"ok": True, "skipped": "already_played"}
        site = self.site
        try:
            if self.paced:
                self.phase("waiting_for_login")
                self.wait_for_login(started)
            self.prepare()
            self.phase("opening")
            change_state(site, self.sid("S-0922-01"), "admitting", by="simulation")
            change_state(site, self.sid("S-0922-01"), "in_progress", by="simulation")
            self.opening()
            change_state(site, self.sid("S-0922-02"), "admitting", by="simulation")
            self.book_tomorrow()
            self.pause(3)
            self.phase("checkin")
            add_entry(site, "materials", {"session": self.sid("S-0922-02"), "direction": "in", "description": "评标用投标文件光盘 2 张",
                                          "carried_by": "见证人员"}, by="simulation")
            for ref in ("P01", "P02"):
                self.checkin(ref)
                self.pause(3)
            self.tap("P11")  # a bidder's representative at the evaluation gate: refused
            self.pause(2)
            self.checkin("P03", conflicts=["B1"])  # recusal: a replacement is requested
            self.replacement("P05")  # the center's draw (补抽) arrives as a newer plan
            self.pause(3)
            self.checkin("P04")
            self.checkin("P06", card_reads=False)  # the tenderer's representative: the card will not read
            self.tap("P07")  # the supervisor
            self.tap("P08")  # the witness
            self.tap("P13")  # agency staff: refused
            self.tap("R010")  # a representative of the morning opening who wandered to the evaluation gate
            self.pause(3)
            # P05, the replacement, never comes: flagged (the appliance does it by itself at start + N
            # minutes) and replaced by a second draw.
            no_show = self.person_id("P05")
            with site.store.transaction() as conn:
                flag_no_show(site, conn, self.sid("S-0922-02"), no_show, by="simulation")
            request_replacement(site, self.sid("S-0922-02"), no_show, by="simulation")
            self.replacement("P20", person={"id": "P20", "name": "曹评审", "id_number": _fictitious_id(90), "organisation": ""})
            self.checkin("P20")
            self.phase("evaluation")
            change_state(site, self.sid("S-0922-02"), "in_progress", by="simulation")
            self.pause(4)
            add_entry(site, "patrol", {"area": "第一评标室", "finding": "评标秩序正常", "follow_up": "无"}, by="simulation")
            # A sample inspection: the expert leaves with approval and comes back.
            approve_exit(site, self.sid("S-0922-02"), self.person_id("P01"), minutes=20, reason="样品查验", by="sim-staff")
            self.tap("P01", reader="gate-1-exit-reader")
            self.pause(5)
            self.tap("P01")
            self.pause(3)
            change_state(site, self.sid("S-0922-01"), "completed", by="simulation")
            change_state(site, self.sid("S-0922-02"), "suspended", by="simulation", reason="电子评标系统故障", confirmed_by=SUPERVISOR[0])
            queue_command(site, "announce", "all", {"text": "评标暂停，请在场人员原地等候通知。", "priority": "emergency"},
                          requested_by="simulation")
            self.pause(5)
            change_state(site, self.sid("S-0922-02"), "in_progress", by="simulation", reason="故障已排除", confirmed_by=SUPERVISOR[0])
            self.committee()
            self.phase("closing")
            self.tap("P02", reader="gate-1-exit-reader")  # leaving during the evaluation: an alarm
            self.pause(5)
            change_state(site, self.sid("S-0922-02"), "completed", by="simulation")
            for ref in ("P01", "P04", "P20"):
                self.tap(ref, reader="gate-1-exit-reader")
            for i, ref in enumerate(("P01", "P02", "P04", "P03", "P20")):  # fictitious cards, valid check digits
                set_bank_card(site, self.person_id(ref), _bank_card(i), by="sim-staff")
            if fee_sheet(site, self.sid("S-0922-02"))["complete"]:
                finalize_sheet(site, self.sid("S-0922-02"), by="sim-staff")
            self.phase("finished")
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
            "assisted_checks": {k.split(":", 1)[1]: v for k, v in self.notes.items() if k.startswith("assisted:")},
            "exit_approvals": len(self.site.journal.records(kind="exit.approved")),
            "openings_signed_off": len(self.site.journal.records(kind="opening.signed_off")),
            "collusion_signals": len(self.site.journal.records(kind="opening.collusion_signal")),
            "evaluation_reports": len(self.site.journal.records(kind="evaluation.report")),
            "terminal_sign_ins": self.notes["desk:signed_in"],
            "alarms_open": self.site.store.reader().execute("SELECT COUNT(*) FROM alarms WHERE acknowledged IS NULL").fetchone()[0],
            "bookings_scheduled": self.notes["bookings_scheduled"],
            "fee_sheets": len(self.site.journal.records(kind="fees.sheet")),
            "journal_records": self.site.journal.count(),
            "interrupted": bool(self.notes["interrupted"]),
        }
