"""The systemd units: `systemd-analyze verify` with no warnings, and the offline security
exposure within the thresholds (web and sync ≤ 3.0, devices ≤ 5.0, recorder ≤ 5.0).

verify checks that ExecStart exists, so the units are checked with their ExecStart pointed at
this checkout's installed `appliance` script; everything else is the shipped file."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import APPLIANCE

UNITS = Path(__file__).parent.parent / "systemd"
SHIPPED_EXEC = "/opt/site-appliance/.venv/bin/appliance"
THRESHOLDS = {"web": 3.0, "sync": 3.0, "devices": 5.0, "recorder": 5.0}


@pytest.fixture(scope="module")
def unit_dir(tmp_path_factory):
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing: `make test` installs Debian's systemd"
    out = tmp_path_factory.mktemp("units")
    for unit in UNITS.iterdir():
        text = unit.read_text()
        if unit.suffix == ".service":
            assert SHIPPED_EXEC in text
        (out / unit.name).write_text(text.replace(SHIPPED_EXEC, APPLIANCE))
    return out


def test_every_service_has_a_unit_and_the_target_wants_them():
    target = (UNITS / "appliance.target").read_text()
    for name in THRESHOLDS:
        assert (UNITS / f"appliance-{name}.service").exists()
        assert f"appliance-{name}.service" in target


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.iterdir()))
def test_systemd_analyze_verify_has_no_warnings(unit_dir, unit):
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit_dir / unit)], capture_output=True, text=True, cwd=unit_dir
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "" and proc.stderr.strip() == "", proc.stderr


@pytest.mark.parametrize("service, threshold", sorted(THRESHOLDS.items()))
def test_security_exposure_within_threshold(unit_dir, service, threshold):
    unit = unit_dir / f"appliance-{service}.service"
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--threshold={int(threshold * 10)}", str(unit)],
        capture_output=True,
        text=True,
        cwd=unit_dir,
    )
    m = re.search(r"Overall exposure level for .*: (\d+\.\d)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    assert float(m.group(1)) <= threshold, proc.stdout
    assert proc.returncode == 0


@pytest.mark.parametrize("service", sorted(THRESHOLDS))
def test_units_are_notify_with_watchdog_and_run_the_matching_command(service):
    text = (UNITS / f"appliance-{service}.service").read_text()
    command = {"web": "serve", "recorder": "record"}.get(service, service)
    assert "Type=notify" in text and re.search(r"^WatchdogSec=\d+", text, re.M)
    assert f"{SHIPPED_EXEC} {command} --data" in text
    assert "ProtectSystem=strict" in text and "NoNewPrivileges=yes" in text


def test_only_the_devices_unit_reaches_serial_ports():
    for service in THRESHOLDS:
        text = (UNITS / f"appliance-{service}.service").read_text()
        assert ("DeviceAllow=char-ttyUSB rw" in text) == (service == "devices")
