"""No single client can stop the venue's web server (real HTTP on loopback, the real server):
slow headers, slow bodies, huge declared bodies, many live-update streams from one kiosk, and
numbers too large for the database."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from appliance.webserver import Limits, WebServer
from tests.helpers import csrf_token


@pytest.fixture
def served(app):
    limits = Limits(header_timeout_s=3, body_timeout_s=2)
    server = WebServer(app, "127.0.0.1", 0, threads=16, limits=limits, body_limit=app.extensions["body_limit"])
    server.start()
    yield f"http://127.0.0.1:{server.port}", server
    server.stop()


def slow_connections(port: int, count: int, stop: threading.Event, every_s: float = 0.5) -> list[socket.socket]:
    """Slowloris: each connection sends a request line, then one header line now and then."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)

    def trickle() -> None:
        n = 0
        while not stop.wait(every_s):
            n += 1
            for s in socks:
                try:
                    s.sendall(f"X-Slow-{n}: 1\r\n".encode())
                except OSError:
                    pass

    threading.Thread(target=trickle, daemon=True).start()
    return socks


def timed_get(url: str, **kwargs) -> tuple[int, float]:
    started = time.monotonic()
    resp = requests.get(url, timeout=10, **kwargs)
    return resp.status_code, time.monotonic() - started


def test_200_slow_connections_leave_the_console_and_healthz_answering(served):
    url, server = served
    stop = threading.Event()
    socks = slow_connections(server.port, 200, stop)
    try:
        time.sleep(1.0)  # every connection has started its request
        for path in ("/healthz", "/login", "/healthz", "/login"):
            status, took = timed_get(url + path)
            assert status == 200 and took < 1.0, (path, took)
    finally:
        stop.set()
        for s in socks:
            s.close()


def test_a_connection_that_never_finishes_its_headers_is_closed(served):
    url, server = served
    stop = threading.Event()
    (sock,) = slow_connections(server.port, 1, stop, every_s=0.3)
    sock.settimeout(10)
    started = time.monotonic()
    try:
        data = sock.recv(100)  # the server closes it: b"" (no answer to a request never finished)
    except ConnectionResetError:
        data = b""
    finally:
        stop.set()
        sock.close()
    assert data == b"" and 2.5 < time.monotonic() - started < 6


def test_a_slow_body_holds_no_thread_and_is_dropped(served):
    url, server = served
    socks = []
    for _ in range(40):  # more than the 16 threads: a thread each would stop everything
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 500\r\n\r\nusername=a")
        socks.append(s)
    try:
        status, took = timed_get(url + "/healthz")
        assert status == 200 and took < 1.0
        socks[0].settimeout(10)
        answer = socks[0].recv(200)  # the body paused longer than body_timeout_s
        assert answer.startswith(b"HTTP/1.1 408")
    finally:
        for s in socks:
            s.close()


def test_a_huge_declared_body_is_refused_before_it_is_read(served):
    url, server = served
    s = socket.create_connection(("127.0.0.1", server.port))
    s.settimeout(5)
    s.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 60000000\r\n\r\n")  # and no body at all
    assert s.recv(200).startswith(b"HTTP/1.1 413")
    s.close()


def kiosk_cookie(app, web_site) -> dict[str, str]:
    client = app.test_client()
    page = client.get("/kiosk/enrol")
    client.post("/kiosk/enrol", data={"code": web_site.kiosk_code, "csrf_token": csrf_token(page)})
    return {"appliance_kiosk": client.get_cookie("appliance_kiosk").value}


