"""Provincial staff of the center's pages: the same account machinery as the venue's
(`appliance.accounts`) — argon2id passwords checked outside any write transaction and at most
two at once, an attempt counted as a failure before its check (a parallel burst gets no more
tries than the lockout), the lockout in the database (every worker process sees it), unknown
names checked against a dummy hash (the time taken does not tell which names exist), and
server-side sessions: the browser's cookie carries a random token, the database its SHA-256, so
logout, a password reset and disabling a login end its sessions at once.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance.clock import utc_timestamp
from appliance.throttle import AddressBudget
from center.base import CenterError

LOCK_AFTER = 5  # consecutive wrong passwords
LOCK_MINUTES = 5
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
MIN_PASSWORD = 10
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not-a-real-password-used-for-timing")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


class CenterStaff:
    """One per process: the bounded password-check slots and the per-address budget."""

    def __init__(self, center: Any) -> None:
        self.center = center
        self._slots = threading.BoundedSemaphore(2)
        self._budget = AddressBudget(center.clock.monotonic, 20)

    def set(self, name: str, password: str) -> None:
        """Add a login, or reset its password (its open sessions end)."""
        name = name.strip()
        if not name or len(name) > 64 or len(password) < MIN_PASSWORD:
            raise CenterError(400, "bad_staff", f"a name (1–64 characters), and a password of at least {MIN_PASSWORD} characters")
        password_hash = _hasher.hash(password)  # never inside the write transaction
        now = utc_timestamp(self.center.clock.now())
        with self.center.db.transaction() as conn:
            conn.execute("""INSERT INTO staff (name, password_hash, created) VALUES (%s, %s, %s)
                            ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash, failed_count = 0,
                            locked_until = NULL""", (name, password_hash, now))
            self._end_all(conn, name, "password_reset")

    def disable(self, name: str, disabled: bool = True) -> None:
        with self.center.db.transaction() as conn:
            if conn.execute("UPDATE staff SET disabled = %s WHERE name = %s", (bool(disabled), name)).rowcount != 1:
                raise CenterError(404, "no_staff", f"no staff login {name!r}")
            if disabled:
                self._end_all(conn, name, "disabled")

    def login(self, name: str, password: str, remote: str = "") -> tuple[str, str | None]:
        """(outcome, session token): ``ok``, ``wrong``, ``locked``, ``disabled``, ``busy`` or
        ``address_limited``. An unknown name, a locked or a disabled login cost the same hash
        as a real check (timing tells nothing); the page words all three as a wrong password."""
        if not self._budget.take(remote):
            return "address_limited", None
        row = self.center.db.one("SELECT password_hash FROM staff WHERE name = %s", (name,))
        if row is None:
            return ("wrong" if self._check(lambda: _verify(_DUMMY, password)) else "busy"), None
        reserved = self._reserve(name)
        if isinstance(reserved, str):
            return (reserved if self._check(lambda: _verify(_DUMMY, password)) else "busy"), None
        outcome: list[bool] = []
        if not self._check(lambda: outcome.append(_verify(row[0], password))):
            self._release(name, reserved)  # no check ran: not a try
            return "busy", None
        return self._settle(name, bool(outcome and outcome[0]))

    def _check(self, check: Any) -> bool:
        if not self._slots.acquire(timeout=10):
            return False
        try:
            check()
        finally:
            self._slots.release()
        return True

    def _reserve(self, name: str) -> str | tuple[str | None]:
        """Count the attempt as a failure before its check; the one that reaches the lockout
        locks the login at once, provisionally (its success clears it; a check that never
        settles leaves a lock that ends by itself). Returns a refusal, or (the lock set)."""
        now = self.center.clock.now()
        with self.center.db.transaction() as conn:
            found = conn.execute("SELECT disabled, locked_until, failed_count FROM staff WHERE name = %s FOR UPDATE",
                                 (name,)).fetchone()
            if found is None:
                return "wrong"  # deleted meanwhile
            disabled, locked_until, failed = found
            if disabled:
                return "disabled"
            if locked_until and _parse(locked_until) > now:
                return "locked"
            failed = (0 if locked_until else failed) + 1  # a lock that ended: a fresh count
            lock = utc_timestamp(now + timedelta(minutes=LOCK_MINUTES)) if failed >= LOCK_AFTER else None
            conn.execute("UPDATE staff SET failed_count = %s, locked_until = %s WHERE name = %s", (failed, lock, name))
        return (lock,)

    def _release(self, name: str, reserved: tuple[str | None]) -> None:
        with self.center.db.transaction() as conn:
            conn.execute("UPDATE staff SET failed_count = GREATEST(failed_count - 1, 0) WHERE name = %s", (name,))
            if reserved[0] is not None:
                conn.execute("UPDATE staff SET locked_until = NULL WHERE name = %s AND locked_until = %s", (name, reserved[0]))

    def _settle(self, name: str, good: bool) -> tuple[str, str | None]:
        now = self.center.clock.now()
        stamp = utc_timestamp(now)
        with self.center.db.transaction() as conn:
            if not good:
                return "wrong", None  # counted when reserved; the lock, if this one reached it, stands
            conn.execute("UPDATE staff SET failed_count = 0, locked_until = NULL WHERE name = %s", (name,))
            token = secrets.token_urlsafe(32)
            conn.execute("INSERT INTO staff_sessions (token_hash, name, created, last_seen) VALUES (%s, %s, %s, %s)",
                         (_hash(token), name, stamp, stamp))
        return "ok", token

    def session_name(self, token: str | None) -> str | None:
        """The staff name of a live session (idle 30 min or 12 h old: ended)."""
        if not token:
            return None
        now = self.center.clock.now()
        row = self.center.db.one(
            """SELECT s.name, s.created, s.last_seen, s.revoked, t.disabled FROM staff_sessions s JOIN staff t ON t.name = s.name
               WHERE s.token_hash = %s""", (_hash(token),))
        if row is None or row[3] or row[4]:
            return None
        if now - _parse(row[1]) > ABSOLUTE or now - _parse(row[2]) > IDLE:
            self.logout(token, "timeout")
            return None
        if now - _parse(row[2]) > timedelta(seconds=30):
            with self.center.db.transaction() as conn:
                conn.execute("UPDATE staff_sessions SET last_seen = %s WHERE token_hash = %s", (utc_timestamp(now), _hash(token)))
        return str(row[0])

    def logout(self, token: str, reason: str = "logout") -> None:
        with self.center.db.transaction() as conn:
            conn.execute("UPDATE staff_sessions SET revoked = %s, revoked_reason = %s WHERE token_hash = %s AND revoked IS NULL",
                         (utc_timestamp(self.center.clock.now()), reason, _hash(token)))

    def _end_all(self, conn: Any, name: str, reason: str) -> None:
        conn.execute("UPDATE staff_sessions SET revoked = %s, revoked_reason = %s WHERE name = %s AND revoked IS NULL",
                     (utc_timestamp(self.center.clock.now()), reason, name))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False
