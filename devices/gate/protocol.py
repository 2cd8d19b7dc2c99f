"""The relay module's Modbus RTU map (Waveshare "Modbus RTU Relay" V2/V3 and compatible boards,
default 9600 8N1, device id 1):

* relay N (0-based) is coil N: FC01 reads them, FC05 with 0xFF00/0x0000 switches one;
* **flash on**: FC05 to coil address ``0x0200 + N`` with the value = pulse length in units of
  100 ms (1–65535). The module closes the relay and opens it again by itself after the pulse,
  so the gate's "open" input is released even if the appliance dies mid-command. The module
  answers with an echo of the request. (``0x0400 + N`` is "flash off".)
* inputs N (the boards with digital inputs) are discrete inputs N: FC02 reads them; the gate's
  "passage completed" and "alarm" outputs are wired to two of them.

Example: flash relay 1 (N = 0) for 0.7 s at device 1 is ``01 05 02 00 00 07 8D B0``.
Source: Waveshare wiki "Modbus RTU Relay", protocol V3 (flash on/off commands).
"""

from __future__ import annotations

import struct

from pymodbus.pdu.bit_message import WriteSingleCoilRequest

FLASH_ON = 0x0200
FLASH_OFF = 0x0400
PULSE_UNIT_MS = 100


class GateProtocolError(ValueError):
    """A pulse or channel the relay module cannot do."""


def pulse_units(pulse_ms: int) -> int:
    units = round(pulse_ms / PULSE_UNIT_MS)
    if not 1 <= units <= 0xFFFF:
        raise GateProtocolError(f"pulse of {pulse_ms} ms is outside 100 ms … 6553.5 s")
    return units


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def flash_on_frame(device_id: int, channel: int, pulse_ms: int) -> bytes:
    """The RTU frame of a flash-on command (for documentation, tests and diagnostics)."""
    if not 0 <= channel <= 0xFF:
        raise GateProtocolError(f"channel {channel} out of range")
    pdu = struct.pack(">BBHH", device_id, 5, FLASH_ON + channel, pulse_units(pulse_ms))
    return pdu + struct.pack("<H", crc16_modbus(pdu))


class FlashCoilRequest(WriteSingleCoilRequest):
    """FC05 carrying a raw 16-bit value (pymodbus's own request only sends 0xFF00/0x0000).
    Used by the driver to send a flash command and by the simulator to receive one."""

    function_code = 5
    rtu_frame_size = 8
    raw_value = 0

    def decode(self, data: bytes) -> None:
        self.address, self.raw_value = struct.unpack(">HH", data[:4])
        self.bits = [bool(self.raw_value)]

    def encode(self) -> bytes:
        return struct.pack(">HH", self.address, self.raw_value)
