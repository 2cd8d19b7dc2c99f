"""The installer diagnostics, run as an installer would: `appliance device sim KIND` in one
process, the diagnostic command against its port in another."""

import json
import signal
import subprocess
import time

import pytest

from tests.helpers import APPLIANCE, json_line


@pytest.fixture
def simulator(tmp_path):
    procs = []

    def start(*args):
        out = open(tmp_path / f"sim{len(procs)}.out", "w+")
        proc = subprocess.Popen([APPLIANCE, "device", "sim", *args], stdout=out, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out.seek(0)
            first = out.readline()
            if first.strip():
                return json.loads(first)["port"]
            time.sleep(0.05)
        raise AssertionError("simulator did not print its port")

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def run(*args, timeout=60):
    return subprocess.run([APPLIANCE, "device", *args], capture_output=True, text=True, timeout=timeout)


def test_idcard_read_is_masked(simulator):
    port = simulator("idcard")
    proc = run("idcard", "read", "--port", port, "--timeout", "5")
    result = json_line(proc.stdout)
    assert result["ok"] and result["sam_id"] == "05.01-20101010-0000000001-1234567890"
    assert result["id_number"].count("*") == 10 and result["name"].endswith("*") and result["id_check_ok"]
    assert result["nation"] == "汉" and result["valid_to"] == "长期"


def test_idcard_read_on_a_dead_port_is_a_clear_error(tmp_path):
    proc = run("idcard", "read", "--port", str(tmp_path / "nothing"), "--timeout", "1")
    assert proc.returncode == 2 and "no SAM reader answering" in proc.stderr


def test_gate_open_and_passage(simulator):
    port = simulator("gate", "--walk-time", "0.3")
    result = json_line(run("gate", "open", "--port", port, "--pulse-ms", "500", "--wait-passage", "3").stdout)
    assert result == {"ok": True, "pulse_ms": 500, "echo_ok": True, "relay_closed": True, "passed": True, "alarm": False}


@pytest.mark.parametrize("kind, protocol, board", [("locker-kerong", "kerong", "0"), ("locker-8a", "8a", "1")])
def test_locker_open_and_status(simulator, kind, protocol, board):
    port = simulator(kind)
    common = ("--port", port, "--protocol", protocol, "--board", board)
    assert json_line(run("locker", "status", *common, "--lock", "4").stdout)["locks"]["4"]["closed"] is True
    assert json_line(run("locker", "open", *common, "--lock", "4").stdout) == {"ok": True, "lock": 4, "door_open": True}
    everything = json_line(run("locker", "status", *common).stdout)["locks"]
    assert everything["4"]["closed"] is False and everything["5"]["closed"] is True


def test_announce_to_a_file(tmp_path):
    out = tmp_path / "call.wav"
    result = json_line(run("announce", "请三号专家到答疑室", "--out", str(out)).stdout)
    assert result["ok"] and out.exists() and 2.0 < result["duration_s"] < 8.0
