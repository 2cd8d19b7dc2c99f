"""The real reader loop and client, through pyserial, against the simulator on a pseudo-terminal."""

import logging
import time
from dataclasses import replace

import pytest

from devices.idcard.client import ReaderError, SamClient
from devices.idcard.reader import CardReaderLoop
from devices.idcard.sim import SamSimulator, fictitious_card
from devices.transport import open_port


def wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def sim(tmp_path):
    simulator = SamSimulator.on_pty(tmp_path / "ttyIDCARD").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def reader(sim):
    events, errors = [], []
    loop = CardReaderLoop(sim.url, events.append, on_error=errors.append, poll_s=0.02, debounce_s=0.5)
    loop.events, loop.errors = events, errors
    loop.start()
    yield loop
    loop.stop()


def test_client_commands(sim):
    port = open_port(sim.url, baudrate=115200, timeout=0.02)
    try:
        client = SamClient(port)
        assert client.sam_id() == "05.01-20101010-0000000001-1234567890"
        assert client.find_card() is False
        sim.place(fictitious_card(2))
        assert client.find_card() is True
        client.select_card()
        data = client.read_card(fingerprint=True)
        assert len(data.text) == 256 and len(data.photo) == 1024 and len(data.fingerprint) == 1024
        assert client.read_appended_address() is None
        sim.faults.sam_failure = True
        with pytest.raises(ReaderError, match="SAM failed its self-test") as info:
            client.select_card()
        assert info.value.status == 0x60
    finally:
        port.close()


def test_card_is_read_decoded_and_debounced(sim, reader):
    card = fictitious_card(7)
    sim.place(card)
    assert wait_for(lambda: reader.events)
    event = reader.events[0]
    assert event.card == card and event.card.name == "测试辛" and len(event.photo_wlt) == 1024
    assert 0 < event.read_ms < 500
    time.sleep(0.3)
    assert len(reader.events) == 1  # the card lies on the reader: one event, not one per poll
    sim.remove()
    time.sleep(0.6)
    sim.place(card)
    assert wait_for(lambda: len(reader.events) == 2)  # tapped again after the debounce time
    sim.place(fictitious_card(8))
    assert wait_for(lambda: len(reader.events) == 3)  # a different card at once


@pytest.mark.parametrize("fault", ["garbage", "bad_checksum", "byte_by_byte"])
def test_bad_bytes_give_clear_errors_and_the_next_card_still_reads(sim, reader, fault):
    if fault == "garbage":
        sim.faults.garbage = b"\x13\x37\xaa\xaa\x00junk"
    elif fault == "bad_checksum":
        sim.faults.bad_checksum = True
    else:
        sim.faults.byte_by_byte = True
    sim.place(fictitious_card(1))
    assert wait_for(lambda: reader.events)  # read in the end, despite the fault
    if fault == "bad_checksum":
        assert any("checksum" in e for e in reader.errors)
    assert reader.health.state == "connected"


def test_silent_reader_times_out_with_a_clear_error(sim, reader):
    sim.faults.silent = True
    sim.place(fictitious_card(1))
    assert wait_for(lambda: reader.errors, timeout=4)
    assert "no answer from the reader" in reader.errors[0]
    sim.faults.silent = False
    assert wait_for(lambda: reader.events, timeout=4)


def test_card_with_a_wrong_check_character_is_refused(sim, reader):
    card = fictitious_card(3)
    sim.place(replace(card, id_number=card.id_number[:17] + ("0" if card.id_number[17] != "0" else "1")))
    assert wait_for(lambda: reader.errors)
    assert "check character" in reader.errors[0] and reader.events == []


def test_unplugged_reader_recovers_within_2s_logging_once_each(sim, reader, caplog):
    caplog.set_level(logging.INFO, logger="devices.idcard.reader")
    sim.port.unplug()
    assert wait_for(lambda: reader.health.state == "disconnected")
    time.sleep(1.0)  # several reconnect attempts while unplugged
    sim.port.replug()
    replugged = time.monotonic()
    assert wait_for(lambda: reader.health.state == "connected", timeout=2.0)
    assert time.monotonic() - replugged < 2.0
    sim.place(fictitious_card(4))
    assert wait_for(lambda: reader.events)
    faults = [r for r in caplog.records if r.levelno == logging.WARNING]
    recoveries = [r for r in caplog.records if "is back" in r.getMessage()]
    assert len(faults) == 1 and len(recoveries) == 1
    assert reader.health.faults == 1
