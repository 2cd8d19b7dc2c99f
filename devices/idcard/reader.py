"""The card reader loop: find → select → read, debounce the same card, emit a card event.

A garbled frame, a failing card or a silent reader is an error the loop reports and survives;
an unplugged reader is a fault: logged once, the port is reopened every ``reconnect_s`` (a
reader back on its port is in use again within 2 s), and the recovery is logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import serial

from devices.idcard.client import ReaderError, SamClient
from devices.idcard.protocol import FrameError
from devices.idcard.text import CardText, CardTextError, decode_text
from devices.transport import open_port

log = logging.getLogger(__name__)
BAUDRATE = 115200


class PhotoDecoder(Protocol):
    """Turns the card's 1024-byte WLT photo into an image. Decoding WLT needs the reader
    vendor's licensed library (e.g. libwlt2bmp); the appliance keeps the WLT bytes opaque and a
    venue plugs its licensed decoder in here."""

    def decode(self, wlt: bytes) -> bytes: ...


class NoPhotoDecoder:
    def decode(self, wlt: bytes) -> bytes:
        raise NotImplementedError("no licensed WLT decoder is installed on this appliance")


@dataclass(frozen=True)
class CardEvent:
    card: CardText
    photo_wlt: bytes
    fingerprint: bytes | None
    read_ms: float  # find → last byte of the read answer
    last_byte_at: float  # monotonic time the read answer's last byte arrived
    port: str


@dataclass
class ReaderHealth:
    state: str = "starting"  # connected | disconnected | starting
    last_error: str | None = None
    cards: int = 0
    errors: int = 0
    faults: int = 0
    since: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "last_error": self.last_error, "cards": self.cards, "errors": self.errors,
                "faults": self.faults}


class CardReaderLoop:
    def __init__(
        self,
        url: str,
        on_card: Callable[[CardEvent], None],
        *,
        on_error: Callable[[str], None] | None = None,
        poll_s: float = 0.1,
        debounce_s: float = 3.0,
        reconnect_s: float = 0.5,
        fingerprint: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.on_card = on_card
        self.on_error = on_error or (lambda message: None)
        self.poll_s = poll_s
        self.debounce_s = debounce_s
        self.reconnect_s = reconnect_s
        self.fingerprint = fingerprint
        self.monotonic = monotonic
        self.health = ReaderHealth()
        self._port: serial.SerialBase | None = None
        self._client: SamClient | None = None
        self._last: tuple[str, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"idcard {self.url}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self._close()

    def run(self) -> None:
        while not self._stop.is_set():
            if self._client is None and not self._connect():
                self._stop.wait(self.reconnect_s)
                continue
            try:
                self.poll_once()
            except (serial.SerialException, OSError) as exc:
                self._fault(f"reader unplugged or port failed: {exc}")
            self._stop.wait(self.poll_s)

    def _connect(self) -> bool:
        try:
            self._port = open_port(self.url, baudrate=BAUDRATE, timeout=0.02)
        except (serial.SerialException, OSError) as exc:
            self._fault(f"cannot open {self.url}: {exc}")
            return False
        self._client = SamClient(self._port)
        if self.health.state != "connected":
            if self.health.state == "disconnected":
                log.info("ID card reader on %s is back", self.url)
            self.health.state, self.health.since = "connected", self.monotonic()
        return True

    def _fault(self, message: str) -> None:
        self._close()
        if self.health.state != "disconnected":
            log.warning("ID card reader on %s: %s", self.url, message)  # once per outage
            self.health.state, self.health.since = "disconnected", self.monotonic()
            self.health.faults += 1
            self.health.last_error = message
            self.on_error(message)

    def _close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                pass
        self._port, self._client = None, None

    # -- one round ---------------------------------------------------------------------------

    def poll_once(self) -> CardEvent | None:
        client = self._client
        if client is None:
            return None
        try:
            started = self.monotonic()
            if not client.find_card():
                return None
            client.select_card()
            data = client.read_card(fingerprint=self.fingerprint)
            last_byte_at = client.last_frame_at or self.monotonic()
            card = decode_text(data.text)
        except (ReaderError, FrameError, CardTextError) as exc:
            self.health.errors += 1
            self.health.last_error = str(exc)
            self.on_error(str(exc))
            return None
        if not card.id_number_checks:
            self.health.errors += 1
            self.health.last_error = "card ID number fails its check character"
            self.on_error(self.health.last_error)
            return None
        now = self.monotonic()
        if self._last and self._last[0] == card.id_number and now - self._last[1] < self.debounce_s:
            self._last = (card.id_number, now)  # still on the reader: keep debouncing
            return None
        self._last = (card.id_number, now)
        event = CardEvent(card, data.photo, data.fingerprint, (last_byte_at - started) * 1000, last_byte_at, self.url)
        self.health.cards += 1
        try:
            self.on_card(event)
        except Exception:  # the consumer's failure must not stop the reader
            log.exception("card event handler failed")
        return event
