"""Simulated lock-control boards on a pseudo-terminal, one per protocol family. A door pops
open when its lock is pulsed and stays open until `close_door` (or after ``auto_close_s``)."""

from __future__ import annotations

import threading
import time

from devices.locker.protocol import EightA, Kerong, _sum, _xor
from devices.transport import PtyPort, PtySimulator


class LockerBoardSim(PtySimulator):
    def __init__(self, protocol: str, *, boards: tuple[int, ...] = (1,), locks: int = 24,
                 closed_bit: bool = True, auto_close_s: float | None = None, jammed: tuple[int, ...] = ()) -> None:
        self.protocol = protocol
        self.codec = Kerong if protocol == "kerong" else EightA(locks)
        self.locks = 16 if protocol == "kerong" else locks
        self.closed_bit = closed_bit
        self.auto_close_s = auto_close_s
        self.jammed = set(jammed)
        self.doors = {b: {n: False for n in range(1, self.locks + 1)} for b in boards}  # True = open
        self.items = {b: {n: False for n in range(1, self.locks + 1)} for b in boards}
        self.opened: list[tuple[int, int]] = []
        self.garbage_before_answer = b""
        self._buf = bytearray()
        super().__init__(PtyPort(), f"locker-sim-{protocol}")

    def close_door(self, board: int, lock: int) -> None:
        self.doors[board][lock] = False

    def _feedback(self, board: int) -> dict[int, bool]:
        # The feedback level of a closed door is ``closed_bit``.
        return {n: (not is_open) == self.closed_bit for n, is_open in self.doors[board].items()}

    def _pulse(self, board: int, lock: int) -> None:
        if lock in self.jammed:
            return
        self.doors[board][lock] = True
        self.opened.append((board, lock))
        if self.auto_close_s is not None:
            threading.Timer(self.auto_close_s, self.close_door, (board, lock)).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._buf += self.port.read(0.05)
            while len(self._buf) >= 5:
                frame = bytes(self._buf[:5])
                valid = (_sum(frame[:4]) == frame[4] and frame[0] == 0x02) if self.protocol == "kerong" else _xor(frame[:4]) == frame[4]
                if not valid:
                    del self._buf[:1]  # resynchronise
                    continue
                del self._buf[:5]
                answer = self._handle(frame)
                if answer:
                    self.port.write(self.garbage_before_answer + answer)

    def _handle(self, frame: bytes) -> bytes:
        if self.protocol == "kerong":
            board, cmd = frame[1] >> 4, frame[2]
            if board not in self.doors:
                return b""
            if cmd == Kerong.UNLOCK:
                self._pulse(board, (frame[1] & 0x0F) + 1)
            elif cmd == Kerong.OPEN_ALL:
                for n in range(1, self.locks + 1):
                    self._pulse(board, n)
            elif cmd == Kerong.QUERY:
                return Kerong.encode_state(board, self._feedback(board), self.items[board])
            return b""
        codec: EightA = self.codec
        header, board, lock, func = frame[:4]
        if board not in self.doors:
            return b""
        if header == EightA.OPEN and func == EightA.FUNC_OPEN:
            targets = range(1, self.locks + 1) if lock == 0 else [lock]
            for n in targets:
                self._pulse(board, n)
            time.sleep(0.02)
            if lock == 0:
                return b""
            return codec.encode_state(board, self._feedback(board), lock, header=EightA.OPEN)
        if header == EightA.QUERY and func == EightA.FUNC_QUERY:
            return codec.encode_state(board, self._feedback(board), lock or None)
        return b""
