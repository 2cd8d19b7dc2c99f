"""The gate driver (pymodbus client) against a real pymodbus RTU server on a pseudo-terminal."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.gate.driver import GateDriver, GateError, ModbusHub
from devices.gate.protocol import GateProtocolError, crc16_modbus, flash_on_frame
from devices.gate.sim import GateSimulator


@pytest.mark.parametrize("device_id, channel, pulse_ms, frame", [
    (1, 0, 700, "01 05 02 00 00 07 8D B0"),
    (1, 0, 1000, "01 05 02 00 00 0A 4C 75"),
    (1, 1, 1000, "01 05 02 01 00 0A 1D B5"),
])
def test_flash_frames(device_id, channel, pulse_ms, frame):
    assert flash_on_frame(device_id, channel, pulse_ms) == bytes.fromhex(frame)


def test_crc_of_published_frames():
    # FF 05 00 00 FF 00 | 99 E4 and FF 02 00 00 00 08 | 6C 12 (CRC low byte first)
    assert crc16_modbus(bytes.fromhex("FF 05 00 00 FF 00")).to_bytes(2, "little") == bytes.fromhex("99 E4")
    assert crc16_modbus(bytes.fromhex("FF 02 00 00 00 08")).to_bytes(2, "little") == bytes.fromhex("6C 12")


@given(st.integers(-10, 70_000_00))
def test_pulse_range(pulse_ms):
    try:
        frame = flash_on_frame(1, 0, pulse_ms)
    except GateProtocolError:
        assert round(pulse_ms / 100) < 1 or round(pulse_ms / 100) > 0xFFFF
    else:
        assert crc16_modbus(frame[:-2]).to_bytes(2, "little") == frame[-2:]


@pytest.fixture
def sim():
    simulator = GateSimulator(walk_time_s=0.2).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def gate(sim):
    hub = ModbusHub(sim.url)
    yield GateDriver(hub, pulse_ms=500)
    hub.close()


def test_gate_opens_with_a_timed_pulse_and_reports_the_passage(sim, gate):
    opened = gate.open()
    assert opened.echo_ok and opened.relay_closed and opened.pulse_ms == 500
    assert sim.pulses == [(0, 0.5)]
    assert gate.wait_for_passage(2.0)
    time.sleep(0.5)
    assert gate.relay_closed() is False  # the module released the relay by itself


def test_nobody_walks_through(sim, gate):
    sim.someone_walks = False
    gate.open()
    assert gate.wait_for_passage(0.8) is False


def test_alarm_input(sim, gate):
    assert gate.inputs() == (False, False)
    sim.set_alarm(True)
    assert gate.inputs() == (False, True)


def test_wrong_device_id_times_out_with_a_clear_error(sim):
    hub = ModbusHub(sim.url, timeout=0.2)
    try:
        with pytest.raises(GateError, match="no answer"):
            GateDriver(hub, device_id=7).open()
    finally:
        hub.close()


def test_module_gone(sim, gate):
    sim.stop()
    with pytest.raises(GateError):
        gate.open()
