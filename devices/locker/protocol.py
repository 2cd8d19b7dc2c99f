"""Lock-control-board codecs (pure: bytes in, values out).

**Kerong CU (KR-CU16-style), 19200 8N1.** Command ``02 ADDR CMD 03 SUM``; SUM is the low byte
of the sum of the four bytes before it. ADDR = board << 4 | (lock - 1) for an unlock, board << 4
otherwise (boards 0–15, locks 1–16). CMD 0x31 unlocks one lock, 0x33 opens all, 0x30 asks a
board's state; the answer is ``02 ADDR 35 L1-8 L9-16 S1-8 S9-16 03 SUM`` (lock feedback bits,
then sensor bits, least significant bit = lock 1). Example: board 0, lock 1 → ``02 00 31 03 36``.

**"8A/80" boards, 9600 8N1.** Frame ``HDR BOARD LOCK FUNC BCC``, BCC = XOR of the bytes before
it; boards 1–31, locks 1…N, lock 0 = all. Open: ``8A BB LL 11``; query: ``80 BB LL 33``.
Answers: open → ``8A BB LL SS BCC``; query one → ``80 BB LL SS BCC``; query all →
``80 BB Sk … S1 33 BCC`` with S1 (locks 1–8) last. SS 0x11 / bit 1 and 0x00 / bit 0 are the
two feedback levels. Example: open board 1 lock 1 → ``8A 01 01 11 9B``.

Which feedback level means "door closed" depends on how the lock's switch is wired, so it is a
setting (``closed_bit``). Sources: vendors' protocol sheets as reproduced in public drivers
(kerong-lib, lkaas-kerong; Open-Locker's rs485-lock-board-codec); every checksum in the tests
is computed.
"""

from __future__ import annotations

from dataclasses import dataclass


class LockerProtocolError(ValueError):
    """Bytes that are not a valid answer, or an address the board cannot have."""


@dataclass(frozen=True)
class BoardState:
    """Feedback per lock (True = the feedback bit is set) and, for Kerong, sensor bits."""

    feedback: dict[int, bool]
    sensors: dict[int, bool]


def _sum(data: bytes) -> int:
    return sum(data) & 0xFF


