"""Request/response with a SAM reader over an injected serial transport."""

from __future__ import annotations

import time
from typing import Protocol

from devices.idcard import protocol as p


class Transport(Protocol):
    def write(self, data: bytes) -> int | None: ...
    def read(self, size: int = 1) -> bytes: ...
    def reset_input_buffer(self) -> None: ...


class ReaderError(RuntimeError):
    """The reader answered with a failure status, garbage, or not at all."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ReaderTimeout(ReaderError):
    pass


class SamClient:
    def __init__(self, port: Transport, *, timeout: float = 1.0) -> None:
        self.port = port
        self.timeout = timeout
        self._frames = p.FrameReader()
        self.last_frame_at: float | None = None  # monotonic time the last response frame completed

    def request(self, command: tuple[int, int], data: bytes = b"", *, timeout: float | None = None) -> p.Response:
        self.port.reset_input_buffer()
        self._frames = p.FrameReader()
        self.port.write(p.encode_command(*command, data))
        deadline = time.monotonic() + (timeout or self.timeout)
        errors: list[str] = []
        while time.monotonic() < deadline:
            chunk = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
            if not chunk:
                continue
            for result in self._frames.feed(chunk):
                if isinstance(result, p.FrameError):
                    errors.append(str(result))
                    if "checksum" in str(result):
                        raise ReaderError(f"{p.COMMAND_NAMES.get(command, command)}: garbled answer ({result})")
                    continue
                self.last_frame_at = time.monotonic()
                return result.as_response
        detail = f" ({'; '.join(errors)})" if errors else ""
        raise ReaderTimeout(f"{p.COMMAND_NAMES.get(command, command)}: no answer from the reader{detail}")

    def expect(self, command: tuple[int, int], ok: tuple[int, ...] = (p.Status.OK,), data: bytes = b"") -> p.Response:
        response = self.request(command, data)
        if response.sw1 or response.sw2 or response.sw3 not in ok:
            zh, en = p.status_message(response.sw3)
            raise ReaderError(f"{p.COMMAND_NAMES.get(command, command)}: {en} ({zh}, 0x{response.sw3:02X})", response.sw3)
        return response

    def reset_sam(self) -> None:
        self.expect(p.RESET_SAM)

    def sam_status(self) -> None:
        self.expect(p.SAM_STATUS)

    def sam_id(self) -> str:
        return p.decode_sam_id(self.expect(p.SAM_ID).data)

    def find_card(self) -> bool:
        """True when a card is on the reader; False for 'no card' (0x80)."""
        response = self.request(p.FIND_CARD)
        if response.sw3 == p.Status.CARD_FOUND:
            return True
        if response.sw3 == p.Status.FIND_FAILED:
            return False
        zh, en = p.status_message(response.sw3)
        raise ReaderError(f"find card: {en} ({zh}, 0x{response.sw3:02X})", response.sw3)

    def select_card(self) -> None:
        self.expect(p.SELECT_CARD)

    def read_card(self, *, fingerprint: bool = False) -> p.CardData:
        command = p.READ_BASE_FINGERPRINT if fingerprint else p.READ_BASE
        return p.decode_card_data(self.expect(command).data, fingerprint=fingerprint)

    def read_appended_address(self) -> str | None:
        response = self.expect(p.READ_APPENDED_ADDRESS, ok=(p.Status.OK, p.Status.NO_CONTENT))
        if response.sw3 == p.Status.NO_CONTENT or not response.data:
            return None
        return response.data.decode("utf-16-le", errors="replace").rstrip(" \x00")
