"""A simulated ID card reader speaking the SAM protocol on a pseudo-terminal, so the real
driver runs unchanged against it. Cards are fictitious people (test data only).

Faults on demand: garbage before the next answer, a wrong checksum, an answer split into
single bytes, silence, a failing SAM, an unplugged and replugged reader.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from devices.idcard import protocol as p
from devices.idcard.text import RESIDENT, CardText, encode_text, gb11643_check_char
from devices.transport import PtyPort, PtySimulator

SAM_ID_BYTES = b"".join(v.to_bytes(n, "little") for v, n in ((5, 2), (1, 2), (20101010, 4), (1, 4), (1234567890, 4)))


def fictitious_card(index: int = 0, *, valid_to: str = "长期") -> CardText:
    """A made-up resident: region 220102, born 1970–1999, a correct check character."""
    first17 = f"220102{1970 + index % 30}{1 + index % 12:02d}{1 + index % 28:02d}{100 + index % 900:03d}"
    names = ["测试甲", "测试乙", "测试丙", "测试丁", "测试戊", "测试己", "测试庚", "测试辛"]
    return CardText(
        kind=RESIDENT, name=names[index % len(names)], sex="1" if index % 2 == 0 else "2", nation="01",
        birth=first17[6:14], address="吉林省长春市朝阳区测试路1号", id_number=first17 + gb11643_check_char(first17),
        authority="长春市公安局朝阳分局", valid_from="20200101", valid_to=valid_to,
    )


@dataclass
class Faults:
    garbage: bytes = b""
    bad_checksum: bool = False
    byte_by_byte: bool = False
    silent: bool = False
    sam_failure: bool = False


class SamSimulator(PtySimulator):
    def __init__(self, port: PtyPort, *, answer_delay_s: float = 0.0) -> None:
        super().__init__(port, "sam-sim")
        self.answer_delay_s = answer_delay_s
        self.faults = Faults()
        self.card: CardText | None = None
        self.photo = b""
        self.fingerprint: bytes | None = None
        self._selected = False
        self._frames = p.FrameReader()
        self.commands: list[tuple[int, int]] = []
        self.last_answer_at: float | None = None  # monotonic time the last answer's last byte was written

    @classmethod
    def on_pty(cls, link: Path | None = None, **kwargs: float) -> "SamSimulator":
        return cls(PtyPort(link), **kwargs)

    def place(self, card: CardText, photo: bytes | None = None, fingerprint: bytes | None = None) -> None:
        self.card = card
        self.photo = photo if photo is not None else bytes((i * 7) & 0xFF for i in range(p.PHOTO_LEN))
        self.fingerprint = fingerprint
        self._selected = False

    def remove(self) -> None:
        self.card = None
        self._selected = False

    def _run(self) -> None:
        while not self._stop.is_set():
            chunk = self.port.read(0.05)
            if not chunk:
                continue
            for frame in self._frames.feed(chunk):
                if isinstance(frame, p.FrameError):
                    if "checksum" in str(frame):
                        self._send(p.encode_response(p.Status.CHECKSUM_ERROR))
                    continue
                self._answer(frame)

    def _answer(self, frame: p.Frame) -> None:
        cmd, para, _ = frame.as_command
        self.commands.append((cmd, para))
        if self.faults.silent:
            return
        if self.faults.sam_failure and (cmd, para) != p.SAM_ID:
            self._send(p.encode_response(p.Status.SAM_SELF_TEST_FAILED))
            return
        status, data = self._handle((cmd, para))
        self._send(p.encode_response(status, data))

    def _handle(self, command: tuple[int, int]) -> tuple[int, bytes]:
        if command in (p.RESET_SAM, p.SAM_STATUS):
            return p.Status.OK, b""
        if command == p.SAM_ID:
            return p.Status.OK, SAM_ID_BYTES
        if command == p.FIND_CARD:
            return (p.Status.CARD_FOUND, bytes(4)) if self.card else (p.Status.FIND_FAILED, b"")
        if command == p.SELECT_CARD:
            if not self.card:
                return p.Status.SELECT_FAILED, b""
            self._selected = True
            return p.Status.OK, bytes(8)
        if command in (p.READ_BASE, p.READ_BASE_FINGERPRINT):
            if not (self.card and self._selected):
                return p.Status.READ_FAILED, b""
            fp = (self.fingerprint or bytes(p.FINGERPRINT_LEN)) if command == p.READ_BASE_FINGERPRINT else None
            return p.Status.OK, p.encode_card_data(p.CardData(encode_text(self.card), self.photo, fp))
        if command == p.READ_APPENDED_ADDRESS:
            return (p.Status.NO_CONTENT, b"") if self.card else (p.Status.READ_FAILED, b"")
        return p.Status.COMMAND_ERROR, b""

    def _send(self, frame: bytes) -> None:
        if self.answer_delay_s:
            time.sleep(self.answer_delay_s)
        if self.faults.garbage:
            frame, self.faults.garbage = self.faults.garbage + frame, b""
        if self.faults.bad_checksum:
            frame, self.faults.bad_checksum = frame[:-1] + bytes([frame[-1] ^ 0xFF]), False
        try:
            if self.faults.byte_by_byte:
                for i in range(len(frame)):
                    self.port.write(frame[i : i + 1])
            else:
                self.port.write(frame)
            self.last_answer_at = time.monotonic()
        except OSError:
            pass  # unplugged mid-answer
