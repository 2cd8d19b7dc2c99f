"""Registered kiosk devices: gate kiosks and evaluation terminals (no personal login).

A kiosk is registered by staff (`appliance kiosk add` or the console), which gives a one-time
code valid for 24 hours; entered at /kiosk/enrol on the device, it becomes the device's token.
The browser keeps the token in a cookie that lasts ``web.kiosk_token_days`` and is renewed while
the kiosk is in use; the database keeps only its SHA-256 and the time it lapses. A kiosk can be
disabled at once (`appliance kiosk disable`, the console): its token stops working on the next
request and its open live-update streams end. Wrong enrolment codes are refused for a while
after a few tries from one address, and journaled at most once a minute per address.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from appliance.clock import utc_timestamp
from appliance.personal import refuse_personal_numbers
from appliance.site import Site
from appliance.throttle import JournalThrottle

KIOSK_PURPOSES = ("gate", "evaluation")
ENROL_TRIES = 5  # wrong codes from one address before it must wait
ENROL_WAIT_S = 600.0
TRACKED_ADDRESSES = 4096  # the memory of wrong tries is bounded, oldest forgotten first


class KioskError(ValueError):
    """A kiosk request that cannot be done (bad name, unknown kiosk, ...)."""


@dataclass(frozen=True)
class Kiosk:
    id: int
    name: str
    purpose: str
    lang: str | None
    reader: str | None = None  # the ID card reader whose taps this kiosk shows (its gate, or its desk)
    room: str | None = None  # evaluation terminals: the room it stands in


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


class Kiosks:
    """The kiosk registry of one site (one per process: it remembers wrong enrolment tries)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.token_days = site.config.web.kiosk_token_days
        self._wrong: OrderedDict[str, tuple[float, int]] = OrderedDict()  # address → (first try, count)
        self._throttle = JournalThrottle(site.clock.monotonic)

    def add(self, name: str, purpose: str = "gate", *, reader: str | None = None, room: str | None = None,
            by: str = "cli") -> str:
        """Register a kiosk device; returns a one-time enrolment code valid for 24 hours. An
        evaluation terminal names its room (a room of the day plan) and, for sign-in by card, its
        desk reader."""
        if purpose not in KIOSK_PURPOSES:
            raise KioskError(f"purpose must be one of {', '.join(KIOSK_PURPOSES)}")
        name = (name or "").strip()
        if not name or len(name) > 64 or any(c in name for c in "\r\n\t"):
            raise KioskError("kiosk name: 1–64 characters on one line")
        refuse_personal_numbers(name, "kiosk name")
        if room is not None and purpose != "evaluation":
            raise KioskError("only an evaluation terminal stands in a room")
        code = "-".join(secrets.token_hex(2).upper() for _ in range(3))
        now = self.site.clock.now()
        with self.site.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM kiosks WHERE name = ?", (name,)).fetchone():
                raise KioskError(f"kiosk {name!r} already exists")
            if reader is not None and conn.execute("SELECT 1 FROM kiosks WHERE reader = ?", (reader,)).fetchone():
                raise KioskError(f"reader {reader!r} already belongs to another kiosk")
            cur = conn.execute(
                "INSERT INTO kiosks (name, purpose, reader, room, code_hash, code_expires, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, purpose, reader, room, token_hash(code), utc_timestamp(now + timedelta(hours=24)), utc_timestamp(now)),
            )
            self.site.journal.append(conn, "kiosk.registered", {"kiosk_id": cur.lastrowid, "name": name, "purpose": purpose,
                                                                "reader": reader, "room": room, "by": by})
        return code

    def enrol_wait_s(self, remote: str) -> float:
        """Seconds this address must wait before it may try another code (0: it may)."""
        first, count = self._wrong.get(remote, (0.0, 0))
        elapsed = self.site.clock.monotonic() - first
        if elapsed >= ENROL_WAIT_S:
            self._wrong.pop(remote, None)
            return 0.0
        return ENROL_WAIT_S - elapsed if count >= ENROL_TRIES else 0.0

    def _wrong_try(self, remote: str) -> None:
        now = self.site.clock.monotonic()
        first, count = self._wrong.pop(remote, (now, 0))
        self._wrong[remote] = (first, count + 1)
        while len(self._wrong) > TRACKED_ADDRESSES:
            self._wrong.popitem(last=False)

    def enroll(self, code: str, remote: str = "") -> tuple[Kiosk, str] | None:
        """Exchange a one-time code for the kiosk's device token (None: wrong, expired, or this
        address must wait after too many wrong codes)."""
        if self.enrol_wait_s(remote):
            self._refused(remote, "too many wrong codes from this address")
            return None
        now = self.site.clock.now()
        with self.site.store.transaction() as conn:
            row = conn.execute(
                "SELECT id, name, purpose, lang, code_expires FROM kiosks WHERE code_hash = ? AND disabled = 0",
                (token_hash(code.strip().upper()),),
            ).fetchone()
            if row is None or _parse(row[4]) < now:
                self._wrong_try(remote)
                self._refused(remote, "unknown or expired code", conn)
                return None
            token = secrets.token_urlsafe(32)
            conn.execute(
                "UPDATE kiosks SET code_hash = NULL, code_expires = NULL, token_hash = ?, enrolled = ?, token_expires = ? "
                "WHERE id = ?",
                (token_hash(token), utc_timestamp(now), utc_timestamp(now + timedelta(days=self.token_days)), row[0]),
            )
            self.site.journal.append(conn, "kiosk.enrolled", {"kiosk_id": row[0], "name": row[1]})
        self._wrong.pop(remote, None)
        return Kiosk(row[0], row[1], row[2], row[3]), token

    def _refused(self, remote: str, reason: str, conn: Any = None) -> None:
        """Journal a refused enrolment at most once a minute per address, with how many were
        left out since."""
        skipped = self._throttle.take(f"enrol:{remote}")
        if skipped is None:
            return
        payload = {"reason": reason, "remote": remote, "similar_attempts_not_journaled": skipped}
        with self.site.store.within(conn) as c:
            self.site.journal.append(c, "kiosk.enrolment_refused", payload)

    def for_token(self, token: str) -> Kiosk | None:
        """The kiosk of a device token: enabled and not lapsed. A token in use is renewed (its
        lapse moved on) at most once an hour."""
        row = self.site.store.reader().execute(
            "SELECT id, name, purpose, lang, reader, room, token_expires FROM kiosks WHERE token_hash = ? AND disabled = 0",
            (token_hash(token),),
        ).fetchone()
        if row is None:
            return None
        now = self.site.clock.now()
        expires = _parse(row[6]) if row[6] else None
        if expires is not None and expires < now:
            return None
        lapse = now + timedelta(days=self.token_days)
        if expires is None or lapse - expires > timedelta(hours=1):
            with self.site.store.transaction() as conn:
                conn.execute("UPDATE kiosks SET token_expires = ? WHERE id = ?", (utc_timestamp(lapse), row[0]))
        return Kiosk(row[0], row[1], row[2], row[3], row[4], row[5])

    def set_disabled(self, name: str, disabled: bool, *, by: str = "cli") -> None:
        """Disable a kiosk (its token stops working at once; re-enabling needs a new code) or
        enable it again. Returns nothing; an unknown name is a KioskError."""
        with self.site.store.transaction() as conn:
            row = conn.execute("SELECT id FROM kiosks WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise KioskError(f"no kiosk {name!r}")
            if disabled:
                conn.execute("UPDATE kiosks SET disabled = 1, token_hash = NULL, token_expires = NULL WHERE id = ?", (row[0],))
            else:
                conn.execute("UPDATE kiosks SET disabled = 0 WHERE id = ?", (row[0],))
            self.site.journal.append(conn, "kiosk.disabled" if disabled else "kiosk.enabled",
                                     {"kiosk_id": row[0], "name": name, "by": by})

    def new_code(self, name: str, *, by: str = "cli") -> str:
        """A fresh one-time code for a registered kiosk (a replaced screen, or after enabling it
        again); the old device token stops working."""
        code = "-".join(secrets.token_hex(2).upper() for _ in range(3))
        now = self.site.clock.now()
        with self.site.store.transaction() as conn:
            row = conn.execute("SELECT id, disabled FROM kiosks WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise KioskError(f"no kiosk {name!r}")
            if row[1]:
                raise KioskError(f"kiosk {name!r} is disabled: enable it first")
            conn.execute("UPDATE kiosks SET code_hash = ?, code_expires = ?, token_hash = NULL, token_expires = NULL WHERE id = ?",
                         (token_hash(code), utc_timestamp(now + timedelta(hours=24)), row[0]))
            self.site.journal.append(conn, "kiosk.code_issued", {"kiosk_id": row[0], "name": name, "by": by})
        return code

    def all(self) -> list[dict[str, Any]]:
        rows = self.site.store.reader().execute(
            "SELECT id, name, purpose, reader, room, lang, disabled, created, enrolled, token_expires FROM kiosks ORDER BY name"
        )
        return [dict(r) for r in rows]

    def set_language(self, kiosk_id: int, lang: str) -> None:
        with self.site.store.transaction() as conn:
            conn.execute("UPDATE kiosks SET lang = ? WHERE id = ?", (lang, kiosk_id))
