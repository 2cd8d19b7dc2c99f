"""`appliance run` and the single-service commands, as real processes: status page, sd_notify,
SIGTERM within 2 s, recovery after kill -9, one instance per data directory."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.helpers import APPLIANCE, free_port, json_line, run_appliance


def start(data_dir, *args, env=None):
    port = free_port()
    proc = subprocess.Popen(
        [APPLIANCE, *(args or ("run",)), "--data", str(data_dir)],
        env={**os.environ, "APPLIANCE_WEB__PORT": str(port), "APPLIANCE_SERVICES__HEARTBEAT_S": "0.5", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, port


def get(port, path="/api/v1/status"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.status, resp.headers, resp.read().decode()


def wait_ready(proc, port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            status = json.loads(get(port)[2])
            if status["services"] and all(s["state"] == "running" for s in status["services"]):
                return status
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("appliance did not become ready")


def stop(proc):
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=10)
    return code, time.monotonic() - started


def kinds(data_dir, kind):
    out = run_appliance("journal", "show", "--data", str(data_dir), "--kind", kind).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_run_serves_status_page_and_stops_on_sigterm_within_2s(data_dir):
    proc, port = start(data_dir)
    try:
        status = wait_ready(proc, port)
        assert {s["name"] for s in status["services"]} == {"web", "devices", "recorder", "sync"}
        assert status["journal"]["records"] >= 5  # init + four service.started
        code, headers, page = get(port, "/")
        assert code == 200 and "测试县公共资源交易中心" in page and str(status["journal"]["records"]) in page
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "no devices configured yet" in page  # nothing fake: the worker says what it lacks
    finally:
        code, took = stop(proc)
    assert code == 0, proc.stderr.read()
    assert took < 2.0
    assert len(kinds(data_dir, "service.stopped")) == 4
    verify = run_appliance("journal", "verify", "--data", str(data_dir))
    assert verify.returncode == 0 and json_line(verify.stdout)["ok"]


def test_kill_9_is_reconciled_on_next_boot(data_dir):
    proc, port = start(data_dir)
    wait_ready(proc, port)
    proc.kill()
    proc.wait()
    assert kinds(data_dir, "service.recovered") == []
    proc, port = start(data_dir)
    try:
        wait_ready(proc, port)
        recovered = kinds(data_dir, "service.recovered")
        assert {r["payload"]["service"] for r in recovered} == {"web", "devices", "recorder", "sync"}
        assert all(r["payload"]["previous_state"] == "running" for r in recovered)
    finally:
        assert stop(proc)[0] == 0


def test_second_instance_refuses_to_start(data_dir):
    proc, port = start(data_dir)
    try:
        wait_ready(proc, port)
        second = run_appliance("run", "--data", str(data_dir), env={"APPLIANCE_WEB__PORT": str(free_port())})
        assert second.returncode == 2 and "already running" in second.stderr
    finally:
        assert stop(proc)[0] == 0


@pytest.mark.parametrize("command, service", [("sync", "sync"), ("devices", "devices"), ("record", "recorder")])
def test_each_service_runs_alone(data_dir, command, service):
    proc, _ = start(data_dir, command)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            started = kinds(data_dir, "service.started")
            if started:
                break
            time.sleep(0.1)
        assert [r["payload"]["service"] for r in started] == [service]
    finally:
        code, took = stop(proc)
    assert code == 0 and took < 2.0


def test_sd_notify_ready_watchdog_and_stopping(data_dir, tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(15)
    proc, _ = start(data_dir, "serve", env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "1000000"})
    try:
        messages = [sock.recv(4096).decode()]
        assert messages[0].startswith("READY=1")
        messages.append(sock.recv(4096).decode())
        assert messages[1] == "WATCHDOG=1"  # fed every WatchdogSec/2 while healthy
    finally:
        stop(proc)
    rest = []
    sock.settimeout(1)
    try:
        while True:
            rest.append(sock.recv(4096).decode())
    except TimeoutError:
        pass
    sock.close()
    assert "STOPPING=1" in rest


def test_bad_config_stops_start_up_with_the_key_named(data_dir):
    proc = run_appliance("run", "--data", str(data_dir), env={"APPLIANCE_WEB__PORT": "99999"})
    assert proc.returncode == 2 and "web.port" in proc.stderr
