"""Accounts (staff, supervisor, admin), password checks with lockout, and server-side web
sessions. Kiosk devices are in `appliance.kiosks`.

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
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance.clock import utc_timestamp
from appliance.personal import mask_name, refuse_personal_numbers
from appliance.site import Site
from appliance.throttle import AddressBudget, JournalThrottle

ROLES = ("staff", "supervisor", "admin")
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
    outcome: str  # ok | bad_password | locked | disabled | unknown_user | rate_limited | address_limited | busy
    user: User | None = None
    token: str | None = None


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
    """One per process: it holds the bounded slots for password checks and the throttles."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.cfg = site.config.web
        # Failures that cost the attacker nothing (an unknown name, a locked account) are
        # journaled at most once a minute per account or address, with a count of those left out.
        self._throttle = JournalThrottle(site.clock.monotonic)
        self._address_budget = AddressBudget(site.clock.monotonic, self.cfg.login_attempts_per_minute)
        self._slots = threading.BoundedSemaphore(self.cfg.login_concurrency)

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
        refuse_personal_numbers(username, "username")
        _check_password_strength(password)
        password_hash = _hasher.hash(password)  # never inside the write transaction
        with self.site.store.transaction() as conn:
            if self._row(conn, username):
                raise AccountError(f"user {username!r} already exists")
            cur = conn.execute(
                "INSERT INTO users (username, role, password_hash, created) VALUES (?, ?, ?, ?)",
                (username, role, password_hash, utc_timestamp(self.site.clock.now())),
            )
            self.site.journal.append(conn, "account.created", {"user_id": cur.lastrowid, "username": username, "role": role, "by": by})
        user = self.get(username)
        assert user is not None
        return user

    def set_password(self, username: str, password: str, *, by: str = "cli") -> None:
        _check_password_strength(password)
        password_hash = _hasher.hash(password)  # never inside the write transaction
        with self.site.store.transaction() as conn:
            row = self._require(conn, username)
            conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, row["id"]))
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
        """Check a password. The argon2 check never runs inside a write transaction (a flood of
        logins must not hold the database's write lock from the gates), at most
        ``web.login_concurrency`` run at once, and an address making more than
        ``web.login_attempts_per_minute`` attempts is refused before any check. An attempt is
        counted as a failure before its check starts, so a parallel burst gets no more tries
        than the lockout allows."""
        if not self._address_budget.take(remote):
            self._journal_refusal(remote, "address_limited")
            return LoginResult(False, "address_limited")
        row = self._row(self.site.store.reader(), username)
        if row is None:
            if not self._check_slot(self._burn_time):
                return LoginResult(False, "busy")
            self._journal_unknown(username, remote)
            return LoginResult(False, "unknown_user")
        reserved = self._reserve_attempt(username, remote)
        if isinstance(reserved, LoginResult):
            # Refused without a check (locked, disabled, rate limited, deleted): the same time as
            # a check anyway, so the answer's timing does not tell which names exist.
            return reserved if self._check_slot(self._burn_time) else LoginResult(False, "busy")
        user_id, attempt_id, password_hash, provisional_lock = reserved
        verdict: dict[str, Any] = {}

        def check() -> None:
            try:
                _hasher.verify(password_hash, password)
                verdict["good"] = True
                if _hasher.check_needs_rehash(password_hash):
                    verdict["rehash"] = _hasher.hash(password)
            except (VerificationError, InvalidHashError):
                verdict["good"] = False

        if not self._check_slot(check):
            self._release_attempt(user_id, attempt_id, provisional_lock)  # no check ran: not a try
            return LoginResult(False, "busy")
        return self._settle_attempt(user_id, attempt_id, verdict, remote)

    def _check_slot(self, check: Any) -> bool:
        """Run an argon2 check when one of the bounded slots frees within 10 s."""
        if not self._slots.acquire(timeout=10):
            return False
        try:
            check()
        finally:
            self._slots.release()
        return True

    def _reserve_attempt(self, username: str, remote: str) -> LoginResult | tuple[int, int, str, str | None]:
        """Short write: refuse a disabled, locked or rate-limited account, else count this
        attempt as a failure until its check proves otherwise. The attempt that reaches the
        lockout locks the account at once, provisionally (``locked_until``, returned): attempts
        in parallel with it are refused, its success clears the lock, and a check that never
        settles (the process killed) leaves a lock that ends by itself, never a permanent one."""
        now = self.site.clock.now()
        stamp = utc_timestamp(now)
        with self.site.store.transaction() as conn:
            row = self._row(conn, username)
            if row is None:  # deleted meanwhile
                return LoginResult(False, "unknown_user")
            user_id = row["id"]
            outcome, extra = None, {}
            if row["disabled"]:
                outcome = "disabled"
            elif row["locked_until"] and _parse(row["locked_until"]) > now:
                outcome, extra = "locked", {"locked_until": row["locked_until"]}
            else:
                hour_ago = utc_timestamp(now - timedelta(hours=1))
                recent = conn.execute(
                    "SELECT COUNT(*) FROM login_attempts WHERE user_id = ? AND ok = 0 AND checked = 1 AND at > ?",
                    (user_id, hour_ago),
                ).fetchone()[0]
                if recent >= self.cfg.max_failures_per_hour:
                    outcome = "rate_limited"
            if outcome is not None:
                conn.execute("INSERT INTO login_attempts (user_id, at, ok, checked, remote) VALUES (?, ?, 0, 0, ?)",
                             (user_id, stamp, remote))
                left_out = self._throttle.take(f"login:{outcome}:{user_id}")
                if left_out is not None:
                    self.site.journal.append(conn, "auth.login", {"outcome": outcome, "user_id": user_id, "username": row["username"],
                                                                  "role": row["role"], "remote": remote,
                                                                  "similar_attempts_not_journaled": left_out, **extra})
                return LoginResult(False, outcome)
            failures = (0 if row["locked_until"] else row["failed_count"]) + 1  # a lock that ended: a fresh count
            lock = utc_timestamp(now + timedelta(minutes=self.cfg.lockout_minutes)) if failures >= self.cfg.lockout_failures else None
            conn.execute("UPDATE users SET failed_count = ?, locked_until = ? WHERE id = ?", (failures, lock, user_id))
            cur = conn.execute("INSERT INTO login_attempts (user_id, at, ok, checked, remote) VALUES (?, ?, 0, 1, ?)",
                               (user_id, stamp, remote))
            return user_id, int(cur.lastrowid or 0), row["password_hash"], lock

    def _release_attempt(self, user_id: int, attempt_id: int, lock: str | None) -> None:
        """Undo a reservation whose check never ran (no slot freed in time): not counted."""
        with self.site.store.transaction() as conn:
            conn.execute("DELETE FROM login_attempts WHERE id = ?", (attempt_id,))
            conn.execute("UPDATE users SET failed_count = MAX(failed_count - 1, 0) WHERE id = ?", (user_id,))
            if lock is not None:
                conn.execute("UPDATE users SET locked_until = NULL WHERE id = ? AND locked_until = ?", (user_id, lock))

    def _settle_attempt(self, user_id: int, attempt_id: int, verdict: dict[str, Any], remote: str) -> LoginResult:
        """Short write: the check's outcome — a session, or the failure that may lock the account."""
        now = self.site.clock.now()
        stamp = utc_timestamp(now)
        token = None
        with self.site.store.transaction() as conn:
            row = conn.execute("SELECT username, role, failed_count, locked_until FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                return LoginResult(False, "unknown_user")
            payload = {"user_id": user_id, "username": row[0], "role": row[1], "remote": remote}
            if not verdict["good"]:
                failures, until = row[2], row[3]
                if failures >= self.cfg.lockout_failures and until:  # the provisional lock stands
                    self.site.journal.append(conn, "auth.login", {"outcome": "bad_password", **payload,
                                                                  "consecutive_failures": failures, "locked_until": until})
                else:
                    self.site.journal.append(conn, "auth.login", {"outcome": "bad_password", **payload,
                                                                  "consecutive_failures": failures})
                return LoginResult(False, "bad_password")
            if "rehash" in verdict:
                conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (verdict["rehash"], user_id))
            conn.execute("UPDATE users SET failed_count = 0, locked_until = NULL WHERE id = ?", (user_id,))
            conn.execute("UPDATE login_attempts SET ok = 1 WHERE id = ?", (attempt_id,))
            token = secrets.token_urlsafe(32)
            conn.execute(
                "INSERT INTO web_sessions (token_hash, user_id, created, last_seen) VALUES (?, ?, ?, ?)",
                (_token_hash(token), user_id, stamp, stamp),
            )
            self.site.journal.append(conn, "auth.login", {"outcome": "ok", **payload})
        return LoginResult(True, "ok", self.get_by_id(user_id), token)

    def _journal_unknown(self, username: str, remote: str) -> None:
        """An unknown username: journaled as a keyed token, at most once a minute per address
        (and ``JOURNAL_CAP_PER_MINUTE`` in all), with the count of those left out since."""
        left_out = self._throttle.take(f"login:unknown:{remote}")
        if left_out is None:
            return
        token = self.site.personal.token("auth.unknown_username", username)
        with self.site.store.transaction() as conn:
            self.site.journal.append(conn, "auth.login", {
                "outcome": "unknown_user", "username_token": token, "username_masked": mask_name(username[:32]),
                "remote": remote, "similar_attempts_not_journaled": left_out})

    def _journal_refusal(self, remote: str, outcome: str) -> None:
        left_out = self._throttle.take(f"login:{outcome}:{remote}")
        if left_out is not None:
            with self.site.store.transaction() as conn:
                self.site.journal.append(conn, "auth.login", {"outcome": outcome, "remote": remote,
                                                              "similar_attempts_not_journaled": left_out})

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
