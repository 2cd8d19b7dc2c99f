"""Starting the services: the composition root (`appliance.runtime`) gets the layers above the
domain (web app, sync loop, demo center) from here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def composition(site: Any) -> dict[str, Any]:
    """What the composition root gets from the layers above the domain: the web app, the sync
    loop and the demo center (the domain imports none of them)."""
    from kiosk_ui import create_app
    from sync.relay import SyncWithRelay
    from cli.demo_center import DemoCenter

    return {"web_factory": create_app, "sync_factory": SyncWithRelay, "demo_center_factory": DemoCenter}


def run_services_of(data_dir: Path, config_path: Path | None, services: list[str], simulate_day: float = 0.0) -> None:
    """``simulate_day``: the paced demo day's speed (0: none)."""
    from appliance.logs import setup_logging
    from appliance.runtime import run_services
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        setup_logging(site.config)
        if len(services) > 1:  # 'appliance run': the [services] switches apply; a single unit always runs
            services = [s for s in services if s == "web" or getattr(site.config.services, s)]
        code = run_services(site, services, simulate_day=simulate_day, **composition(site))
    sys.exit(code)
