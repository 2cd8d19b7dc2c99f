"""The gate driver: pulse the open relay with the module's own timer, read it back, watch the
passage and alarm inputs. One `ModbusHub` per physical bus serialises access to it."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusException

from devices.gate.protocol import FLASH_ON, FlashCoilRequest, pulse_units

log = logging.getLogger(__name__)


class GateError(RuntimeError):
    """The relay module did not answer, answered with an exception, or did not do it."""


class ModbusHub:
    """One RS-485 bus: one client, one request at a time, a quiet gap between frames."""

    def __init__(self, url: str, *, baudrate: int = 9600, timeout: float = 0.3, inter_frame_s: float = 0.005) -> None:
        self.url = url
        self.inter_frame_s = inter_frame_s
        self.client = ModbusSerialClient(url, framer=FramerType.RTU, baudrate=baudrate, bytesize=8, parity="N",
                                         stopbits=1, timeout=timeout, retries=0)
        self._lock = threading.Lock()
        self._last = 0.0

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            gap = self.inter_frame_s - (time.monotonic() - self._last)
            if gap > 0:
                time.sleep(gap)
            try:
                if not self.client.connected and not self.client.connect():
                    raise GateError(f"cannot open {self.url}")
                result = fn(*args, **kwargs)
            except ModbusException as exc:
                self.client.close()
                raise GateError(f"no answer from the relay module on {self.url}: {exc}") from exc
            finally:
                self._last = time.monotonic()
            if result.isError():
                raise GateError(f"relay module refused the request: {result}")
            return result

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class GateOpened:
    pulse_ms: int
    echo_ok: bool
    relay_closed: bool  # read back right after the command: the pulse is running
    call_to_sent_ms: float  # call → request written to the port
    sent_at: float  # monotonic time the request was handed to the port


class GateDriver:
    def __init__(self, hub: ModbusHub, *, device_id: int = 1, open_channel: int = 0, pass_input: int = 0,
                 alarm_input: int = 1, pulse_ms: int = 1000) -> None:
        self.hub = hub
        self.device_id = device_id
        self.open_channel = open_channel
        self.pass_input = pass_input
        self.alarm_input = alarm_input
        self.pulse_ms = pulse_ms

    def open(self, pulse_ms: int | None = None) -> GateOpened:
        pulse = pulse_ms or self.pulse_ms
        request = FlashCoilRequest(address=FLASH_ON + self.open_channel, dev_id=self.device_id)
        request.raw_value = pulse_units(pulse)
        started = time.monotonic()
        sent: list[float] = []

        def send() -> Any:
            sent.append(time.monotonic())
            return self.hub.client.execute(False, request)

        answer = self.hub.call(send)
        echo_ok = getattr(answer, "address", None) == request.address
        coils = self.hub.call(self.hub.client.read_coils, self.open_channel, count=1, device_id=self.device_id)
        opened = GateOpened(pulse, echo_ok, bool(coils.bits[0]), (sent[0] - started) * 1000, sent[0])
        if not (echo_ok and opened.relay_closed):
            raise GateError(f"gate did not open (echo {'ok' if echo_ok else 'wrong'}, relay read back open)")
        return opened

    def inputs(self) -> tuple[bool, bool]:
        """(passage completed, alarm)."""
        count = max(self.pass_input, self.alarm_input) + 1
        result = self.hub.call(self.hub.client.read_discrete_inputs, 0, count=count, device_id=self.device_id)
        return bool(result.bits[self.pass_input]), bool(result.bits[self.alarm_input])

    def wait_for_passage(self, timeout_s: float, poll_s: float = 0.05) -> bool:
        """True once the turnstile reports a completed passage; False if nobody walked through."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.inputs()[0]:
                return True
            time.sleep(poll_s)
        return False

    def relay_closed(self) -> bool:
        coils = self.hub.call(self.hub.client.read_coils, self.open_channel, count=1, device_id=self.device_id)
        return bool(coils.bits[0])
