"""The SAM protocol of resident ID card readers: frames, checksum, commands, status codes.

Frame (both directions)::

    AA AA AA 96 69 | LEN (2 bytes, big-endian) | body | CHK

* command body: ``CMD PARA [data]``; response body: ``SW1 SW2 SW3 [data]``;
* LEN counts the body plus the checksum byte;
* CHK is the XOR of every byte after the preamble: both LEN bytes and the body.

Example: find card is ``AA AA AA 96 69 00 03 20 01 22`` (00 ^ 03 ^ 20 ^ 01 = 22).
Sources: the reader vendors' "二代证阅读器通讯协议" documents (SAM_V interface per GA 467);
every checksum in tests is computed, not copied. Pure: bytes in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
HEADER_LEN = len(PREAMBLE) + 2
MAX_LEN = 0x1000  # the largest real frame (text + photo + fingerprint) is 0x090A


class FrameError(ValueError):
    """Bytes that are not a valid frame (bad preamble, length or checksum)."""


RESET_SAM = (0x10, 0xFF)
SAM_STATUS = (0x11, 0xFF)
SAM_ID = (0x12, 0xFF)
FIND_CARD = (0x20, 0x01)
SELECT_CARD = (0x20, 0x02)
READ_BASE = (0x30, 0x01)
READ_BASE_FINGERPRINT = (0x30, 0x10)
READ_APPENDED_ADDRESS = (0x30, 0x03)

COMMAND_NAMES = {
    RESET_SAM: "reset SAM",
    SAM_STATUS: "SAM status",
    SAM_ID: "read SAM id",
    FIND_CARD: "find card",
    SELECT_CARD: "select card",
    READ_BASE: "read base message",
    READ_BASE_FINGERPRINT: "read base message and fingerprint",
    READ_APPENDED_ADDRESS: "read appended address",
}


class Status(IntEnum):
    OK = 0x90
    NO_CONTENT = 0x91
    CARD_FOUND = 0x9F
    CHECKSUM_ERROR = 0x10
    LENGTH_ERROR = 0x11
    COMMAND_ERROR = 0x21
    UNAUTHORISED = 0x23
    UNKNOWN_ERROR = 0x24
    CARD_AUTH_FAILED = 0x31
    SAM_AUTH_FAILED = 0x32
    VERIFY_FAILED = 0x33
    UNKNOWN_CARD_TYPE = 0x40
    READ_FAILED = 0x41
    RANDOM_FAILED = 0x47
    SAM_SELF_TEST_FAILED = 0x60
    SAM_NOT_AUTHORISED = 0x66
    FIND_FAILED = 0x80
    SELECT_FAILED = 0x81


STATUS_MESSAGES = {
    Status.OK: ("操作成功", "operation succeeded"),
    Status.NO_CONTENT: ("证件中此项无内容", "the card has no content for this item"),
    Status.CARD_FOUND: ("寻找证/卡成功", "card found"),
    Status.CHECKSUM_ERROR: ("接收业务终端数据的校验和错", "the reader received a frame with a wrong checksum"),
    Status.LENGTH_ERROR: ("接收业务终端数据的长度错", "the reader received a frame with a wrong length"),
    Status.COMMAND_ERROR: ("接收业务终端的命令错误", "the reader does not know this command"),
    Status.UNAUTHORISED: ("越权操作", "operation not permitted"),
    Status.UNKNOWN_ERROR: ("无法识别的错误", "unidentified reader error"),
    Status.CARD_AUTH_FAILED: ("证/卡认证机具失败", "the card failed to authenticate the reader"),
    Status.SAM_AUTH_FAILED: ("机具认证证/卡失败", "the reader failed to authenticate the card"),
    Status.VERIFY_FAILED: ("信息验证错误", "information verification failed"),
    Status.UNKNOWN_CARD_TYPE: ("无法识别的证/卡类型", "unknown card type"),
    Status.READ_FAILED: ("读证/卡操作失败", "reading the card failed"),
    Status.RANDOM_FAILED: ("取随机数失败", "getting a random number failed"),
    Status.SAM_SELF_TEST_FAILED: ("SAM 自检失败", "the SAM failed its self-test"),
    Status.SAM_NOT_AUTHORISED: ("SAM 未经授权", "the SAM is not authorised"),
    Status.FIND_FAILED: ("寻找证/卡失败", "no card found on the reader"),
    Status.SELECT_FAILED: ("选取证/卡失败", "selecting the card failed"),
}


def status_message(sw3: int) -> tuple[str, str]:
    """(Chinese, English) for any status byte; unknown codes get a message naming the byte."""
    try:
        return STATUS_MESSAGES[Status(sw3)]
    except ValueError:
        return (f"未知状态码 0x{sw3:02X}", f"unknown status code 0x{sw3:02X}")


def checksum(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def _frame(body: bytes) -> bytes:
    length = (len(body) + 1).to_bytes(2, "big")
    return PREAMBLE + length + body + bytes([checksum(length + body)])


def encode_command(cmd: int, para: int, data: bytes = b"") -> bytes:
    return _frame(bytes([cmd, para]) + data)


def encode_response(sw3: int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> bytes:
    return _frame(bytes([sw1, sw2, sw3]) + data)


@dataclass(frozen=True)
class Frame:
    body: bytes  # between LEN and CHK

    @property
    def as_command(self) -> tuple[int, int, bytes]:
        if len(self.body) < 2:
            raise FrameError("command frame shorter than CMD PARA")
        return self.body[0], self.body[1], self.body[2:]

    @property
    def as_response(self) -> "Response":
        if len(self.body) < 3:
            raise FrameError("response frame shorter than SW1 SW2 SW3")
        return Response(self.body[0], self.body[1], self.body[2], self.body[3:])


@dataclass(frozen=True)
class Response:
    sw1: int
    sw2: int
    sw3: int
    data: bytes

    @property
    def ok(self) -> bool:
        return self.sw1 == 0 and self.sw2 == 0 and self.sw3 in (Status.OK, Status.CARD_FOUND)


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame; raise `FrameError` for anything else."""
    reader = FrameReader()
    results = reader.feed(data)
    if reader.pending:
        raise FrameError("incomplete frame")
    if len(results) != 1:
        raise FrameError("expected exactly one frame")
    result = results[0]
    if isinstance(result, FrameError):
        raise result
    return result


