"""A local center for the demo (``sync.demo_center``, set by ``make run``): the provincial center
served in the appliance's own process on a loopback port, the site enrolled with it on first
start and pointed at its new port on every start, so a newcomer sees the journal acknowledged
and the console's pending count fall. Never on a venue's appliance: the province runs the
center."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from appliance.site import Site
from center.accounts import CenterStaff
from center.api import center_server
from center.config import write as write_config
from center.core import Center
from center.pgcluster import PrivateCluster
from sync.agent import enroll

log = logging.getLogger(__name__)
DEMO_STAFF = ("demo", "demo-center-2026")
SERVER_ENV = "APPLIANCE_DEMO_CENTER_SERVER"  # a PostgreSQL server URL to use instead of a private cluster


def cluster_folder(data_dir: Path) -> Path:
    return data_dir.resolve().parent / f"{data_dir.resolve().name}-center-pg"


class DemoCenter:
    """The center (its key and secrets in ``<data>/demo-center``) with its own private
    PostgreSQL cluster in ``<data>-center-pg``, started and stopped with the appliance."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.folder = site.data_dir / "demo-center"
        # The test suite shares one cluster among its many demo centers (SERVER_ENV names it).
        self.server_url = os.environ.get(SERVER_ENV)
        # The cluster sits beside the site's data folder (mode 0700, which PostgreSQL, run as
        # 'nobody' under root, could not pass): data/demo → data/demo-center-pg.
        self.cluster = None if self.server_url else PrivateCluster(cluster_folder(site.data_dir))
        self.center: Any = None
        self.server: Any = None

    def start(self) -> str:
        import psycopg
        from psycopg import sql

        if self.cluster is not None:
            server, name = self.cluster.start(), "center"
        else:
            assert self.server_url is not None
            server = self.server_url
            name = "demo_" + hashlib.sha256(str(self.folder.resolve()).encode()).hexdigest()[:16]
        with psycopg.connect(server, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        write_config(self.folder, server.rsplit("/", 1)[0] + "/" + name, workers=1)  # this start's port
        self.center = Center(self.folder)
        self.server = center_server(self.center, "127.0.0.1", 0, threads=4, name="demo-center")
        url = f"http://127.0.0.1:{self.server.prepare()}"
        if not self.center.db.one("SELECT 1 FROM staff WHERE name = 'demo'"):
            CenterStaff(self.center).set(*DEMO_STAFF)  # the demo's provincial staff login (docs/center.md)
        self.server.start()
        if self.site.store.get_meta("sync_center_url") is None:
            enroll(self.site, url, self.center.add_site(self.site.config.site.id))
        else:  # the same center (its key is kept in its folder) on this start's port
            with self.site.store.transaction() as conn:
                conn.execute("UPDATE meta SET value = ? WHERE key = 'sync_center_url'", (url,))
        others = self.site.config.sync.demo_province
        if others:  # first start: a province to show; later starts: its venues keep in touch
            first = self.center.db.value("SELECT COUNT(*) FROM sites") < 2
            threading.Thread(target=self._province, args=(url, others, first), name="demo-province", daemon=True).start()
        return url

    def _province(self, url: str, others: int, first: bool) -> None:
        from cli.province import resync, simulate

        try:
            if first:
                result = simulate(self.center, url, self.folder / "venues", others, days=2, notes_per_day=40)
            else:
                result = resync(url, self.folder / "venues", others)
            log.info("demo province: %s simulated venues synced into the demo center (%s)", others, result)
        except Exception:  # the demo's extra venues only: the appliance goes on
            log.exception("the demo province could not be simulated")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.center is not None:
            self.center.db.close()
        if self.cluster is not None:
            self.cluster.stop()
