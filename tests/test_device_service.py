"""The devices service end to end: simulated devices driven through the real drivers, durable
commands queued by another process, everything journaled without personal data."""

import json
import time

import pytest

from appliance.device_commands import command, queue_command
from appliance.device_service import DeviceService
from appliance.site import open_site
from devices.idcard.sim import fictitious_card
from tests.helpers import wait_for
from tests.test_runtime import output, start, stop, wait_ready

DEVICES = """
[devices]
simulate = true
[[devices.idcard]]
name = "gate-1-reader"
port = "/dev/ttyREADER1"
debounce_s = 1.0
[[devices.gate]]
name = "gate-1"
port = "/dev/ttyBUS1"
pulse_ms = 500
passage_timeout_s = 3
[[devices.locker]]
name = "bank-a"
port = "/dev/ttyBUS2"
protocol = "kerong"
board = 0
locks = 16
[[devices.locker]]
name = "bank-b"
port = "/dev/ttyBUS3"
protocol = "8a"
board = 1
"""


@pytest.fixture
def device_site(data_dir):
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + DEVICES, encoding="utf-8")
    site = open_site(data_dir)
    yield site
    site.close()


def test_commands_cards_and_announcements(device_site):
    site = device_site
    service = DeviceService(site)
    service.start()
    try:
        gate = queue_command(site, "gate.open", "gate-1", requested_by="staff1")
        kerong = queue_command(site, "locker.open", "bank-a", {"lock": 3}, requested_by="staff1")
        eight_a = queue_command(site, "locker.open", "bank-b", {"lock": 12}, requested_by="staff1")
        announce = queue_command(site, "announce", "hall", {"text": "请三号专家到答疑室", "priority": "call"}, requested_by="staff1")
        service.step()
        for command_id in (gate, kerong, eight_a, announce):
            assert command(site, command_id)["state"] == "done", command(site, command_id)
        assert command(site, kerong)["result"] == {"lock": 3, "door_open": True}
        passage = wait_for(lambda: site.journal.records(kind="gate.passage"))
        assert passage[0].payload["passed"] is True
        played = wait_for(lambda: site.journal.records(kind="announcement.played"), timeout=20)
        assert played[0].payload["error"] is None and len(played[0].payload["audio_sha256"]) == 64
        # A card tapped on the reader.
        card = fictitious_card(4)
        reader_sim = service.sims["/dev/ttyREADER1"]
        reader_sim.place(card)
        reads = wait_for(lambda: site.journal.records(kind="card.read"))
        payload = reads[0].payload
        assert payload["id_masked"] == card.id_number[:4] + "*" * 10 + card.id_number[-4:]
        assert card.id_number not in json.dumps(payload, ensure_ascii=False) and card.name not in json.dumps(payload, ensure_ascii=False)
        assert payload["valid_today"] is True and payload["reader"] == "gate-1-reader"
        # Health: every device is connected.
        service.step()
        health = {r["name"]: r["state"] for r in site.store.reader().execute("SELECT name, state FROM device_health")}
        assert health == {"gate-1-reader": "connected", "bank-a": "connected", "bank-b": "connected"}
    finally:
        service.stop()


def test_unknown_target_and_jammed_lock_fail_cleanly(device_site):
    site = device_site
    service = DeviceService(site)
    service.start()
    try:
        service.sims["/dev/ttyBUS2"].jammed.add(5)
        jammed = queue_command(site, "locker.open", "bank-a", {"lock": 5}, requested_by="staff1")
        unknown = queue_command(site, "gate.open", "gate-9", requested_by="staff1")
        service.step()
        assert command(site, jammed)["state"] == "failed" and "did not open" in command(site, jammed)["result"]["error"]
        assert command(site, unknown)["state"] == "failed"
        outcomes = [r.payload["outcome"] for r in site.journal.records(kind="device.command")]
        assert outcomes == ["failed", "failed"]
    finally:
        service.stop()


