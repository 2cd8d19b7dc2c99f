"""Installer diagnostics: talk to one device directly on its port (the devices service must not
be running on that port), print JSON, mask personal data. ``appliance device sim KIND`` starts a
simulator and prints its port URL, so the same commands can be tried without hardware."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from appliance.personal import mask_id_number, mask_name
from appliance.signals import StopSignals


def emit(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(2)


@click.group()
def device() -> None:
    """Installer diagnostics for one device (JSON output, personal data masked)."""


@device.group()
def idcard() -> None:
    """ID card readers."""


@idcard.command("read")
@click.option("--port", required=True, help="Serial port URL, e.g. /dev/ttyUSB0.")
@click.option("--timeout", default=20.0, show_default=True, help="Seconds to wait for a card.")
@click.option("--fingerprint", is_flag=True, help="Also read the fingerprint data.")
def idcard_read(port: str, timeout: float, fingerprint: bool) -> None:
    """Wait for a card, read it, print what it says (masked) and the reader's SAM id."""
    from devices.idcard.client import ReaderError, SamClient
    from devices.idcard.reader import CardReaderLoop
    from devices.transport import open_port

    try:
        probe = open_port(port, baudrate=115200, timeout=0.02)
        try:
            sam_id = SamClient(probe).sam_id()
        finally:
            probe.close()
    except (OSError, ReaderError) as exc:
        fail(f"no SAM reader answering on {port}: {exc}")
    events: list[Any] = []
    errors: list[str] = []
    loop = CardReaderLoop(port, events.append, on_error=errors.append, poll_s=0.1, fingerprint=fingerprint)
    loop.start()
    deadline = time.monotonic() + timeout
    while not events and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.stop()
    if not events:
        fail(f"no card read within {timeout:g} s" + (f" (last error: {errors[-1]})" if errors else ""))
    card = events[0].card
    emit({"ok": True, "sam_id": sam_id, "card_kind": card.kind, "name": mask_name(card.name),
          "sex": card.sex_name, "nation": card.nation_name, "birth": card.birth[:4] + "****",
          "id_number": mask_id_number(card.id_number), "id_check_ok": card.id_number_checks,
          "authority": card.authority, "valid_from": card.valid_from, "valid_to": card.valid_to,
          "photo_wlt_bytes": len(events[0].photo_wlt), "read_ms": round(events[0].read_ms, 1)})


@device.group()
def gate() -> None:
    """Gates (Modbus relay modules)."""


@gate.command("open")
@click.option("--port", required=True, help="Serial port URL of the RS-485 bus.")
@click.option("--unit", default=1, show_default=True, help="Modbus device id of the relay module.")
@click.option("--coil", default=0, show_default=True, help="Relay (0-based) wired to the gate's open input.")
@click.option("--pulse-ms", default=1000, show_default=True)
@click.option("--pass-input", default=0, show_default=True)
@click.option("--alarm-input", default=1, show_default=True)
@click.option("--wait-passage", default=0.0, help="Seconds to wait for someone to walk through.")
def gate_open(port: str, unit: int, coil: int, pulse_ms: int, pass_input: int, alarm_input: int, wait_passage: float) -> None:
    """Pulse the open relay (module-timed), read it back, optionally wait for a passage."""
    from devices.gate.driver import GateDriver, GateError, ModbusHub

    hub = ModbusHub(port)
    try:
        driver = GateDriver(hub, device_id=unit, open_channel=coil, pass_input=pass_input, alarm_input=alarm_input,
                            pulse_ms=pulse_ms)
        opened = driver.open()
        passed = driver.wait_for_passage(wait_passage) if wait_passage else None
        passage, alarm = driver.inputs()
    except GateError as exc:
        fail(str(exc))
    finally:
        hub.close()
    emit({"ok": True, "pulse_ms": opened.pulse_ms, "echo_ok": opened.echo_ok, "relay_closed": opened.relay_closed,
          "passed": passed, "alarm": alarm})


def _locker_board(port: str, protocol: str, board: int, locks: int, closed_bit: bool) -> Any:
    from devices.locker.client import LockerBoard, SerialHub, make_codec

    codec = make_codec(protocol, locks)
    return LockerBoard(SerialHub(port, baudrate=codec.baudrate), codec, board, closed_bit=closed_bit)


locker_options = [
    click.option("--port", required=True, help="Serial port URL of the board's bus."),
    click.option("--protocol", type=click.Choice(["kerong", "8a"]), required=True),
    click.option("--board", type=int, required=True, help="Board address."),
    click.option("--locks", default=24, show_default=True, help="Locks on the board (8A/80)."),
    click.option("--closed-bit/--closed-when-clear", default=True, help="Feedback level of a closed door."),
]


