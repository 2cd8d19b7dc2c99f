"""A simulated gate: a real pymodbus Modbus RTU server (the relay module) on one end of a
null modem, and a turnstile that reports a passage some time after its open input was pulsed —
or never, when nobody walks through. The real driver opens the other end."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.gate.protocol import FLASH_OFF, FLASH_ON, PULSE_UNIT_MS, FlashCoilRequest
from devices.transport import NullModem

CHANNELS = 8


class GateSimulator:
    def __init__(self, *, device_id: int = 1, open_channel: int = 0, pass_input: int = 0, alarm_input: int = 1,
                 walk_time_s: float = 0.3, someone_walks: bool = True, pass_signal_s: float = 0.3) -> None:
        self.device_id = device_id
        self.open_channel = open_channel
        self.pass_input = pass_input
        self.alarm_input = alarm_input
        self.walk_time_s = walk_time_s
        self.someone_walks = someone_walks
        self.pass_signal_s = pass_signal_s
        self.inputs = [False] * CHANNELS
        self.pulses: list[tuple[int, float]] = []  # (channel, seconds)
        self.passages = 0
        self._generation: dict[int, int] = {}
        self.modem = NullModem()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="gate-sim", daemon=True)

    @property
    def url(self) -> str:
        return self.modem.b.tty_name

    def start(self) -> "GateSimulator":
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("gate simulator did not start")
        deadline = time.monotonic() + 5
        while getattr(self._server, "transport", None) is None:  # the serial port is open
            if time.monotonic() > deadline:
                raise RuntimeError("gate simulator did not open its port")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(5)
        self._thread.join(5)
        self.modem.close()

    def set_alarm(self, on: bool) -> None:
        self.inputs[self.alarm_input] = on

    def _serve(self) -> None:
        simulator = self

        async def action(fc: int, start: int, addr: int, count: int, registers: list[int], set_values: Any) -> None:
            if fc == 2:  # discrete inputs: 16 bits per register, bit 0 = input 0
                registers[0 - start] = sum(1 << i for i, v in enumerate(simulator.inputs) if v)

        class Flash(FlashCoilRequest):
            async def datastore_update(self, context: Any, device_id: int) -> Any:
                base, channel = self.address & 0xFF00, self.address & 0x00FF
                if base in (FLASH_ON, FLASH_OFF) and channel < CHANNELS:
                    seconds = self.raw_value * PULSE_UNIT_MS / 1000
                    on = base == FLASH_ON
                    simulator.pulses.append((channel, seconds))
                    generation = simulator._generation[channel] = simulator._generation.get(channel, 0) + 1
                    await context.async_setValues(device_id, 5, channel, [on])
                    loop = asyncio.get_running_loop()

                    async def release() -> None:
                        await asyncio.sleep(seconds)
                        if simulator._generation[channel] == generation:  # a newer pulse restarts the timer
                            await context.async_setValues(device_id, 5, channel, [not on])

                    loop.create_task(release())
                    if on and channel == simulator.open_channel and simulator.someone_walks:
                        loop.create_task(simulator._walk_through())
                    return self  # the module echoes the request
                return await super().datastore_update(context, device_id)

        async def main() -> None:
            device = SimDevice(id=self.device_id, action=action, simdata=(
                [SimData(0, count=CHANNELS, values=False, datatype=DataType.BITS)],
                [SimData(0, count=CHANNELS, values=False, datatype=DataType.BITS)],
                [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)],
            ))
            self._server = ModbusSerialServer(
                device, framer=FramerType.RTU, port=self.modem.a.tty_name, baudrate=9600, bytesize=8, parity="N",
                stopbits=1, custom_pdu=[Flash],
                # A module stays silent for other device ids on the bus.
                trace_pdu=lambda sending, pdu: pdu if sending or pdu.dev_id == self.device_id else None,
            )
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            await self._server.serve_forever()

        asyncio.run(main())

    async def _walk_through(self) -> None:
        await asyncio.sleep(self.walk_time_s)
        self.inputs[self.pass_input] = True
        self.passages += 1
        await asyncio.sleep(self.pass_signal_s)
        self.inputs[self.pass_input] = False