def test_one_kiosk_cannot_take_every_thread_with_live_streams(served, app, web_site):
    """24 streams from one kiosk cookie: each new one takes the slot of that kiosk's oldest,
    which ends within a second, so the kiosk never holds more than its share of threads."""
    url, server = served
    cookie = kiosk_cookie(app, web_site)
    feed, per_client = app.extensions["live"], web_site.config.web.streams_per_client
    streams = [requests.get(url + "/api/v1/events", cookies=cookie, stream=True, timeout=10) for _ in range(24)]
    try:
        assert {r.status_code for r in streams} == {200}
        deadline = time.monotonic() + 5
        while feed.streams() > per_client and time.monotonic() < deadline:
            time.sleep(0.1)
        assert feed.streams() == per_client
        ended = 0
        for r in streams[:-per_client]:  # the server closed the older ones
            lines = r.iter_lines()
            try:
                while True:
                    next(lines)
            except (StopIteration, requests.exceptions.ChunkedEncodingError):
                ended += 1
        assert ended == 24 - per_client
        status, took = timed_get(url + "/login")
        assert status == 200 and took < 1.0
    finally:
        for r in streams:
            r.close()
    deadline = time.monotonic() + 5  # a client that leaves gives its slot back within a second
    while feed.streams() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert feed.streams() == 0


def test_when_every_stream_slot_is_taken_a_new_client_is_refused(served, app, login):
    url, server = served
    feed = app.extensions["live"]
    feed.total = 2
    sessions = [requests.Session() for _ in range(3)]
    for s, role in zip(sessions, ("staff", "supervisor", "admin"), strict=True):
        page = s.get(url + "/login").text
        token = csrf_token(type("R", (), {"get_data": lambda self, as_text: page})())
        s.post(url + "/login", data={"username": f"{role}1", "password": f"{role}-password-1", "csrf_token": token})
    streams = [s.get(url + "/api/v1/events", stream=True, timeout=10) for s in sessions]
    try:
        assert [r.status_code for r in streams] == [200, 200, 429]
        assert streams[2].json()["error"] == "too_many_streams"
    finally:
        for r in streams:
            r.close()


def test_one_account_logged_in_many_times_gets_no_more_than_its_share_of_streams(served, app, web_site):
    """Twelve sessions of the same account, one stream each: the account's share (8) is served,
    the rest refused, and another account still gets its stream."""
    url, server = served
    per_account = web_site.config.web.streams_per_account

    def session(role: str) -> requests.Session:
        s = requests.Session()
        page = s.get(url + "/login").text
        token = csrf_token(type("R", (), {"get_data": lambda self, as_text: page})())
        s.post(url + "/login", data={"username": f"{role}1", "password": f"{role}-password-1", "csrf_token": token})
        return s

    sessions = [session("staff") for _ in range(12)]
    streams = [s.get(url + "/api/v1/events", stream=True, timeout=10) for s in sessions]
    other = session("supervisor").get(url + "/api/v1/events", stream=True, timeout=10)
    try:
        assert [r.status_code for r in streams] == [200] * per_account + [429] * (12 - per_account)
        assert other.status_code == 200
    finally:
        for r in streams + [other]:
            r.close()


def test_an_id_too_large_for_the_database_is_404_not_500(login):
    supervisor = login("supervisor")
    assert supervisor.get("/review/segments/99999999999999999999/video").status_code == 404
    assert supervisor.get("/review/segments/99999999999999999999999999999999999/video").status_code == 404


def test_a_server_that_sheds_load_answers_busy_at_once_instead_of_queueing_past_timeouts():
    """The center's workers (`max_waiting`): with as many requests waiting for a thread as it has
    threads, the next is answered 503 with Retry-After at once — not queued until its client
    gives up and then worked on for nobody."""
    from concurrent.futures import ThreadPoolExecutor

    release = threading.Event()

    def slow_app(environ, start_response):
        release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    server = WebServer(slow_app, "127.0.0.1", 0, threads=2, max_waiting=2)
    url = f"http://127.0.0.1:{server.prepare()}/"
    server.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            held = [pool.submit(requests.get, url, timeout=15) for _ in range(4)]  # 2 running, 2 waiting
            time.sleep(0.5)
            t0 = time.monotonic()
            busy = requests.get(url, timeout=15)
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "2" and busy.json()["error"] == "busy"
            assert time.monotonic() - t0 < 1
            release.set()
            assert [f.result().status_code for f in held] == [200, 200, 200, 200]
        assert requests.get(url, timeout=15).status_code == 200  # the queue drained: served again
    finally:
        release.set()
        server.stop()
