"""Lockers over a serial bus: open one (and read it back), open all (emergency, staff only —
the caller's rule), query one and all, detect doors left open."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import serial

from devices.locker.protocol import BoardState, EightA, Kerong, LockerProtocolError
from devices.transport import open_port


class LockerError(RuntimeError):
    """The board did not answer, answered wrongly, or the lock did not open."""


class SerialHub:
    """One RS-485 bus: one port, one request at a time, a quiet gap between frames."""

    def __init__(self, url: str, *, baudrate: int, timeout: float = 0.5, inter_frame_s: float = 0.02) -> None:
        self.url, self.baudrate, self.timeout, self.inter_frame_s = url, baudrate, timeout, inter_frame_s
        self._port: serial.SerialBase | None = None
        self._lock = threading.Lock()
        self._last = 0.0

    def exchange(self, request: bytes, answer_len: int | None, *, header: int | None = None) -> bytes:
        with self._lock:
            gap = self.inter_frame_s - (time.monotonic() - self._last)
            if gap > 0:
                time.sleep(gap)
            try:
                if self._port is None:
                    self._port = open_port(self.url, baudrate=self.baudrate, timeout=0.02)
                port = self._port
                port.reset_input_buffer()
                port.write(request)
                if answer_len is None:
                    return b""
                data = bytearray()
                deadline = time.monotonic() + self.timeout
                while time.monotonic() < deadline:
                    data += port.read(answer_len)
                    if header is not None and data and data[0] != header:
                        start = data.find(bytes([header]))  # boards may send stray bytes first
                        del data[: start if start >= 0 else len(data)]
                    if len(data) >= answer_len:
                        return bytes(data[:answer_len])
                raise LockerError(f"no complete answer from the board on {self.url} ({len(data)} of {answer_len} bytes)")
            except (serial.SerialException, OSError) as exc:
                self.close()
                raise LockerError(f"locker bus {self.url} failed: {exc}") from exc
            finally:
                self._last = time.monotonic()

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                pass
            self._port = None


@dataclass(frozen=True)
class LockState:
    lock: int
    closed: bool
    item_present: bool | None = None


class LockerBoard:
    """One board on a hub. ``closed_bit``: the feedback level that means "door closed"."""

    def __init__(self, hub: SerialHub, codec: Any, board: int, *, closed_bit: bool = True,
                 settle_s: float = 0.3, left_open_s: float = 120.0) -> None:
        self.hub, self.codec, self.board = hub, codec, board
        self.closed_bit = closed_bit
        self.settle_s = settle_s
        self.left_open_s = left_open_s
        self._opened_at: dict[int, float] = {}

    def _ask(self, request: bytes, lock: int | None = None) -> BoardState:
        answer = self.hub.exchange(request, self.codec.answer_length(request), header=request[0])
        try:
            if isinstance(self.codec, EightA):
                return self.codec.decode_state(answer, self.board, lock)
            return self.codec.decode_state(answer, self.board)
        except LockerProtocolError as exc:
            raise LockerError(f"board {self.board}: {exc}") from exc

    def _states(self, state: BoardState) -> dict[int, LockState]:
        return {n: LockState(n, bit == self.closed_bit, state.sensors.get(n)) for n, bit in state.feedback.items()}

    def status(self, lock: int) -> LockState:
        if isinstance(self.codec, Kerong):
            return self._states(self._ask(self.codec.query(self.board)))[lock]
        return self._states(self._ask(self.codec.query(self.board, lock), lock))[lock]

    def status_all(self) -> dict[int, LockState]:
        return self._states(self._ask(self.codec.query(self.board)))

    def open(self, lock: int) -> LockState:
        """Pulse the lock, then read it back; raise if the door did not open."""
        request = self.codec.open(self.board, lock)
        if isinstance(self.codec, EightA):
            self._ask(request, lock)  # the board answers with the state after the pulse
        else:
            self.hub.exchange(request, None)  # Kerong boards send no reliable answer
        time.sleep(self.settle_s)
        state = self.status(lock)
        if state.closed:
            raise LockerError(f"lock {lock} on board {self.board} did not open (feedback still closed)")
        self._opened_at[lock] = time.monotonic()
        return state

    def open_all(self) -> dict[int, LockState]:
        request = self.codec.open_all(self.board)
        self.hub.exchange(request, None)
        time.sleep(self.settle_s)
        states = self.status_all()
        now = time.monotonic()
        for n, st in states.items():
            if not st.closed:
                self._opened_at[n] = now
        return states

    def doors_left_open(self) -> list[int]:
        """Locks opened by us whose door has stayed open longer than ``left_open_s``."""
        if not self._opened_at:
            return []
        states = self.status_all()
        now = time.monotonic()
        late = []
        for lock, since in list(self._opened_at.items()):
            if states[lock].closed:
                del self._opened_at[lock]
            elif now - since > self.left_open_s:
                late.append(lock)
        return late


def make_codec(protocol: str, locks: int = 24) -> Any:
    if protocol == "kerong":
        return Kerong
    if protocol == "8a":
        return EightA(locks)
    raise LockerError(f"unknown locker protocol {protocol!r} (kerong or 8a)")
