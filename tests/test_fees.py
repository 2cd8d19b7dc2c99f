"""Experts' fees: the rule by example, the daily cap, a session's sheet, sealed bank cards."""

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.clock import FixedClock
from appliance.config import FeeRuleConfig
from appliance.site import open_site
from appliance.siteops.fees import (
    FeeError, FeeInput, apply_daily_cap, extra_half_hours, fee_for, fee_sheet, finalize_sheet, is_holiday, luhn_ok,
    set_bank_card, yuan,
)
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from tests.venue import todays_plan

T0 = datetime(2026, 11, 23, 0, 30, tzinfo=timezone.utc)
RULE = FeeRuleConfig(base_hours=4, base_fee=500, extra_hour_fee=100, daily_cap=1500, holiday_multiplier_pct=150,
                     aborted_pct=50, recusal_fee=100)
CARD = "6222021234567890128"  # fictitious; passes the Luhn check


def worked(minutes, outcome="completed", holiday=False, rule=RULE):
    return fee_for(rule, FeeInput(1, "S1", outcome, T0, T0 + timedelta(minutes=minutes), holiday)).fee_fen


@pytest.mark.parametrize("minutes, rounding, fen", [
    (90, "started_hour", 50000),       # under the base hours: the base fee
    (240, "started_hour", 50000),      # exactly the base hours
    (241, "started_hour", 60000),      # a started hour counts whole
    (301, "started_hour", 70000),
    (241, "half_hour", 55000),         # a started half hour counts half
    (271, "half_hour", 60000),
    (299, "completed_hour", 50000),    # only completed hours
    (300, "completed_hour", 60000),
])
def test_time_based_fee(minutes, rounding, fen):
    assert worked(minutes, rule=RULE.model_copy(update={"rounding": rounding})) == fen


def test_holiday_termination_recusal_and_no_show():
    assert worked(300, holiday=True) == 90000                 # (500 + 100) × 150 %
    assert worked(301, outcome="terminated") == 35000         # half of 500 + 2 started hours
    assert fee_for(RULE, FeeInput(1, "S1", "recusal")).fee_fen == 10000
    assert fee_for(RULE, FeeInput(1, "S1", "no_show")).fee_fen == 0
    assert fee_for(RULE, FeeInput(1, "S1", "pending", T0)).fee_fen is None
    assert is_holiday(RULE.model_copy(update={"weekends_are_holidays": True}), date(2026, 11, 22))  # a Sunday
    assert is_holiday(RULE.model_copy(update={"holidays": [date(2026, 10, 1)]}), date(2026, 10, 1))
    assert not is_holiday(RULE, date(2026, 11, 22))


def test_daily_cap_cuts_the_later_sessions():
    morning = fee_for(RULE, FeeInput(1, "S1", "completed", T0, T0 + timedelta(hours=6)))  # 700
    afternoon = fee_for(RULE, FeeInput(1, "S2", "completed", T0 + timedelta(hours=7), T0 + timedelta(hours=13)))  # 700
    evening = fee_for(RULE, FeeInput(1, "S3", "completed", T0 + timedelta(hours=14), T0 + timedelta(hours=16)))  # 500
    capped = apply_daily_cap(RULE, [morning, afternoon, evening])
    assert [(c.fee_fen, c.capped_fen) for c in capped] == [(70000, 0), (70000, 0), (10000, 40000)]


@given(st.integers(0, 24 * 60), st.sampled_from(["started_hour", "half_hour", "completed_hour"]))
def test_more_time_never_pays_less_and_rounding_orders(minutes, rounding):
    rule = RULE.model_copy(update={"rounding": rounding})
    assert worked(minutes, rule=rule) <= worked(minutes + 1, rule=rule)
    halves = {r: extra_half_hours(minutes - 240, r) for r in ("started_hour", "half_hour", "completed_hour")}
    assert halves["completed_hour"] <= halves["half_hour"] <= halves["started_hour"]


def test_luhn_and_yuan():
    assert luhn_ok(CARD) and not luhn_ok(CARD[:-1] + "9")
    assert yuan(105050) == "1050.50" and yuan(None) == ""


