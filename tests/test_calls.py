"""Broadcast calls go where the called person is, and staff announce free text to the zones they
choose: checked input, masked personal numbers, and the day's history with where each played."""

from __future__ import annotations

import json

import pytest

from appliance.siteops.calls import CallError, announce, call_bidder, history
from appliance.siteops.plan import load_plan, parse_plan
from tests.helpers import make_id_number
from tests.test_site_operations import plan_text


@pytest.fixture
def planned(site):
    load_plan(site, parse_plan(plan_text()))
    return site


def test_a_bidder_is_called_where_bidders_wait_never_in_the_evaluation_area(planned):
    call = call_bidder(planned, "S-0922-02", "B1", "DY1", by="staff1")
    assert call["zones"] == ["public", "corridor"] and "evaluation" not in call["zones"]
    assert call["text"].endswith("代表到答疑室。") and call["zone_names"] == ["公共区", "答疑室走廊"]
    with pytest.raises(CallError):
        call_bidder(planned, "S-0922-02", "B9", "DY1", by="staff1")


def test_an_announcement_goes_to_the_chosen_zones_with_numbers_masked(planned):
    id_number = make_id_number()
    made = announce(planned, f"请身份证号{id_number}的专家到服务台", ["evaluation"], by="staff1")
    assert made["zones"] == ["evaluation"] and id_number not in made["text"] and id_number[-4:] in made["text"]
    row = planned.store.reader().execute("SELECT target, args FROM device_commands WHERE id = ?", (made["command"],)).fetchone()
    assert row[0] == "evaluation" and id_number not in row[1]
    for text, zones, field in (("", ["public"], "text"), ("很长" * 101, ["public"], "text"), ("通知", [], "zones"),
                               ("通知", ["parking"], "zones")):
        with pytest.raises(CallError, match=field):
            announce(planned, text, zones, by="staff1")


def test_the_days_history_says_where_each_call_played(planned):
    made = call_bidder(planned, "S-0922-02", "B1", "DY1", by="staff1")
    assert [(h["id"], h["state"]) for h in history(planned)] == [(made["command"], "queued")]
    planned.journal.record("announcement.played", {"id": f"cmd{made['command']}", "priority": "call", "text": made["text"],
                                                    "clip": None, "audio_sha256": "0" * 64, "duration_ms": 2000, "error": None,
                                                    "zones": ["public", "corridor"], "speakers": ["hall", "corridor"]})
    (entry,) = history(planned)
    assert entry["state"] == "played" and entry["speakers"] == ["hall", "corridor"] and entry["zones"] == ["公共区", "答疑室走廊"]
    assert json.dumps(entry, ensure_ascii=False)
