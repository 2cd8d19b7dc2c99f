"""A local center for the demo (``sync.demo_center``, set by ``make run``): the reference center
served in the appliance's own process on a loopback port, the site enrolled with it on first
start and pointed at its new port on every start, so a newcomer sees the journal acknowledged
and the console's pending count fall. Never on a venue's appliance: the province runs the
center."""

from __future__ import annotations

from typing import Any

from appliance.site import Site
from sync.agent import enroll
from sync.center import Center
from sync.center_accounts import CenterStaff
from sync.center_api import center_server


DEMO_STAFF = ("demo", "demo-center-2026")


class DemoCenter:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.center = Center(site.data_dir / "demo-center")
        self.server: Any = None

    def start(self) -> str:
        self.server = center_server(self.center, "127.0.0.1", 0, threads=4, name="demo-center")
        url = f"http://127.0.0.1:{self.server.prepare()}"
        if not self.center.store.reader().execute("SELECT 1 FROM staff WHERE name = 'demo'").fetchone():
            CenterStaff(self.center).set(*DEMO_STAFF)  # the demo's provincial staff login (docs/sync-protocol.md)
        self.server.start()
        if self.site.store.get_meta("sync_center_url") is None:
            enroll(self.site, url, self.center.add_site(self.site.config.site.id))
        else:  # the same center (its key is kept in its folder) on this start's port
            with self.site.store.transaction() as conn:
                conn.execute("UPDATE meta SET value = ? WHERE key = 'sync_center_url'", (url,))
        return url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
