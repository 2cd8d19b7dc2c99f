"""The devices service: owns the serial ports, runs the card-reader loops, executes the durable
device commands, keeps the device health table, and journals what the devices did.

Card reads are journaled without personal data: a keyed token, masked ID number and name, the
card type and whether it is valid today. With ``devices.simulate`` every configured device gets
a simulator on a pseudo-terminal and the real drivers talk to it.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.clock import utc_timestamp
from appliance.evaluation.terminal import card_sign_in, terminal_for_reader
from appliance.personal import mask_id_number, mask_name
from appliance.service_detail import detail
from appliance.site import Site
from appliance.siteops.alarms import raise_alarm
from appliance.siteops.checkin import VENUE_TZ, gate_by_id, gate_for_reader, gate_tap
from appliance.siteops.kiosk_checkin import open_prompt, supersede_prompts
from appliance.siteops.noshow import flag_no_shows
from devices.broadcast import g711
from devices.broadcast.announcer import Announcer, Played, Priority
from devices.broadcast.audio import AlsaSink, FileSink, RtpSink, ZoneRouter
from devices.broadcast.tts import EspeakEngine
from devices.gate.driver import GateDriver, GateError, ModbusHub
from devices.gate.sim import GateSimulator
from devices.idcard.reader import CardEvent, CardReaderLoop
from devices.idcard.sim import SamSimulator
from devices.locker.client import LockerBoard, LockerError, SerialHub, make_codec
from devices.locker.sim import LockerBoardSim

log = logging.getLogger(__name__)


class DeviceService:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.cfg = site.config.devices
        self.sims: dict[str, Any] = {}
        self.readers: dict[str, CardReaderLoop] = {}
        self.gates: dict[str, GateDriver] = {}
        self.lockers: dict[str, LockerBoard] = {}
        self._modbus_hubs: dict[str, ModbusHub] = {}
        self._serial_hubs: dict[str, SerialHub] = {}
        self._health: dict[str, tuple[str, str, str]] = {}  # name → (kind, state, detail) last written
        self._alerted_open: set[tuple[str, int]] = set()
        self.announcer: Announcer | None = None
        self.last_tap: Any = None
        self._last_no_show_check = -1e9
        self.last_gate_sent: Any = None
        self._stopping = False
        # (reader, ms from the answer's last byte to the gate request on the port, wall time, ms of
        # that tap's durable commit), for the gate-tap benchmark.
        self.tap_latencies: collections.deque[tuple[str, float, float, float]] = collections.deque(maxlen=10_000)

    # -- building --------------------------------------------------------------------------

    def _port(self, name: str, port: str, make_sim: Any) -> str:
        if not self.cfg.simulate:
            return port
        if port not in self.sims:
            self.sims[port] = make_sim()
        return self.sims[port].url

    def start(self) -> None:
        self.reconcile()
        for reader in self.cfg.idcard:
            url = self._port(reader.name, reader.port, lambda: SamSimulator.on_pty().start())
            loop = CardReaderLoop(url, lambda event, n=reader.name: self._card_read(n, event),
                                  on_error=lambda message, n=reader.name: self._set_health(n, "idcard", None, message),
                                  fingerprint=reader.fingerprint, debounce_s=reader.debounce_s, poll_s=0.2)
            self.readers[reader.name] = loop
            loop.start()
        for gate in self.cfg.gate:
            url = self._port(gate.name, gate.port, lambda g=gate: GateSimulator(
                device_id=g.device_id, open_channel=g.open_channel, pass_input=g.pass_input, alarm_input=g.alarm_input).start())
            hub = self._modbus_hubs.setdefault(url, ModbusHub(url))
            self.gates[gate.name] = GateDriver(hub, device_id=gate.device_id, open_channel=gate.open_channel,
                                               pass_input=gate.pass_input, alarm_input=gate.alarm_input, pulse_ms=gate.pulse_ms)
        for bank in self.cfg.locker:
            codec = make_codec(bank.protocol, bank.locks)
            url = self._port(bank.name, bank.port, lambda b=bank: LockerBoardSim(
                b.protocol, boards=(b.board,), locks=b.locks, closed_bit=b.closed_bit, auto_close_s=20).start())
            hub = self._serial_hubs.setdefault(url, SerialHub(url, baudrate=codec.baudrate))
            self.lockers[bank.name] = LockerBoard(hub, codec, bank.board, closed_bit=bank.closed_bit,
                                                  left_open_s=bank.left_open_s)
        self.announcer = Announcer(EspeakEngine(speed_wpm=self.cfg.broadcast.speed_wpm), self._sink(),
                                   clips_dir=self.cfg.broadcast.clips, on_played=self._played).start()

    def _sink(self) -> Any:
        """Speakers by zone when configured; otherwise the single sink plays every announcement."""
        b = self.cfg.broadcast
        payload = g711.PCMU if b.rtp_payload == "pcmu" else g711.PCMA

        def rtp(target: str) -> RtpSink:
            host, port = target.rsplit(":", 1)
            return RtpSink(host, int(port), payload_type=payload)

        def wav(path: Path) -> FileSink:
            path.parent.mkdir(parents=True, exist_ok=True)
            return FileSink(path)

        if b.speakers:
            sinks = {"rtp": lambda s: rtp(s.target), "alsa": lambda s: AlsaSink(s.target or "default"),
                     "file": lambda s: wav(Path(s.target) if s.target else self.site.data_dir / "broadcast" / f"{s.name}.wav")}
            return ZoneRouter([(s.name, frozenset(s.zones), sinks[s.sink](s)) for s in b.speakers])
        if b.sink == "alsa":
            return AlsaSink(b.alsa_device)
        if b.sink == "rtp":
            return ZoneRouter([(t, frozenset({"all"}), rtp(t)) for t in b.rtp_targets])
        return wav(Path(b.file or self.site.data_dir / "broadcast" / "last.wav"))

    def stop(self) -> None:
        self._stopping = True  # passage watchers still waiting on a closing port stay quiet
        for loop in self.readers.values():
            loop.stop()
        if self.announcer:
            self.announcer.stop()
        for hub in [*self._modbus_hubs.values(), *self._serial_hubs.values()]:
            hub.close()
        for sim in self.sims.values():
            sim.stop()

    # -- reconciling a crash ---------------------------------------------------------------

    def reconcile(self) -> None:
        """A command 'running' when the service died is not retried (opening a gate twice is
        worse than asking staff to reissue it): it fails as interrupted. Stale ones expire."""
        now = self.site.clock.now()
        with self.site.store.transaction() as conn:
            rows = conn.execute("SELECT id, kind, target, state, created FROM device_commands WHERE state IN ('pending', 'running')").fetchall()
            for command_id, kind, target, state, created in rows:
                age = now - datetime.fromisoformat(created.replace("Z", "+00:00"))
                if state == "running":
                    self._finish(conn, command_id, kind, target, "failed", {"error": "interrupted by a restart"})
                elif age > timedelta(seconds=self.cfg.command_expiry_s):
                    self._finish(conn, command_id, kind, target, "expired", {"error": "not started in time"})

    # -- running ---------------------------------------------------------------------------

    def step(self) -> str:
        self.run_pending()
        self._check_health()
        now = self.site.clock.monotonic()
        if now - self._last_no_show_check >= 10:  # the devices service is the one process that does it
            self._last_no_show_check = now
            flag_no_shows(self.site)
        return detail("devices_summary_simulated" if self.cfg.simulate else "devices_summary", readers=len(self.readers),
                      gates=len(self.gates), lockers=len(self.lockers))

    def run_pending(self) -> None:
        while True:
            with self.site.store.transaction() as conn:
                row = conn.execute(
                    "SELECT id, kind, target, args, created FROM device_commands WHERE state = 'pending' ORDER BY id LIMIT 1"
                ).fetchone()
                if row is None:
                    return
                command_id, kind, target, args, created = row
                age = self.site.clock.now() - datetime.fromisoformat(created.replace("Z", "+00:00"))
                if age > timedelta(seconds=self.cfg.command_expiry_s):
                    self._finish(conn, command_id, kind, target, "expired", {"error": "not started in time"})
                    continue
                conn.execute("UPDATE device_commands SET state = 'running', started = ? WHERE id = ?",
                             (utc_timestamp(self.site.clock.now()), command_id))
            try:
                outcome, result = "done", self._execute(command_id, kind, target, json.loads(args))
            except Exception as exc:  # whatever went wrong, the command ends failed and journaled
                outcome, result = "failed", {"error": str(exc) or type(exc).__name__}
            with self.site.store.transaction() as conn:
                self._finish(conn, command_id, kind, target, outcome, result)

    def _finish(self, conn: Any, command_id: int, kind: str, target: str, outcome: str, result: dict[str, Any]) -> None:
        conn.execute("UPDATE device_commands SET state = ?, finished = ?, result = ? WHERE id = ?",
                     (outcome, utc_timestamp(self.site.clock.now()), json.dumps(result, ensure_ascii=False), command_id))
        self.site.journal.append(conn, "device.command", {"command_id": command_id, "kind": kind, "target": target,
                                                          "outcome": outcome, "result": result})

    def _execute(self, command_id: int, kind: str, target: str, args: dict[str, Any]) -> dict[str, Any]:
        if kind == "gate.open":
            gate = self.gates[target]
            opened = gate.open(args.get("pulse_ms"))
            timeout = next(g.passage_timeout_s for g in self.cfg.gate if g.name == target)
            assisted = gate_by_id(self.site, args["gate"]) if args.get("gate") else None
            threading.Thread(target=self._watch_passage, args=(command_id, target, gate, timeout, assisted, args.get("person_id")),
                             daemon=True).start()
            return {"pulse_ms": opened.pulse_ms, "echo_ok": opened.echo_ok, "relay_closed": opened.relay_closed}
        if kind == "locker.open":
            state = self.lockers[target].open(int(args["lock"]))
            return {"lock": state.lock, "door_open": not state.closed}
        if kind == "locker.open_all":
            states = self.lockers[target].open_all()
            return {"opened": sorted(n for n, s in states.items() if not s.closed)}
        if kind == "announce":
            assert self.announcer is not None
            priority = Priority[str(args.get("priority", "information")).upper()]
            announcement = self.announcer.announce(args.get("text"), clip=args.get("clip"), priority=priority,
                                                   id=f"cmd{command_id}", zones=tuple(z for z in target.split(",") if z))
            return {"queued": announcement}
        raise ValueError(f"unknown command kind {kind}")

    def _watch_passage(self, command_id: int, gate_name: str, gate: GateDriver, timeout: float,
                       decided_at: Any = None, person_id: int | None = None) -> None:
        """A gate opened by command; when the command carried a staff-assisted decision
        (``decided_at``, ``person_id``), presence stands only if someone walked through."""
        try:
            passed = gate.wait_for_passage(timeout)
        except GateError as exc:
            if not self._stopping:
                self.site.journal.record("gate.passage", {"command_id": command_id, "gate": gate_name, "error": str(exc)})
            return
        except Exception:  # the service stopped under the watcher (pymodbus fails oddly on a closed port)
            log.debug("passage watch on %s ended", gate_name, exc_info=True)
            return
        if self._stopping:
            return
        if not passed and decided_at is not None:
            self._undo_presence(decided_at, person_id)
        self.site.journal.record("gate.passage", {"command_id": command_id, "gate": gate_name, "passed": passed})

    def _watch_tap_passage(self, gate: Any, person_id: int | None, driver: GateDriver, timeout: float) -> None:
        """Presence was recorded with the decision; it only stands if someone walked through."""
        try:
            passed = driver.wait_for_passage(timeout)
        except Exception:  # a failing relay module or a stopping service: keep the record as it is
            log.debug("passage watch at %s ended", gate.id, exc_info=True)
            return
        if self._stopping:
            return  # the port closed under the watch: nothing to conclude
        if not passed:
            self._undo_presence(gate, person_id)
        self.site.journal.record("gate.passage", {"gate": gate.id, "person_id": person_id, "passed": passed})

    def _undo_presence(self, gate: Any, person_id: int | None) -> None:
        if person_id is None:
            return
        with self.site.store.transaction() as conn:
            if gate.direction == "in":
                conn.execute("DELETE FROM presence WHERE person_id = ? AND zone = ?", (person_id, gate.zone))

    def _played(self, played: Played) -> None:
        self.site.journal.record("announcement.played", {
            "id": played.id, "priority": played.priority, "text": played.text, "clip": played.clip,
            "audio_sha256": played.audio_sha256, "duration_ms": int(played.duration_s * 1000), "error": played.error,
            "zones": list(played.zones), "speakers": list(played.speakers)})

    def _card_read(self, reader: str, event: CardEvent) -> None:
        """A card on a gate's reader is a gate tap: decide (journaled first), then open. A card
        on an evaluation terminal's desk reader signs the member in at that terminal. A card on
        any other reader is journaled as read."""
        card = event.card
        today = self.site.clock.now().astimezone(VENUE_TZ).date()
        gate = gate_for_reader(self.site, reader)
        if gate is not None:
            tapped: list[int | None] = []

            def prompt_first_entry(conn: Any, decision: Any, person_id: int | None) -> None:
                tapped.append(person_id)
                # An expert whose only missing step is the commitment: the kiosk takes over.
                if decision.reason == "commitment_missing" and person_id is not None:
                    open_prompt(self.site, conn, reader=reader, gate=gate.id, person_id=person_id, session=decision.session)
                else:
                    supersede_prompts(conn, reader, person_id)

            decision = gate_tap(self.site, gate, id_number=card.id_number, card_kind=card.kind,
                                card_valid=card.valid_on(today), then=prompt_first_entry)
            self.last_tap = (event.last_byte_at, decision)
            if decision.allow and gate.gate_device in self.gates:
                person_id = tapped[0] if tapped else None
                driver = self.gates[gate.gate_device]
                try:
                    opened = driver.open()
                    self.last_gate_sent = opened
                    self.tap_latencies.append((reader, (opened.sent_at - event.last_byte_at) * 1000, time.time(),
                                               (self.site.store.last_commit_s() or 0.0) * 1000))
                except GateError as exc:
                    self._undo_presence(gate, person_id)
                    with self.site.store.transaction() as conn:
                        record = self.site.journal.append(conn, "gate.fault", {"gate": gate.id, "person_id": person_id, "error": str(exc)})
                        raise_alarm(self.site, conn, "gate_fault", seq=record.seq, session=decision.session,
                                    person_id=person_id, detail={"gate": gate.id})
                    return
                timeout = next((g.passage_timeout_s for g in self.cfg.gate if g.name == gate.gate_device), 10.0)
                threading.Thread(target=self._watch_tap_passage, args=(gate, person_id, driver, timeout), daemon=True).start()
            return
        terminal = terminal_for_reader(self.site, reader)
        if terminal is not None:
            card_sign_in(self.site, terminal, id_number=card.id_number, card_valid=card.valid_on(today))
            return
        self.site.journal.record("card.read", {
            "reader": reader, "card_kind": card.kind,
            "id_token": self.site.personal.token("person.id_number", card.id_number.upper()),
            "id_masked": mask_id_number(card.id_number), "name_masked": mask_name(card.name),
            "valid_today": card.valid_on(today),
            "read_us": int(event.read_ms * 1000)})

    # -- health ----------------------------------------------------------------------------

    def _check_health(self) -> None:
        for name, loop in self.readers.items():
            self._set_health(name, "idcard", loop.health.state, loop.health.last_error or "")
        for name, bank in self.lockers.items():
            try:
                late = bank.doors_left_open()
                self._set_health(name, "locker", "connected", "")
            except LockerError as exc:
                self._set_health(name, "locker", "disconnected", str(exc))
                continue
            for lock in late:
                if (name, lock) not in self._alerted_open:
                    self._alerted_open.add((name, lock))
                    with self.site.store.transaction() as conn:
                        record = self.site.journal.append(conn, "locker.door_left_open", {"bank": name, "lock": lock})
                        raise_alarm(self.site, conn, "locker_door_left_open", seq=record.seq,
                                    detail={"bank": name, "lock": lock})
            self._alerted_open -= {(name, n) for (b, n) in self._alerted_open if b == name and n not in late}

    def _set_health(self, name: str, kind: str, state: str | None, detail: str) -> None:
        state = state or self._health.get(name, (kind, "connected", ""))[1]
        if self._health.get(name) == (kind, state, detail):
            return
        previous = self._health.get(name)
        self._health[name] = (kind, state, detail)
        with self.site.store.transaction() as conn:
            conn.execute(
                """INSERT INTO device_health (name, kind, state, detail, updated) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET state = excluded.state, detail = excluded.detail, updated = excluded.updated""",
                (name, kind, state, detail[:500], utc_timestamp(self.site.clock.now())))
            if previous is None or previous[1] != state:
                self.site.journal.append(conn, "device.state", {"device": name, "kind": kind, "state": state, "detail": detail[:200]})
