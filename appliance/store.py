"""The SQLite store: one database file in WAL mode, named migrations, one writer per process.

Writes go through `Store.transaction()`, which takes the process's writer lock and SQLite's
write lock up front (``BEGIN IMMEDIATE``) so that reading the journal head and appending after
it can never race another process. Commits are ``synchronous=FULL``: when `transaction()`
returns, the change and its journal record are on disk.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance.migrations import migrations


class StoreError(RuntimeError):
    """The database cannot be opened or written (full disk, locked, damaged)."""


def connect(path: Path, busy_timeout_ms: int, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Freed pages are zeroed, so deleted rows leave no copy behind in the file.
        conn.execute("PRAGMA secure_delete = ON")
    return conn


class Store:
    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000, create: bool = False, schema: Any = None) -> None:
        if not create and not path.exists():
            raise StoreError(f"{path}: no database (run 'appliance init')")
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        try:
            self._conn = connect(path, busy_timeout_ms)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open database: {exc}") from exc
        self.db = sqlite_utils.Database(self._conn)
        self.schema = schema if schema is not None else migrations  # the center has its own
        self._lock = threading.RLock()
        self._local = threading.local()
        self._closed = False

    def migrate(self) -> list[str]:
        """Apply pending named migrations; return their names."""
        with self._lock:
            pending = [m.name for m in self.schema.pending(self.db)]
            self.schema.apply(self.db)
            return pending

    def pending_migrations(self) -> list[str]:
        return [m.name for m in self.schema.pending(self.db)]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable write. The block gets the writer connection. Inside another
        transaction of the same thread it is a savepoint: its writes are undone alone when its
        block raises, and made durable with the outer transaction (the remote committee applies
        a venue's action this way, journaling the refusal when the action is refused)."""
        with self._lock:
            conn = self._conn
            if getattr(self._local, "depth", 0):
                yield from self._savepoint(conn)
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"cannot start a write: {exc}") from exc
            self._local.depth = 1
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._local.depth = 0
            try:
                started = time.perf_counter()
                conn.execute("COMMIT")
                # The durable commit's own cost (the fsync), for this thread's last write: the
                # gate-tap benchmark separates it from the software around it.
                self._local.last_commit_s = time.perf_counter() - started
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"commit failed, nothing was written: {exc}") from exc

    def _savepoint(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        self._local.depth += 1
        name = f"nested_{self._local.depth}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # (after a full disk or an I/O error SQLite has rolled back the whole write)
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        else:
            conn.execute(f"RELEASE {name}")
        finally:
            self._local.depth -= 1

    def in_write(self) -> bool:
        """Whether the calling thread is inside `transaction()` (a nested one is a savepoint)."""
        return bool(getattr(self._local, "depth", 0))

    def last_commit_s(self) -> float | None:
        """How long the calling thread's last commit took (None before its first)."""
        return getattr(self._local, "last_commit_s", None)

    @contextmanager
    def within(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """The caller's transaction when it passes one, else a new one: for functions that are
        a whole write on their own and also a part of a larger one."""
        if conn is not None:
            yield conn
        else:
            with self.transaction() as own:
                yield own

    def reader(self) -> sqlite3.Connection:
        """A read connection for the calling thread (WAL readers never block the writer)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, self.busy_timeout_ms)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def get_meta(self, key: str) -> str | None:
        row = self.reader().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
