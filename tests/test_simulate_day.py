"""`appliance simulate day`: a venue day against the simulators, through the real drivers, the
access policy and the journal; the journal verifies afterwards."""

import json
import subprocess
from pathlib import Path

from tests.helpers import APPLIANCE, json_line, run_appliance

DEMO_DEVICES = (Path(__file__).parent.parent / "demo" / "devices.toml").read_text(encoding="utf-8")


def test_a_simulated_day(data_dir):
    config = data_dir / "appliance.toml"
    config.write_text(config.read_text() + DEMO_DEVICES, encoding="utf-8")
    assert run_appliance("kiosk", "add", "PB1-1", "--purpose", "evaluation", "--reader", "pb1-desk-1", "--room", "PB1",
                         "--data", str(data_dir)).returncode == 0  # the demo's evaluation terminal, as make run adds it
    proc = subprocess.run([APPLIANCE, "simulate", "day", "--data", str(data_dir), "--speed", "100", "--seed", "7"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json_line(proc.stdout)
    assert summary["sessions"] == 3 and summary["people"] >= 30
    assert summary["decisions"]["role_not_allowed"] == 2  # the bidder and the agency staff at the evaluation gate
    assert summary["decisions"]["not_on_roster"] == 1  # a representative of the opening at the evaluation gate
    # the unapproved exit, and the collusion signal of the opening (two bids made with one lock)
    assert summary["decisions"]["exit_during_evaluation"] == 1 and summary["alarms_open"] == 2
    assert summary["decisions"]["exit_approved"] == 1 and summary["exit_approvals"] == 1
    # the planned experts and the second replacement sign; the first recuses (the other replacement never comes)
    assert summary["checkins"] == {"signed": 5, "conflict": 1}
    assert summary["assisted_checks"] == {"commitment_missing": 1, "allowed": 1}  # before and after the kiosk
    # Four experts after signing, the tenderer's representative (staff-assisted), the supervisor,
    # the witness, the expert back from the sample inspection.
    assert summary["decisions"]["allowed"] == 8
    # a locker for each signed expert; the gate opens for every entry and exit, the refused exit included
    assert summary["lockers_opened"] == 5 and summary["gate_pulses"] == 13
    assert summary["replacement_draws"] == 2  # the recusal and the no-show
    assert summary["registers"] == 3 and not summary["interrupted"]
    assert summary["bookings_scheduled"] == 3 and summary["fee_sheets"] == 1
    # the opening record signed off, and the committee's evaluation through to its signed report
    assert summary["openings_signed_off"] == 1 and summary["collusion_signals"] == 1 and summary["evaluation_reports"] == 1
    assert summary["terminal_sign_ins"] == 1  # the chair-to-be, by card at the terminal's desk reader
    # Played again the same day (make run restarted): new sessions, the day runs again.
    again = subprocess.run([APPLIANCE, "simulate", "day", "--data", str(data_dir), "--speed", "100", "--seed", "8"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    second = json_line(again.stdout)
    assert not second["interrupted"] and second["fee_sheets"] == 2 and second["checkins"]["signed"] >= 3
    assert second["terminal_sign_ins"] == 1
    # The seed draws the experts' scores: another seed, other results.
    results = [json.loads(line)["payload"]["results"] for line in run_appliance(
        "journal", "show", "--kind", "evaluation.results", "--data", str(data_dir)).stdout.splitlines()]
    assert len(results) == 2 and results[0] != results[1]
    verify = run_appliance("journal", "verify", "--data", str(data_dir))
    assert verify.returncode == 0 and json_line(verify.stdout)["ok"]


def test_needs_simulated_devices(data_dir):
    proc = subprocess.run([APPLIANCE, "simulate", "day", "--data", str(data_dir), "--speed", "100"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "devices.simulate is off" in proc.stderr


def test_a_speed_that_is_not_a_positive_finite_number_is_refused(data_dir):
    for absurd in ("0", "-3", "nan", "inf", "100000"):
        proc = subprocess.run([APPLIANCE, "simulate", "day", "--data", str(data_dir), "--speed", absurd],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "--speed" in proc.stderr and "Traceback" not in proc.stderr, (absurd, proc.stderr)
