"""The live feed sends a change, not the heartbeat of services that go on as before: with a
dozen workers beating every few seconds, every open screen would otherwise get an event (and
refetch its lists) several times a second."""

from appliance.runtime import ServiceStatus
from kiosk_ui.live import LiveFeed


def test_a_heartbeat_is_not_a_change_but_a_new_state_is(site):
    status = ServiceStatus(site)
    status.set("sync", "running", "sync_not_enrolled", started=True)
    feed = LiveFeed(site)
    feed._refresh()
    first = feed.version
    for _ in range(3):
        status.set("sync", "running", "sync_not_enrolled")  # the same state, a later heartbeat
        feed._refresh()
    assert feed.version == first
    status.set("sync", "failed", "center refused the batch")
    feed._refresh()
    assert feed.version == first + 1 and feed.snapshot["services"][0]["state"] == "failed"