def with_locker_options(fn: Any) -> Any:
    for option in reversed(locker_options):
        fn = option(fn)
    return fn


@device.group()
def locker() -> None:
    """Locker boards."""


@locker.command("open")
@with_locker_options
@click.option("--lock", type=int, required=True)
def locker_open(port: str, protocol: str, board: int, locks: int, closed_bit: bool, lock: int) -> None:
    """Open one lock and read its door back."""
    from devices.locker.client import LockerError

    bank = _locker_board(port, protocol, board, locks, closed_bit)
    try:
        state = bank.open(lock)
    except LockerError as exc:
        fail(str(exc))
    finally:
        bank.hub.close()
    emit({"ok": True, "lock": lock, "door_open": not state.closed})


@locker.command("status")
@with_locker_options
@click.option("--lock", type=int, default=None, help="One lock (default: all).")
def locker_status(port: str, protocol: str, board: int, locks: int, closed_bit: bool, lock: int | None) -> None:
    """Door state of one lock or all."""
    from devices.locker.client import LockerError

    bank = _locker_board(port, protocol, board, locks, closed_bit)
    try:
        states = {lock: bank.status(lock)} if lock else bank.status_all()
    except LockerError as exc:
        fail(str(exc))
    finally:
        bank.hub.close()
    emit({"ok": True, "locks": {str(n): {"closed": s.closed, "item_present": s.item_present} for n, s in states.items()}})


@device.command("announce")
@click.argument("text")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write a WAV file.")
@click.option("--rtp", default=None, help="host:port of an IP speaker (RTP G.711 µ-law).")
@click.option("--alsa", default=None, help="ALSA device to play on.")
@click.option("--no-chime", is_flag=True)
def announce(text: str, out: Path | None, rtp: str | None, alsa: str | None, no_chime: bool) -> None:
    """Speak TEXT (Mandarin) to a file, an IP speaker or an ALSA device."""
    from devices.broadcast.announcer import Announcer, Priority
    from devices.broadcast.audio import AlsaSink, FileSink, RtpSink
    from devices.broadcast.tts import EspeakEngine

    if sum(x is not None for x in (out, rtp, alsa)) != 1:
        fail("give exactly one of --out, --rtp, --alsa")
    sink: Any = FileSink(out) if out else RtpSink(*rtp.rsplit(":", 1)[:1], int(rtp.rsplit(":", 1)[1])) if rtp else AlsaSink(alsa or "default")
    played: list[Any] = []
    announcer = Announcer(EspeakEngine(), sink, on_played=played.append).start()
    announcer.announce(text, priority=Priority.CALL, with_chime=not no_chime)
    deadline = time.monotonic() + 60
    while not played and time.monotonic() < deadline:
        time.sleep(0.05)
    announcer.stop()
    if not played or played[0].error:
        fail(played[0].error if played else "announcement timed out")
    emit({"ok": True, "duration_s": round(played[0].duration_s, 2), "audio_sha256": played[0].audio_sha256,
          "out": str(out) if out else None})


@device.command("sim")
@click.argument("kind", type=click.Choice(["idcard", "gate", "locker-kerong", "locker-8a"]))
@click.option("--link", type=click.Path(path_type=Path), default=None, help="Also expose the port at this path (symlink).")
@click.option("--card-every", default=0.0, help="idcard: place a new fictitious card every N seconds (0: one card).")
@click.option("--board", type=int, default=None, help="locker: board address (default 0 Kerong, 1 8A).")
@click.option("--walk-time", default=1.0, help="gate: seconds from open pulse to passage.")
@click.option("--nobody-walks", is_flag=True, help="gate: never report a passage.")
def sim(kind: str, link: Path | None, card_every: float, board: int | None, walk_time: float, nobody_walks: bool) -> None:
    """Start a simulator; prints its port URL as JSON; Ctrl-C stops it."""
    from devices.gate.sim import GateSimulator
    from devices.idcard.sim import SamSimulator, fictitious_card
    from devices.locker.sim import LockerBoardSim

    simulator: Any
    if kind == "idcard":
        simulator = SamSimulator.on_pty(link).start()
        simulator.place(fictitious_card(0))
    elif kind == "gate":
        simulator = GateSimulator(walk_time_s=walk_time, someone_walks=not nobody_walks).start()
    else:
        protocol = kind.split("-", 1)[1]
        simulator = LockerBoardSim(protocol, boards=(board if board is not None else (0 if protocol == "kerong" else 1),)).start()
    signals = StopSignals()
    emit({"ok": True, "kind": kind, "port": simulator.url})
    index = 0
    while not signals.wait(card_every or 3600):
        if kind == "idcard" and card_every:
            index += 1
            simulator.place(fictitious_card(index))
    simulator.stop()
