"""Accounts (staff, supervisor, admin), password checks with lockout, server-side web sessions,
and registered kiosk devices.

* Passwords are argon2id hashes (argon2-cffi), rehashed on login when the parameters change.
* ``lockout_failures`` consecutive failures lock an account for ``lockout_minutes``; at most
  ``max_failures_per_hour`` password checks may fail per account per hour, whatever admins
  unlock in between.
* A web session is a random token: the browser's cookie holds it, the database only its
  SHA-256, so a copied database opens no session. Sessions end on logout, idle timeout,
  absolute timeout, password change and account disabling — on the server.
* Every login success and failure is journaled (``auth.login``), without the password and with
  an unknown username only as a keyed token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance.clock import utc_timestamp
from appliance.personal import mask_name
from appliance.site import Site

ROLES = ("staff", "supervisor", "admin")
KIOSK_PURPOSES = ("gate", "evaluation")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password-used-for-timing")


class AccountError(ValueError):
    """A request about accounts that cannot be done (unknown user, weak password, ...)."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    disabled: bool
    lang: str | None
    locked_until: str | None


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    outcome: str  # ok | bad_password | locked | disabled | unknown_user | rate_limited
    user: User | None = None
    token: str | None = None


@dataclass(frozen=True)
class Kiosk:
    id: int
    name: str
    purpose: str
    lang: str | None
    reader: str | None = None  # the ID card reader whose taps this kiosk shows (its gate, or its desk)
    room: str | None = None  # evaluation terminals: the room it stands in


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _user(row: Any) -> User:
    return User(row["id"], row["username"], row["role"], bool(row["disabled"]), row["lang"], row["locked_until"])


def _check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


