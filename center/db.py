"""The center's PostgreSQL: a pool of connections (psycopg 3, psycopg_pool) shared by a worker's
threads, a transaction per change, and the schema brought up to date by Alembic
(`center/migrations/`, run once by the process that starts the workers, under an advisory lock
so two starting at once do not both migrate).

Every worker process has its own pool; PostgreSQL is the only state the workers share besides
the footage store. A connection broken by a database restart is noticed when it is taken from
the pool (``check_connection``) and replaced; a request caught mid-transaction fails with 503
and the site sends its batch again at its next round (nothing half-applied: the transaction
rolled back).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DatabaseError = psycopg.Error
Unavailable = psycopg.OperationalError


class Database:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, name: str = "center") -> None:
        self.url = url
        self.pool = ConnectionPool(url, min_size=min_size, max_size=max_size, kwargs={"autocommit": True},
                                   check=ConnectionPool.check_connection, max_idle=120, timeout=30, name=name, open=True)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection inside one transaction: committed when the block ends, rolled back if
        it raises."""
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def reader(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for several reads (each statement its own snapshot)."""
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An advisory lock named ``name``, across every worker process, for the block: a
        session-level lock on a connection of its own (no transaction stays open while the block
        does slow work; the lock goes with the connection if the worker dies). Callers must
        still check what they change (the lock is lost if the database restarts)."""
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (name,))
            try:
                yield
            finally:
                try:
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (name,))
                except psycopg.Error:
                    pass  # the connection is gone, and the lock with it

    @contextmanager
    def try_lock(self, name: str) -> Iterator[bool]:
        """`lock`, without waiting: yields whether it was taken (someone else holds it: False)."""
        with self.pool.connection() as conn:
            taken = bool(conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (name,)).fetchone()[0])
            try:
                yield taken
            finally:
                if taken:
                    try:
                        conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (name,))
                    except psycopg.Error:
                        pass

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        with self.pool.connection() as conn:
            return conn.execute(sql, args).fetchone()

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self.pool.connection() as conn:
            return conn.execute(sql, args).fetchall()

    def value(self, sql: str, args: Sequence[Any] = ()) -> Any:
        row = self.one(sql, args)
        return row[0] if row else None

    def close(self) -> None:
        self.pool.close()


def many(conn: psycopg.Connection[Any], sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One statement for many rows (psycopg pipelines them: one round trip, not one per row)."""
    if rows:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)


def sqlalchemy_url(url: str) -> str:
    """Alembic speaks SQLAlchemy: the same URL with the psycopg 3 dialect named."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError("the database is named by a postgresql:// URL")


def migrate(url: str) -> str:
    """Bring the schema to the newest revision; returns it. A database that cannot be reached
    raises `Unavailable` (psycopg's), whatever Alembic's engine said."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import DBAPIError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = sqlalchemy_url(url)
    try:
        command.upgrade(config, "head")
    except DBAPIError as exc:
        first = str(exc.orig or exc).strip().splitlines()
        raise Unavailable(first[0] if first else "the database refused the migration") from exc
    return str(ScriptDirectory.from_config(config).get_current_head())
