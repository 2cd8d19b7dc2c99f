"""A local center for the demo (``sync.demo_center``, set by ``make run``): the reference center
served in the appliance's own process on a loopback port, the site enrolled with it on first
start and pointed at its new port on every start, so a newcomer sees the journal acknowledged
and the console's pending count fall. Never on a venue's appliance: the province runs the
center."""

from __future__ import annotations

import threading
from typing import Any

from cheroot import wsgi

from appliance.site import Site
from sync.agent import enroll
from sync.center import Center, create_center_app


DEMO_STAFF = ("demo", "demo-center-2026")


class DemoCenter:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.center = Center(site.data_dir / "demo-center")
        self.server: Any = None
        self.thread: threading.Thread | None = None

    def start(self) -> str:
        self.server = wsgi.Server(("127.0.0.1", 0), create_center_app(self.center), numthreads=4, server_name="demo-center")
        self.server.prepare()
        url = f"http://127.0.0.1:{self.server.bind_addr[1]}"
        if not self.center.store.reader().execute("SELECT 1 FROM staff WHERE name = 'demo'").fetchone():
            self.center.set_staff(*DEMO_STAFF)  # the demo's provincial staff login (docs/sync-protocol.md)
        self.thread = threading.Thread(target=self.server.serve, name="demo-center", daemon=True)
        self.thread.start()
        if self.site.store.get_meta("sync_center_url") is None:
            enroll(self.site, url, self.center.add_site(self.site.config.site.id))
        else:  # the same center (its key is kept in its folder) on this start's port
            with self.site.store.transaction() as conn:
                conn.execute("UPDATE meta SET value = ? WHERE key = 'sync_center_url'", (url,))
        return url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.thread is not None:
            self.thread.join(2)
