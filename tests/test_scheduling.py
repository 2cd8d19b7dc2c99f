"""Room scheduling: by example (explanations staff read) and by property over random days."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.scheduling import (
    Booking, BookingError, Busy, RoomInfo, add_booking, describe, bookings, cancel_booking, pin_booking, schedule, schedule_day,
)
from tests.venue import todays_plan

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)  # 08:00 in Beijing
ROOMS = [
    RoomInfo("PB1", "第一评标室", "evaluation", 9, frozenset({"recording"})),
    RoomInfo("PB2", "第二评标室", "evaluation", 15, frozenset({"recording"})),
    RoomInfo("YC1", "远程异地评标室", "remote_evaluation", 9, frozenset({"recording", "remote_evaluation"})),
    RoomInfo("KB1", "第一开标室", "opening", 40, frozenset({"recording"})),
]


def booking(id, kind="evaluation", attendees=7, minutes=180, earliest=0, latest=600, **kw):
    return Booking(id, kind, attendees, minutes, T0 + timedelta(minutes=earliest), T0 + timedelta(minutes=latest), **kw)


def test_smallest_fitting_room_at_the_earliest_time():
    placed, unplaced = schedule(ROOMS, [booking(1), booking(2, attendees=12)], [])
    assert unplaced == []
    by = {a.booking: a for a in placed}
    assert (by[1].room, by[1].start) == ("PB1", T0)  # 7 people: the 9-seat room, not the 15-seat one
    assert (by[2].room, by[2].start) == ("PB2", T0)


def test_buffer_between_sessions_and_the_least_slack_goes_first():
    # Both want PB1 (7 people); #2 has no slack and must go first; #1 then waits for the buffer.
    flexible = booking(1, minutes=120, earliest=0, latest=600)
    tight = booking(2, minutes=120, earliest=0, latest=120)
    placed, _ = schedule(ROOMS[:1], [flexible, tight], [], buffer_min=30)
    by = {a.booking: a for a in placed}
    assert by[2].start == T0 and by[1].start == T0 + timedelta(minutes=150)  # 120 + 30 min buffer


def test_conflicts_are_explained_room_by_room():
    busy = [Busy("PB1", T0, T0 + timedelta(hours=6), "S-1"), Busy("PB2", T0, T0 + timedelta(hours=6), "S-2")]
    _, unplaced = schedule(ROOMS, [booking(1, minutes=240, latest=480)], busy)
    assert [describe(r) for r in unplaced[0].reasons] == [
        "第一评标室: no free 240 min between 08:00 and 16:00 (busy: S-1 08:00–14:00; +30 min buffer)",
        "第二评标室: no free 240 min between 08:00 and 16:00 (busy: S-2 08:00–14:00; +30 min buffer)"]
    _, unplaced = schedule(ROOMS, [booking(2, attendees=20)], [])
    assert [describe(r) for r in unplaced[0].reasons] == ["第一评标室: 9 seats, 20 needed", "第二评标室: 15 seats, 20 needed"]
    _, unplaced = schedule(ROOMS, [booking(3, equipment=frozenset({"remote_evaluation"}))], [])
    assert [describe(r) for r in unplaced[0].reasons] == ["第一评标室: lacks remote_evaluation", "第二评标室: lacks remote_evaluation"]
    _, unplaced = schedule(ROOMS, [booking(4, kind="clarification")], [])
    assert [describe(r) for r in unplaced[0].reasons] == ["no room of kind clarification"]
    _, unplaced = schedule(ROOMS, [booking(5, minutes=300, latest=120)], [])
    assert "shorter than 300 min" in describe(unplaced[0].reasons[0])


def test_staff_pin_may_waive_the_buffer_and_seats_but_never_double_books():
    busy = [Busy("PB1", T0, T0 + timedelta(hours=2), "S-1")]
    close = booking(1, attendees=12, pin_room="PB1", pin_start=T0 + timedelta(hours=2, minutes=10))
    placed, unplaced = schedule(ROOMS, [close], busy)
    assert unplaced == [] and placed[0].pinned and set(placed[0].waived) == {"seats", "buffer"}
    overlapping = booking(2, pin_room="PB1", pin_start=T0 + timedelta(hours=1))
    placed, unplaced = schedule(ROOMS, [overlapping], busy)
    assert placed == [] and [describe(r) for r in unplaced[0].reasons] == ["第一评标室: 09:00–12:00 overlaps S-1 08:00–10:00"]


# -- properties --------------------------------------------------------------------------------

rooms_st = st.lists(st.builds(
    RoomInfo, id=st.sampled_from(["R1", "R2", "R3", "R4", "R5"]), name=st.just("室"),
    kind=st.sampled_from(["evaluation", "opening", "remote_evaluation"]), capacity=st.integers(1, 30),
    equipment=st.frozensets(st.sampled_from(["recording", "remote_evaluation"]))), min_size=1, max_size=5, unique_by=lambda r: r.id)
bookings_st = st.lists(st.builds(
    lambda i, kind, n, minutes, earliest, span, eq: booking(i, kind, n, minutes, earliest, earliest + span, equipment=eq),
    st.integers(1, 10_000), st.sampled_from(["evaluation", "opening", "remote_evaluation"]), st.integers(1, 30),
    st.sampled_from([30, 60, 90, 120, 180, 240]), st.integers(0, 600), st.integers(0, 720),
    st.frozensets(st.sampled_from(["recording", "remote_evaluation"]))), max_size=12, unique_by=lambda b: b.id)


@settings(max_examples=400)
@given(rooms_st, bookings_st, st.integers(0, 60))
def test_no_double_booking_every_placement_fits_and_every_refusal_is_explained(rooms, requests, buffer_min):
    busy = [Busy("R1", T0 + timedelta(hours=3), T0 + timedelta(hours=5), "S-plan")]
    placed, unplaced = schedule(rooms, requests, busy, buffer_min=buffer_min)
    assert {a.booking for a in placed} | {u.booking for u in unplaced} == {b.id for b in requests}
    assert all(u.reasons for u in unplaced)
    by_id, room_by_id = {b.id: b for b in requests}, {r.id: r for r in rooms}
    gap = timedelta(minutes=buffer_min)
    for a in placed:
        b, room = by_id[a.booking], room_by_id[a.room]
        assert room.kind == b.room_kind and room.capacity >= b.attendees and b.equipment <= room.equipment
        assert b.earliest <= a.start and a.end <= b.latest_end and a.end - a.start == timedelta(minutes=b.duration_min)
        others = [(x.start, x.end) for x in placed if x.room == a.room and x is not a]
        others += [(x.start, x.end) for x in busy if x.room == a.room]
        assert all(a.end + gap <= s or e + gap <= a.start for s, e in others)


# -- stored bookings ---------------------------------------------------------------------------

def test_bookings_are_scheduled_around_the_day_plan_and_journaled(site):
    plan = todays_plan("test-county-01")
    load_plan(site, parse_plan(__import__("json").dumps(plan, ensure_ascii=False)))
    day = plan["date"]
    start = datetime.fromisoformat(plan["sessions"][1]["start"])  # the evaluation in PB1
    with pytest.raises(BookingError, match="room kind"):
        add_booking(site, day=day, section_code="X", section_name="X", session_kind="evaluation", room_kind="gym",
                    attendees=5, duration_min=60, earliest=start, latest_end=start + timedelta(hours=2), by="staff1")
    first = add_booking(site, day=day, section_code="JL-2026-101", section_name="道路维修", session_kind="evaluation",
                        room_kind="evaluation", attendees=5, duration_min=120, earliest=start,
                        latest_end=start + timedelta(hours=10), by="staff1")
    result = schedule_day(site, day, by="staff1")
    placed = result["scheduled"][0]
    session_end = datetime.fromisoformat(plan["sessions"][1]["end"])
    assert placed["booking"] == first and placed["room"] == "PB1"  # the demo's only evaluation room
    assert datetime.fromisoformat(placed["start"].replace("Z", "+00:00")) == session_end + timedelta(minutes=30)  # after the buffer
    assert site.journal.records(kind="booking.scheduled")[-1].payload["scheduled"] == result["scheduled"]
    # Staff pin it into the plan's session: refused with the overlap named, nothing double-booked.
    pin_booking(site, first, room="PB1", start=start, reason="专家要求", by="staff1")
    result = schedule_day(site, day, by="staff1")
    assert result["scheduled"] == [] and "overlaps S-0922-02" in describe(result["unplaced"][0]["reasons"][0])
    assert bookings(site, day)[0]["state"] == "unplaced"
    cancel_booking(site, first, by="staff1")
    assert schedule_day(site, day, by="staff1")["unplaced"] == []


def test_rooms_book_and_schedule_from_the_command_line(cli, site, data_dir, tmp_path):
    plan = todays_plan("test-county-01")
    load_plan(site, parse_plan(__import__("json").dumps(plan, ensure_ascii=False)))
    code, out, err = cli("rooms", "book", "demo/bookings.json", "--data", str(data_dir))
    assert code == 0, err
    bad = tmp_path / "bad.json"
    bad.write_text('[{"section_code": "X", "section_name": "X", "session_kind": "evaluation", "room_kind": "evaluation",'
                   ' "attendees": 0, "duration_min": 60, "earliest": "2026-11-23T08:30:00", "latest_end": "x"}]')
    code, _, err = cli("rooms", "book", str(bad), "--data", str(data_dir))
    assert code == 2 and "0.attendees" in err and "0.earliest" in err and "0.latest_end" in err
    code, out, _ = cli("rooms", "schedule", "--day", "2026-11-23", "--data", str(data_dir))
    result = __import__("json").loads(out)
    spans = sorted((s["room"], s["start"], s["end"]) for s in result["scheduled"])
    # Two evaluations share the demo's only evaluation room, half an hour apart; the opening gets the opening room.
    assert spans == [("KB1", "2026-11-23T01:00:00.000000Z", "2026-11-23T02:30:00.000000Z"),
                     ("PB1", "2026-11-23T00:30:00.000000Z", "2026-11-23T04:30:00.000000Z"),
                     ("PB1", "2026-11-23T05:00:00.000000Z", "2026-11-23T08:00:00.000000Z")]
    assert result["unplaced"] == []