class FrameReader:
    """Incremental decoder: feed bytes as they arrive, get frames (or `FrameError` for a frame
    that arrived damaged). Garbage before a preamble is skipped and reported once."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[Frame | FrameError]:
        self._buf += chunk
        out: list[Frame | FrameError] = []
        while self._buf:
            start = self._buf.find(PREAMBLE)
            if start < 0:
                # Keep a tail that could be the start of a preamble split across reads.
                keep = next((n for n in range(min(4, len(self._buf)), 0, -1)
                             if PREAMBLE.startswith(bytes(self._buf[-n:]))), 0)
                dropped = len(self._buf) - keep
                if dropped:
                    out.append(FrameError(f"{dropped} bytes of garbage without a frame preamble"))
                    del self._buf[:dropped]
                break
            if start:
                out.append(FrameError(f"{start} bytes of garbage before a frame"))
                del self._buf[:start]
            if len(self._buf) < HEADER_LEN:
                break
            length = int.from_bytes(self._buf[5:7], "big")
            if length < 2 or length > MAX_LEN:
                out.append(FrameError(f"impossible frame length {length}"))
                del self._buf[:1]  # resynchronise on the next preamble
                continue
            total = HEADER_LEN + length
            if len(self._buf) < total:
                break
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            if checksum(frame[5:-1]) != frame[-1]:
                out.append(FrameError(f"checksum mismatch: got 0x{frame[-1]:02X}, computed 0x{checksum(frame[5:-1]):02X}"))
                continue
            out.append(Frame(frame[HEADER_LEN:-1]))
        return out


# -- payloads -----------------------------------------------------------------------------------

TEXT_LEN = 256
PHOTO_LEN = 1024
FINGERPRINT_LEN = 1024


@dataclass(frozen=True)
class CardData:
    text: bytes
    photo: bytes
    fingerprint: bytes | None = None


def encode_card_data(card: CardData) -> bytes:
    if card.fingerprint is None:
        head = len(card.text).to_bytes(2, "big") + len(card.photo).to_bytes(2, "big")
        return head + card.text + card.photo
    head = len(card.text).to_bytes(2, "big") + len(card.photo).to_bytes(2, "big") + len(card.fingerprint).to_bytes(2, "big")
    return head + card.text + card.photo + card.fingerprint


def decode_card_data(data: bytes, *, fingerprint: bool) -> CardData:
    """The data of a read-base-message response (after SW1 SW2 SW3)."""
    head = 6 if fingerprint else 4
    if len(data) < head:
        raise FrameError("card data shorter than its length fields")
    text_len = int.from_bytes(data[0:2], "big")
    photo_len = int.from_bytes(data[2:4], "big")
    fp_len = int.from_bytes(data[4:6], "big") if fingerprint else 0
    if len(data) != head + text_len + photo_len + fp_len:
        raise FrameError(f"card data is {len(data)} bytes, its length fields say {head + text_len + photo_len + fp_len}")
    text = data[head : head + text_len]
    photo = data[head + text_len : head + text_len + photo_len]
    fp = data[head + text_len + photo_len :] if fingerprint else None
    return CardData(text, photo, fp)


def decode_sam_id(data: bytes) -> str:
    """SAM id data (16 bytes, little-endian u16 u16 u32 u32 u32) → the printed form
    ``05.01-20101010-0000000001-1234567890``."""
    if len(data) != 16:
        raise FrameError(f"SAM id must be 16 bytes, got {len(data)}")
    a, b = int.from_bytes(data[0:2], "little"), int.from_bytes(data[2:4], "little")
    date = int.from_bytes(data[4:8], "little")
    s1 = int.from_bytes(data[8:12], "little")
    s2 = int.from_bytes(data[12:16], "little")
    return f"{a:02d}.{b:02d}-{date:08d}-{s1:010d}-{s2:010d}"