class Accounts:
    # Attempts that cost the attacker nothing (a locked account, a bad kiosk code) are journaled
    # at most once a minute per account or address, with a count of those left out.
    THROTTLE_S = 60.0

    def __init__(self, site: Site) -> None:
        self.site = site
        self.cfg = site.config.web
        self._throttle: dict[str, tuple[float, int]] = {}

    def _throttled(self, key: str) -> int | None:
        """None: do not journal this one; else how many were left out since the last record."""
        now = self.site.clock.monotonic()
        last, skipped = self._throttle.get(key, (-1e9, 0))
        if now - last < self.THROTTLE_S:
            self._throttle[key] = (last, skipped + 1)
            return None
        self._throttle[key] = (now, 0)
        return skipped

    # -- users -------------------------------------------------------------------------------

    def _row(self, conn: Any, username: str) -> Any:
        row = conn.execute(
            "SELECT id, username, role, disabled, lang, locked_until, password_hash, failed_count FROM users WHERE username = ?",
            (username,),
        ).fetchone()
        if row is None:
            return None
        keys = ("id", "username", "role", "disabled", "lang", "locked_until", "password_hash", "failed_count")
        return dict(zip(keys, tuple(row), strict=True))

    def get(self, username: str) -> User | None:
        row = self._row(self.site.store.reader(), username)
        return _user(row) if row else None

    def get_by_id(self, user_id: int) -> User | None:
        row = self.site.store.reader().execute(
            "SELECT id, username, role, disabled, lang, locked_until FROM users WHERE id = ?", (user_id,)
        ).fetchone()
        return _user(row) if row else None

    def list(self) -> list[User]:
        rows = self.site.store.reader().execute(
            "SELECT id, username, role, disabled, lang, locked_until FROM users ORDER BY username"
        )
        return [_user(r) for r in rows]

    def add(self, username: str, role: str, password: str, *, by: str = "cli") -> User:
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        if not username or len(username) > 64 or not username.replace("_", "").replace(".", "").replace("-", "").isalnum():
            raise AccountError("username: 1–64 letters, digits, '.', '_' or '-'")
        _check_password_strength(password)
        with self.site.store.transaction() as conn:
            if self._row(conn, username):
                raise AccountError(f"user {username!r} already exists")
            cur = conn.execute(
                "INSERT INTO users (username, role, password_hash, created) VALUES (?, ?, ?, ?)",
                (username, role, _hasher.hash(password), utc_timestamp(self.site.clock.now())),
            )
            self.site.journal.append(conn, "account.created", {"user_id": cur.lastrowid, "username": username, "role": role, "by": by})
        user = self.get(username)
        assert user is not None
        return user

    def set_password(self, username: str, password: str, *, by: str = "cli") -> None:
        _check_password_strength(password)
        with self.site.store.transaction() as conn:
            row = self._require(conn, username)
            conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (_hasher.hash(password), row["id"]))
            self._revoke_all(conn, row["id"], "password_changed")
            self.site.journal.append(conn, "account.password_changed", {"user_id": row["id"], "username": username, "by": by})

    def set_disabled(self, username: str, disabled: bool, *, by: str = "cli") -> None:
        with self.site.store.transaction() as conn:
            row = self._require(conn, username)
            conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), row["id"]))
            if disabled:
                self._revoke_all(conn, row["id"], "account_disabled")
            kind = "account.disabled" if disabled else "account.enabled"
            self.site.journal.append(conn, kind, {"user_id": row["id"], "username": username, "by": by})

    def unlock(self, username: str, *, by: str = "cli") -> None:
        with self.site.store.transaction() as conn:
            row = self._require(conn, username)
            conn.execute("UPDATE users SET locked_until = NULL, failed_count = 0 WHERE id = ?", (row["id"],))
            self.site.journal.append(conn, "account.unlocked", {"user_id": row["id"], "username": username, "by": by})

    def set_language(self, user_id: int, lang: str) -> None:
        with self.site.store.transaction() as conn:
            conn.execute("UPDATE users SET lang = ? WHERE id = ?", (lang, user_id))

    def _require(self, conn: Any, username: str) -> dict[str, Any]:
        row = self._row(conn, username)
        if row is None:
            raise AccountError(f"no user {username!r}")
        return row

    # -- logging in --------------------------------------------------------------------------

    def login(self, username: str, password: str, remote: str = "") -> LoginResult:
        now = self.site.clock.now()
        stamp = utc_timestamp(now)
        with self.site.store.transaction() as conn:
            row = self._row(conn, username)
            if row is None:
                self._burn_time()
                token = self.site.personal.token("auth.unknown_username", username)
                self.site.journal.append(
                    conn,
                    "auth.login",
                    {"outcome": "unknown_user", "username_token": token, "username_masked": mask_name(username[:32]), "remote": remote},
                )
                return LoginResult(False, "unknown_user")
            user_id = row["id"]

            def attempt(ok: bool, checked: bool) -> None:
                conn.execute(
                    "INSERT INTO login_attempts (user_id, at, ok, checked, remote) VALUES (?, ?, ?, ?, ?)",
                    (user_id, stamp, int(ok), int(checked), remote),
                )

            def journal(outcome: str, **extra: Any) -> None:
                if outcome in ("disabled", "locked", "rate_limited"):
                    left_out = self._throttled(f"login:{outcome}:{user_id}")
                    if left_out is None:
                        return
                    extra["similar_attempts_not_journaled"] = left_out
                payload = {"outcome": outcome, "user_id": user_id, "username": row["username"], "role": row["role"], "remote": remote}
                self.site.journal.append(conn, "auth.login", {**payload, **extra})

            if row["disabled"]:
                attempt(False, False)
                journal("disabled")
                return LoginResult(False, "disabled")
            if row["locked_until"] and _parse(row["locked_until"]) > now:
                attempt(False, False)
                journal("locked", locked_until=row["locked_until"])
                return LoginResult(False, "locked")
            hour_ago = utc_timestamp(now - timedelta(hours=1))
            recent = conn.execute(
                "SELECT COUNT(*) FROM login_attempts WHERE user_id = ? AND ok = 0 AND checked = 1 AND at > ?",
                (user_id, hour_ago),
            ).fetchone()[0]
            if recent >= self.cfg.max_failures_per_hour:
                attempt(False, False)
                journal("rate_limited")
                return LoginResult(False, "rate_limited")
            try:
                _hasher.verify(row["password_hash"], password)
                good = True
            except (VerificationError, InvalidHashError):
                good = False
            if not good:
                attempt(False, True)
                failures = row["failed_count"] + 1
                if failures >= self.cfg.lockout_failures:
                    until = utc_timestamp(now + timedelta(minutes=self.cfg.lockout_minutes))
                    conn.execute("UPDATE users SET failed_count = 0, locked_until = ? WHERE id = ?", (until, user_id))
                    journal("bad_password", consecutive_failures=failures, locked_until=until)
                else:
                    conn.execute("UPDATE users SET failed_count = ? WHERE id = ?", (failures, user_id))
                    journal("bad_password", consecutive_failures=failures)
                return LoginResult(False, "bad_password")
            if _hasher.check_needs_rehash(row["password_hash"]):
                conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (_hasher.hash(password), user_id))
            conn.execute("UPDATE users SET failed_count = 0, locked_until = NULL WHERE id = ?", (user_id,))
            attempt(True, True)
            token = secrets.token_urlsafe(32)
            conn.execute(
                "INSERT INTO web_sessions (token_hash, user_id, created, last_seen) VALUES (?, ?, ?, ?)",
                (_token_hash(token), user_id, stamp, stamp),
            )
            journal("ok")
        user = self.get_by_id(user_id)
        return LoginResult(True, "ok", user, token)

    def confirm(self, username: str, password: str, *, role: str, remote: str = "") -> bool:
        """A second person confirms an action with their password (e.g. a supervisor confirming a
        suspension on the staff console). Same checks, lockout and journaling as a login; the
        session it would open is ended at once."""
        result = self.login(username, password, remote)
        if not result.ok or result.user is None or result.token is None:
            return False
        self._end(_token_hash(result.token), "confirmation_only")
        return result.user.role == role

    @staticmethod
    def _burn_time() -> None:
        # Same cost as a real check, so response time does not tell which usernames exist.
        try:
            _hasher.verify(_DUMMY_HASH, "wrong-password-for-timing")
        except VerificationError:
            pass

    # -- sessions ----------------------------------------------------------------------------

    def idle_limit(self, role: str) -> timedelta:
        minutes = self.cfg.idle_timeout_supervisor_min if role == "supervisor" else self.cfg.idle_timeout_staff_min
        return timedelta(minutes=minutes)

    def session_user(self, token: str, *, touch: bool = True) -> User | None:
        """The user of a live session, or None (and the session is ended) when it has expired."""
        now = self.site.clock.now()
        row = self.site.store.reader().execute(
            """SELECT s.token_hash, s.created, s.last_seen, s.revoked, u.id, u.username, u.role, u.disabled,
                      u.lang, u.locked_until
               FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?""",
            (_token_hash(token),),
        ).fetchone()
        if row is None or row["revoked"] or row["disabled"]:
            return None
        reason = None
        if now - _parse(row["created"]) > timedelta(hours=self.cfg.absolute_timeout_h):
            reason = "absolute_timeout"
        elif now - _parse(row["last_seen"]) > self.idle_limit(row["role"]):
            reason = "idle_timeout"
        if reason:
            self._end(row["token_hash"], reason)
            return None
        # Bookkeeping for the idle timeout, at most every 30 s per session.
        if touch and now - _parse(row["last_seen"]) > timedelta(seconds=30):
            with self.site.store.transaction() as conn:
                conn.execute("UPDATE web_sessions SET last_seen = ? WHERE token_hash = ?", (utc_timestamp(now), row["token_hash"]))
        return _user(row)

    def logout(self, token: str) -> None:
        self._end(_token_hash(token), "logout")

    def _end(self, token_hash: str, reason: str) -> None:
        with self.site.store.transaction() as conn:
            row = conn.execute(
                "SELECT user_id FROM web_sessions WHERE token_hash = ? AND revoked IS NULL", (token_hash,)
            ).fetchone()
            if row is None:
                return
            conn.execute(
                "UPDATE web_sessions SET revoked = ?, revoked_reason = ? WHERE token_hash = ?",
                (utc_timestamp(self.site.clock.now()), reason, token_hash),
            )
            self.site.journal.append(conn, "auth.session_ended", {"user_id": row[0], "reason": reason})

    def _revoke_all(self, conn: Any, user_id: int, reason: str) -> None:
        conn.execute(
            "UPDATE web_sessions SET revoked = ?, revoked_reason = ? WHERE user_id = ? AND revoked IS NULL",
            (utc_timestamp(self.site.clock.now()), reason, user_id),
        )

    # -- kiosks ------------------------------------------------------------------------------

    def add_kiosk(self, name: str, purpose: str = "gate", *, reader: str | None = None, room: str | None = None,
                  by: str = "cli") -> str:
        """Register a kiosk device; returns a one-time enrolment code valid for 24 hours. An
        evaluation terminal names its room (a room of the day plan) and, for sign-in by card, its
        desk reader."""
        if purpose not in KIOSK_PURPOSES:
            raise AccountError(f"purpose must be one of {', '.join(KIOSK_PURPOSES)}")
        if not name or len(name) > 64:
            raise AccountError("kiosk name: 1–64 characters")
        if room is not None and purpose != "evaluation":
            raise AccountError("only an evaluation terminal stands in a room")
        code = "-".join(secrets.token_hex(2).upper() for _ in range(3))
        now = self.site.clock.now()
        with self.site.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM kiosks WHERE name = ?", (name,)).fetchone():
                raise AccountError(f"kiosk {name!r} already exists")
            if reader is not None and conn.execute("SELECT 1 FROM kiosks WHERE reader = ?", (reader,)).fetchone():
                raise AccountError(f"reader {reader!r} already belongs to another kiosk")
            cur = conn.execute(
                "INSERT INTO kiosks (name, purpose, reader, room, code_hash, code_expires, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, purpose, reader, room, _token_hash(code), utc_timestamp(now + timedelta(hours=24)), utc_timestamp(now)),
            )
            self.site.journal.append(conn, "kiosk.registered", {"kiosk_id": cur.lastrowid, "name": name, "purpose": purpose,
                                                                "reader": reader, "room": room, "by": by})
        return code

    def enroll_kiosk(self, code: str, remote: str = "") -> tuple[Kiosk, str] | None:
        """Exchange a one-time code for the kiosk's long-lived device token."""
        now = self.site.clock.now()
        with self.site.store.transaction() as conn:
            row = conn.execute(
                "SELECT id, name, purpose, lang, code_expires FROM kiosks WHERE code_hash = ? AND disabled = 0",
                (_token_hash(code.strip().upper()),),
            ).fetchone()
            if row is None or _parse(row[4]) < now:
                left_out = self._throttled(f"enrol:{remote}")
                if left_out is not None:
                    self.site.journal.append(conn, "kiosk.enrolment_refused", {"reason": "unknown or expired code", "remote": remote,
                                                                               "similar_attempts_not_journaled": left_out})
                return None
            token = secrets.token_urlsafe(32)
            conn.execute(
                "UPDATE kiosks SET code_hash = NULL, code_expires = NULL, token_hash = ?, enrolled = ? WHERE id = ?",
                (_token_hash(token), utc_timestamp(now), row[0]),
            )
            self.site.journal.append(conn, "kiosk.enrolled", {"kiosk_id": row[0], "name": row[1]})
        return Kiosk(row[0], row[1], row[2], row[3]), token

    def kiosk_for(self, token: str) -> Kiosk | None:
        row = self.site.store.reader().execute(
            "SELECT id, name, purpose, lang, reader, room FROM kiosks WHERE token_hash = ? AND disabled = 0", (_token_hash(token),)
        ).fetchone()
        return Kiosk(row[0], row[1], row[2], row[3], row[4], row[5]) if row else None

    def kiosks(self) -> list[dict[str, Any]]:
        rows = self.site.store.reader().execute(
            "SELECT id, name, purpose, reader, room, lang, disabled, created, enrolled FROM kiosks ORDER BY name"
        )
        return [dict(r) for r in rows]

    def set_kiosk_language(self, kiosk_id: int, lang: str) -> None:
        with self.site.store.transaction() as conn:
            conn.execute("UPDATE kiosks SET lang = ? WHERE id = ?", (lang, kiosk_id))
