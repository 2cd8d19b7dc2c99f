"""A private PostgreSQL cluster in a folder, for `make run` (the demo center) and `make test`:
``initdb`` once, then ``pg_ctl start`` on a loopback port, stopped with the process that
started it. Debian's PostgreSQL (``/usr/lib/postgresql/<version>/bin``) or whatever ``pg_ctl``
is on the PATH.

PostgreSQL refuses to run as root. Run as root (a fresh CI machine), the cluster runs as the
unprivileged ``nobody`` user instead: the folder is given to it, and every folder above must
let it through (``o+x``), or this stops with one clear line.

Never a province's database: production runs on a managed or replicated PostgreSQL named by
its connection string in ``center.toml`` (docs/center.md).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path


class ClusterError(RuntimeError):
    pass


def pg_bin(tool: str) -> str:
    """The PostgreSQL server tool ``tool`` (initdb, pg_ctl): on the PATH, else Debian's newest."""
    found = shutil.which(tool)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), key=lambda p: int(Path(p).parts[-3]))
    if not candidates:
        raise ClusterError(f"{tool} not found: install PostgreSQL (Debian: apt-get install postgresql)")
    return candidates[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateCluster:
    """``folder/data`` holds the cluster, ``folder/postgresql.log`` its log. ``durable=False``
    (tests only) turns fsync off: a test does not survive a power cut anyway."""

    def __init__(self, folder: Path, *, durable: bool = True, max_connections: int = 200) -> None:
        self.folder = folder.resolve()
        self.data = self.folder / "data"
        self.durable, self.max_connections = durable, max_connections
        self.port = 0
        self._user: pwd.struct_passwd | None = pwd.getpwnam("nobody") if os.geteuid() == 0 else None

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []} if self._user else {}
        result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, cwd=self.folder,
                                env={**os.environ, "LC_ALL": "C.UTF-8"}, **kwargs)  # type: ignore[call-overload]
        if check and result.returncode != 0:
            raise ClusterError(f"{Path(args[0]).name} failed: {(result.stderr or result.stdout).strip()[-800:]}")
        return result

    def _give_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._user is None:
            return
        for parent in [*reversed(self.folder.parents)]:
            if parent.stat().st_mode & 0o001 == 0:
                raise ClusterError(f"PostgreSQL runs as 'nobody' here (it refuses root) and cannot pass {parent} "
                                   f"(chmod o+x {parent}, or put the data folder elsewhere)")
        os.chown(self.folder, self._user.pw_uid, self._user.pw_gid)

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def start(self) -> str:
        """Start (initdb first when new); returns the connection URL of the ``postgres`` role."""
        self._give_folder()
        if not self.initialised():
            self._run(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8")
        if self.running():  # left running by a process killed without its stop (kill -9): start it afresh
            self.stop()
        self.port = free_port()
        self._pg_ctl_start()
        return self.url()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database in the cluster; returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def running(self) -> bool:
        return self._run(pg_bin("pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def stop(self, mode: str = "fast") -> None:
        if self.initialised() and self.running():
            self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self) -> None:
        """Stop and start again on the same port (the reliability tests' database restart)."""
        self.stop()
        deadline = time.monotonic() + 30
        while True:  # the old postmaster may hold the port for a moment
            try:
                self._pg_ctl_start()
                return
            except ClusterError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _pg_ctl_start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
                   f"-c max_connections={self.max_connections} -c shared_buffers=128MB")
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "postgresql.log"), "-o", options,
                  "-w", "-t", "60", "start")
