"""A province in a box: `appliance center simulate-province` makes real venues (their own keys,
signed journals, footage by ffmpeg), syncs them into the center concurrently, and leaves one
behind, one diverged and one silent for the grid to show."""

from __future__ import annotations

from center.core import Center
from center.ui import site_rows
from tests.helpers import json_line, run_appliance
from tests.pg import new_center_dir


def test_a_simulated_province_fills_the_grid(tmp_path):
    center_dir = new_center_dir(tmp_path / "center")
    done = run_appliance("center", "simulate-province", "--data", str(center_dir), "--sites", "5", "--days", "2",
                         "--notes-per-day", "10", timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json_line(done.stdout)
    assert result["venues"] == 5 and result["records"] > 5 * 2 * 10
    c = Center(center_dir)
    try:
        states = {r["id"]: r["state"] for r in site_rows(c)}
        assert states[result["behind"]] == "behind"
        assert states[result["diverged"]] == "diverged"
        assert states[result["silent"]] == "silent"
        assert len(states) == 5
        # Every venue's footage is held whole, and its venue alarm arrived as a record.
        assert c.db.value("SELECT COUNT(*) FROM media") == 5 * 2 * 2
        assert c.db.value("SELECT COUNT(*) FROM records WHERE kind = 'alarm.raised'") >= 2
        names = {r[0] for r in c.db.all("SELECT body FROM records WHERE seq = 1")}
        assert any("县公共资源交易中心" in n for n in names)
    finally:
        c.db.close()