def _xor(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def _bits(data: bytes, count: int) -> dict[int, bool]:
    return {lock: bool(data[(lock - 1) // 8] >> ((lock - 1) % 8) & 1) for lock in range(1, count + 1)}


class Kerong:
    name = "kerong"
    baudrate = 19200
    STX, ETX = 0x02, 0x03
    QUERY, UNLOCK, QUERY_BUS, OPEN_ALL, STATE = 0x30, 0x31, 0x32, 0x33, 0x35
    LOCKS = 16
    STATE_LEN = 9

    @classmethod
    def _frame(cls, addr: int, cmd: int) -> bytes:
        body = bytes([cls.STX, addr, cmd, cls.ETX])
        return body + bytes([_sum(body)])

    @classmethod
    def _check(cls, board: int, lock: int | None = None) -> None:
        if not 0 <= board <= 15:
            raise LockerProtocolError(f"Kerong board {board} out of range 0–15")
        if lock is not None and not 1 <= lock <= cls.LOCKS:
            raise LockerProtocolError(f"Kerong lock {lock} out of range 1–16")

    @classmethod
    def open(cls, board: int, lock: int) -> bytes:
        cls._check(board, lock)
        return cls._frame(board << 4 | (lock - 1), cls.UNLOCK)

    @classmethod
    def open_all(cls, board: int) -> bytes:
        cls._check(board)
        return cls._frame(board << 4, cls.OPEN_ALL)

    @classmethod
    def query(cls, board: int, lock: int | None = None) -> bytes:
        cls._check(board)
        return cls._frame(board << 4, cls.QUERY)  # the board answers for all its locks

    @classmethod
    def answer_length(cls, request: bytes) -> int | None:
        """How many bytes answer ``request`` (None: the board sends no reliable answer)."""
        return cls.STATE_LEN if request[2] == cls.QUERY else None

    @classmethod
    def decode_state(cls, frame: bytes, board: int) -> BoardState:
        if len(frame) != cls.STATE_LEN:
            raise LockerProtocolError(f"Kerong state answer must be 9 bytes, got {len(frame)}")
        if frame[0] != cls.STX or frame[7] != cls.ETX or frame[2] != cls.STATE:
            raise LockerProtocolError("not a Kerong state answer")
        if _sum(frame[:8]) != frame[8]:
            raise LockerProtocolError(f"checksum mismatch: got 0x{frame[8]:02X}, computed 0x{_sum(frame[:8]):02X}")
        if frame[1] >> 4 != board:
            raise LockerProtocolError(f"answer from board {frame[1] >> 4}, asked board {board}")
        return BoardState(_bits(frame[3:5], cls.LOCKS), _bits(frame[5:7], cls.LOCKS))

    @classmethod
    def encode_state(cls, board: int, feedback: dict[int, bool], sensors: dict[int, bool]) -> bytes:
        def pack(bits: dict[int, bool]) -> bytes:
            value = sum(1 << (lock - 1) for lock, on in bits.items() if on)
            return value.to_bytes(2, "little")

        body = bytes([cls.STX, board << 4, cls.STATE]) + pack(feedback) + pack(sensors) + bytes([cls.ETX])
        return body + bytes([_sum(body)])


class EightA:
    name = "8a"
    baudrate = 9600
    OPEN, QUERY = 0x8A, 0x80
    FUNC_OPEN, FUNC_QUERY = 0x11, 0x33
    LEVEL_SET, LEVEL_CLEAR = 0x11, 0x00

    def __init__(self, locks: int = 24) -> None:
        if not 1 <= locks <= 56:
            raise LockerProtocolError("an 8A/80 board has 1–56 locks")
        self.LOCKS = locks
        self.state_bytes = max(3, (locks + 7) // 8)

    @staticmethod
    def _frame(*body: int) -> bytes:
        data = bytes(body)
        return data + bytes([_xor(data)])

    def _check(self, board: int, lock: int | None = None) -> None:
        if not 1 <= board <= 31:
            raise LockerProtocolError(f"8A board {board} out of range 1–31")
        if lock is not None and not 1 <= lock <= self.LOCKS:
            raise LockerProtocolError(f"8A lock {lock} out of range 1–{self.LOCKS}")

    def open(self, board: int, lock: int) -> bytes:
        self._check(board, lock)
        return self._frame(self.OPEN, board, lock, self.FUNC_OPEN)

    def open_all(self, board: int) -> bytes:
        self._check(board)
        return self._frame(self.OPEN, board, 0, self.FUNC_OPEN)

    def query(self, board: int, lock: int | None = None) -> bytes:
        self._check(board, lock)
        return self._frame(self.QUERY, board, lock or 0, self.FUNC_QUERY)

    def answer_length(self, request: bytes) -> int | None:
        if request[0] == self.QUERY and request[2] == 0:
            return 2 + self.state_bytes + 2
        return 5

    def decode_state(self, frame: bytes, board: int, lock: int | None = None) -> BoardState:
        if len(frame) < 5 or _xor(frame[:-1]) != frame[-1]:
            raise LockerProtocolError("8A/80 answer too short or checksum mismatch")
        if frame[0] not in (self.OPEN, self.QUERY) or frame[1] != board:
            raise LockerProtocolError(f"not an answer from board {board}")
        if frame[0] == self.QUERY and lock is None:
            if frame[-2] != self.FUNC_QUERY or len(frame) != 2 + self.state_bytes + 2:
                raise LockerProtocolError("query-all answer has the wrong length")
            data = bytes(reversed(frame[2:-2]))  # S1 (locks 1–8) comes last
            return BoardState(_bits(data, self.LOCKS), {})
        if len(frame) != 5 or frame[2] != lock:
            raise LockerProtocolError(f"answer is not about lock {lock}")
        if frame[3] not in (self.LEVEL_SET, self.LEVEL_CLEAR):
            raise LockerProtocolError(f"unknown lock level 0x{frame[3]:02X}")
        return BoardState({lock: frame[3] == self.LEVEL_SET}, {})

    def encode_state(self, board: int, feedback: dict[int, bool], lock: int | None = None, header: int = QUERY) -> bytes:
        if lock is not None:
            level = self.LEVEL_SET if feedback.get(lock) else self.LEVEL_CLEAR
            return self._frame(header, board, lock, level)
        value = sum(1 << (n - 1) for n, on in feedback.items() if on)
        data = bytes(reversed(value.to_bytes(self.state_bytes, "little")))
        return self._frame(self.QUERY, board, *data, self.FUNC_QUERY)
