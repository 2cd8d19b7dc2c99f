"""Shared fixtures: an initialised site in a temporary data directory, and ways to run the
real ``appliance`` command (in-process through click, or as a subprocess)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from appliance.site import init_site, open_site

from tests.helpers import SITE_ID, SITE_NAME


@pytest.fixture(scope="session", autouse=True)
def postgresql_for_demo_centers():
    """Every demo center a test starts (in this process or in an `appliance run` it spawns)
    creates its database in the tests' one private cluster instead of running a cluster of
    its own (tests/pg.py)."""
    from tests.pg import cluster

    os.environ["APPLIANCE_DEMO_CENTER_SERVER"] = cluster().url()
    os.environ["APPLIANCE_SYNC__DEMO_PROVINCE"] = "0"  # (tests/test_center_simulation.py makes a province on purpose)
    yield


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    init_site(path, SITE_ID, SITE_NAME)
    return path


@pytest.fixture
def site(data_dir: Path):
    s = open_site(data_dir)
    yield s
    s.close()


@pytest.fixture
def cli():
    """Run an ``appliance`` command in-process; returns (exit code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


PASSWORDS = {"staff": "staff-password-1", "supervisor": "supervisor-password-1", "admin": "admin-password-1"}


@pytest.fixture
def web_site(site):
    """A site with one account per role and one enrolled gate kiosk."""
    from appliance.accounts import Accounts
    from appliance.kiosks import Kiosks

    accounts = Accounts(site)
    for role, password in PASSWORDS.items():
        accounts.add(f"{role}1", role, password)
    site.kiosk_code = Kiosks(site).add("gate-1", "gate")
    return site


@pytest.fixture
def app(web_site):
    from kiosk_ui import create_app

    app = create_app(web_site)
    yield app
    app.extensions["live"].stop()


@pytest.fixture
def login(app, web_site):
    """login(role) → a test client acting as that role ('anonymous' and 'kiosk' too)."""
    from tests.helpers import csrf_token

    enrolled = {}

    def make(role: str):
        client = app.test_client()
        if role == "kiosk":
            if "cookie" not in enrolled:
                page = client.get("/kiosk/enrol")
                resp = client.post("/kiosk/enrol", data={"code": web_site.kiosk_code, "csrf_token": csrf_token(page)})
                assert resp.status_code == 302, resp.get_data(as_text=True)
                enrolled["cookie"] = client.get_cookie("appliance_kiosk").value
            else:
                client.set_cookie("appliance_kiosk", enrolled["cookie"])
        elif role != "anonymous":
            page = client.get("/login")
            resp = client.post("/login", data={"username": f"{role}1", "password": PASSWORDS[role],
                                               "csrf_token": csrf_token(page)})
            assert resp.status_code == 302, resp.get_data(as_text=True)
        return client

    return make


# `make fuzz` runs the codec properties with many more examples.
from hypothesis import HealthCheck as _HealthCheck  # noqa: E402
from hypothesis import settings as _settings  # noqa: E402

# A slow input generation on a busy 2-core CI box says nothing about the code under test: the
# properties are checked all the same (the examples are not fewer, only slower to make).
_settings.register_profile("default", suppress_health_check=[_HealthCheck.too_slow])
_settings.register_profile("fuzz", max_examples=20_000, deadline=None, suppress_health_check=[_HealthCheck.too_slow])
_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