def test_session_fee_sheet_with_sealed_bank_cards(data_dir):
    plan = todays_plan("test-county-01")
    start = datetime.fromisoformat(plan["sessions"][1]["start"])
    clock = FixedClock(start - timedelta(minutes=20))
    site = open_site(data_dir, clock=clock)
    try:
        load_plan(site, parse_plan(json.dumps(plan, ensure_ascii=False)))
        refs = dict(site.store.reader().execute("SELECT ref, person_id FROM person_refs").fetchall())
        experts = [e["person"] for e in plan["sessions"][1]["roster"] if e["role"] == "expert"]
        with site.store.transaction() as conn:
            conn.execute("INSERT INTO checkins (session, person_id, commitment_signed) VALUES ('S-0922-02', ?, ?)",
                         (refs[experts[0]], (start - timedelta(minutes=20)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")))
            conn.execute("INSERT INTO checkins (session, person_id, conflict_declared) VALUES ('S-0922-02', ?, 1)",
                         (refs[experts[1]],))
        change_state(site, "S-0922-02", "admitting", by="staff1")
        change_state(site, "S-0922-02", "in_progress", by="staff1")
        sheet = fee_sheet(site, "S-0922-02")
        assert not sheet["complete"]
        with pytest.raises(FeeError, match="still running"):
            finalize_sheet(site, "S-0922-02", by="staff1")
        clock.advance(timedelta(hours=5, minutes=10))  # signed in 20 min before; 5 h 10 min later it ends
        change_state(site, "S-0922-02", "completed", by="staff1")
        sheet = fee_sheet(site, "S-0922-02")
        lines = {line["person_id"]: line for line in sheet["lines"]}
        assert lines[refs[experts[0]]]["minutes"] == 310 and lines[refs[experts[0]]]["fee_fen"] == 70000  # 4 h + 2 started hours
        assert lines[refs[experts[1]]]["outcome"] == "recusal" and lines[refs[experts[1]]]["fee_fen"] == 10000
        assert all(lines[refs[e]]["outcome"] == "no_show" and lines[refs[e]]["fee_fen"] == 0 for e in experts[2:])
        assert sheet["total_fen"] == 80000
        with pytest.raises(FeeError, match="bank card missing"):
            finalize_sheet(site, "S-0922-02", by="staff1")
        with pytest.raises(FeeError, match="check digit"):
            set_bank_card(site, refs[experts[0]], CARD[:-1] + "9", by="staff1")
        assert set_bank_card(site, refs[experts[0]], CARD, by="staff1") == "622202*********0128"
        set_bank_card(site, refs[experts[1]], CARD, by="staff1")
        record = finalize_sheet(site, "S-0922-02", by="staff1")
        assert record["total_fen"] == 80000 and len(record["sha256"]) == 64
        journaled = site.journal.records(kind="fees.sheet")[0].payload
        assert journaled["lines"] == record["lines"] and journaled["rule"]["base_fee"] == 500
        # The card number exists only sealed: not in the journal, not in the database file in clear.
        everything = json.dumps([r.payload for r in site.journal.records()], ensure_ascii=False)
        assert CARD not in everything
        assert CARD.encode() not in (data_dir / "appliance.db").read_bytes()
        sealed = site.store.reader().execute("SELECT bank_card_sealed FROM people WHERE id = ?", (refs[experts[0]],)).fetchone()[0]
        assert site.personal.open("person.bank_card", sealed).decode() == CARD
    finally:
        site.close()


def test_fee_sheet_from_the_command_line(cli, site, data_dir):
    load_plan(site, parse_plan(json.dumps(todays_plan("test-county-01"), ensure_ascii=False)))
    code, out, _ = cli("fees", "sheet", "--session", "S-0922-02", "--data", str(data_dir))
    sheet = json.loads(out)
    assert code == 0 and sheet["complete"] is False and {line["outcome"] for line in sheet["lines"]} == {"pending"}
    code, _, err = cli("fees", "sheet", "--session", "S-0922-02", "--finalize", "--data", str(data_dir))
    assert code == 2 and "still running" in err
    code, _, err = cli("fees", "sheet", "--session", "NOPE", "--data", str(data_dir))
    assert code == 2 and "no session" in err