def test_crash_leftovers_are_reconciled_not_replayed(device_site):
    site = device_site
    stale = queue_command(site, "gate.open", "gate-1", requested_by="staff1")
    running = queue_command(site, "locker.open", "bank-a", {"lock": 1}, requested_by="staff1")
    with site.store.transaction() as conn:
        conn.execute("UPDATE device_commands SET created = '2020-01-01T00:00:00.000000Z' WHERE id = ?", (stale,))
        conn.execute("UPDATE device_commands SET state = 'running' WHERE id = ?", (running,))
    service = DeviceService(site)
    service.start()
    try:
        assert command(site, stale)["state"] == "expired"
        assert command(site, running)["state"] == "failed"
        assert command(site, running)["result"]["error"] == "interrupted by a restart"
        assert service.sims["/dev/ttyBUS2"].opened == []  # nothing opened behind anyone's back
    finally:
        service.stop()


def test_commands_from_another_process_reach_the_running_service(data_dir):
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + DEVICES, encoding="utf-8")
    proc, port = start(data_dir)
    try:
        wait_ready(proc, port)
        site = open_site(data_dir)
        try:
            command_id = queue_command(site, "locker.open", "bank-b", {"lock": 2}, requested_by="admin1")
            done = wait_for(lambda: (command(site, command_id) or {}).get("state") in ("done", "failed") and command(site, command_id))
            assert done["state"] == "done", done
        finally:
            site.close()
    finally:
        code, took = stop(proc)
    assert code == 0 and took < 2.0, output(proc)


class _UdpSpeaker:
    """An IP speaker stand-in: a UDP socket on loopback counting RTP packets."""

    def __init__(self) -> None:
        import socket
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.packets = 0
        self.running = True
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _listen(self) -> None:
        while self.running:
            try:
                self.sock.recv(2048)
                self.packets += 1
            except OSError:
                continue

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


def test_calls_play_only_on_the_speakers_of_their_zone(data_dir):
    evaluation, hall = _UdpSpeaker(), _UdpSpeaker()
    path = data_dir / "appliance.toml"
    path.write_text(path.read_text() + f"""
[devices]
simulate = true
[[devices.broadcast.speakers]]
name = "evaluation-ceiling"
zones = ["evaluation"]
sink = "rtp"
target = "{evaluation.target}"
[[devices.broadcast.speakers]]
name = "hall"
zones = ["public", "waiting"]
sink = "rtp"
target = "{hall.target}"
""", encoding="utf-8")
    site = open_site(data_dir)
    service = DeviceService(site)
    service.start()
    try:
        def played(n):
            return wait_for(lambda: len(site.journal.records(kind="announcement.played")) >= n and
                            site.journal.records(kind="announcement.played"), timeout=30)

        queue_command(site, "announce", "evaluation", {"text": "请专家回到评标室", "priority": "call"}, requested_by="staff1")
        service.step()
        first = played(1)[0].payload
        assert first["error"] is None and first["zones"] == ["evaluation"] and first["speakers"] == ["evaluation-ceiling"]
        time.sleep(0.3)
        assert evaluation.packets > 20 and hall.packets == 0
        queue_command(site, "announce", "all", {"text": "评标暂停", "priority": "emergency"}, requested_by="staff1")
        service.step()
        second = played(2)[1].payload
        assert sorted(second["speakers"]) == ["evaluation-ceiling", "hall"]
        time.sleep(0.3)
        assert hall.packets > 20
        # A zone nobody covers: the announcement fails loudly instead of going nowhere.
        queue_command(site, "announce", "parking", {"text": "测试", "priority": "information"}, requested_by="staff1")
        service.step()
        third = played(3)[2].payload
        assert "no speaker covers zone parking" in third["error"]
        # Several zones in one command (a call where bidders wait): every speaker covering one of them.
        queue_command(site, "announce", "public,waiting", {"text": "请某公司代表到答疑室", "priority": "call"}, requested_by="staff1")
        service.step()
        fourth = played(4)[3].payload
        assert fourth["error"] is None and fourth["zones"] == ["public", "waiting"] and fourth["speakers"] == ["hall"]
    finally:
        service.stop()
        site.close()
        evaluation.close()
        hall.close()
