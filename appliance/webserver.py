"""The HTTP server of the site's web app and of the center: no single client can stop it.

A slow or hostile client must never hold a worker thread. The connections are handled by one
asyncio event loop (uvicorn's HTTP/1.1 protocol over h11, with TLS when configured); a WSGI
worker thread sees a request only once it is whole:

* **headers**: a connection has ``header_timeout_s`` to send a request's headers — after it
  opens and after each answer — or it is closed (slowloris). Waiting for them costs no thread.
* **body**: read by the event loop into a spooled file (memory up to 1 MiB, then a file in the
  data folder) until complete; a body idle for ``body_timeout_s`` is dropped (408). A body over
  the request's limit is refused (413) as soon as its Content-Length, or its bytes, say so.
  Each request's limits come from a ``body_limit(scope)`` callback: the most its body may carry,
  and how much of it is buffered first (at most ``buffer_limit``). Only an upload larger than
  that (footage a supervisor checks, up to 8 GiB) reaches its thread before it is whole, and the
  views that take such uploads refuse anyone else before reading on.
* **admission**: a ``precheck(scope)`` callback may refuse a request from its headers alone,
  before a byte of its body is read (the center checks a request's signature key, date and
  nonce this way).
* **responses**: a thread writes through the loop; when the client has gone, the next write
  raises `ClientDisconnected`, so a live-update stream ends and frees its thread; a client that
  reads nothing for ``send_timeout_s`` is dropped.

The WSGI app runs in a pool of ``threads`` threads. See docs/web.md ("Slow clients").
"""

from __future__ import annotations

import asyncio
import io
import logging
import resource
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from werkzeug.routing import IntegerConverter

log = logging.getLogger(__name__)
SPOOL_IN_MEMORY = 1 << 20
READ_BLOCK = 1 << 16


class BoundedInt(IntegerConverter):
    """``<int:…>`` in a Flask route: a number SQLite can hold (a 20-digit id is no page: 404, not
    a 500 from the database). Register it as the app's ``int`` converter before any route."""

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None, max: int | None = 2**63 - 1,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)


DISCONNECTED = "appliance.client_gone"  # environ key: a threading.Event set when the client has left


class ClientDisconnected(OSError):
    """The client went away while its answer was being written."""


@dataclass(frozen=True)
class Limits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    send_timeout_s: float = 60.0
    buffer_limit: int = 64 << 20
    default_body_limit: int = 1 << 20


# A refusal from the headers alone: (status, body text — JSON when it starts with "{"), and
# optionally headers to add (e.g. a protocol's version header every answer must carry).
Precheck = Callable[[dict[str, Any]], "tuple[int, str] | tuple[int, str, list[tuple[str, str]]] | None"]
# A request's body limits from its method and path: (the most it may carry, how much of it is
# buffered before a thread sees the request). Buffering less than the limit suits uploads only
# a logged-in person may make: the view refuses anyone else before reading on.
BodyLimit = Callable[[dict[str, Any]], tuple[int, int]]


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's headers (no slowloris)."""

    header_timeout_s = 10.0

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _too_slow(self) -> None:
        self._deadline = None
        if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete and self._deadline is not None:
            self._deadline.cancel()  # the headers are in: the request's own limits take over
            self._deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)


class _Input:
    """``wsgi.input``: the spooled body, then (for a body over the buffer limit) the rest as
    the view reads it, each block fetched through the event loop."""

    def __init__(self, spool: IO[bytes], more: Callable[[], bytes] | None) -> None:
        self.spool, self.more, self.pending = spool, more, b""
        self.spool.seek(0)

    def _next(self) -> bytes:
        if self.pending:
            out, self.pending = self.pending, b""
            return out
        block = self.spool.read(READ_BLOCK)
        if block or self.more is None:
            return block
        block = self.more()
        if not block:
            self.more = None
        return block

    def read(self, size: int | None = -1) -> bytes:
        out = bytearray()
        while size is None or size < 0 or len(out) < size:
            block = self._next()
            if not block:
                break
            out += block
        if size is not None and 0 <= size < len(out):
            self.pending = bytes(out[size:]) + self.pending
            del out[size:]
        return bytes(out)

    def readline(self, limit: int = -1) -> bytes:
        out = bytearray()
        while limit < 0 or len(out) < limit:
            block = self._next()
            if not block:
                break
            end = block.find(b"\n")
            cut = end + 1 if end >= 0 else len(block)
            if limit >= 0:
                cut = min(cut, limit - len(out))
            out += block[:cut]
            self.pending = block[cut:] + self.pending
            if end >= 0 and cut == end + 1:
                break
        return bytes(out)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class WsgiBridge:
    """An ASGI app that runs a WSGI app in a thread pool once the request is whole."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, threads: int, limits: Limits, spool_dir: Path | None,
                 precheck: Precheck | None = None, body_limit: BodyLimit | None = None, max_waiting: int | None = None) -> None:
        self.app, self.limits, self.spool_dir = app, limits, spool_dir
        self.precheck, self.body_limit = precheck, body_limit
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="web")
        # Load shedding (the center's workers): with this many requests already waiting for a
        # thread, a new one is answered 503 at once (Retry-After) instead of waiting past its
        # client's timeout and then being worked on for nobody.
        self.max_waiting, self.waiting, self._waiting_lock = max_waiting, 0, threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        loop = asyncio.get_running_loop()
        if self.max_waiting is not None and self.waiting >= self.max_waiting:  # (before any work, the precheck's too)
            await _plain(send, 503, '{"error": "busy", "message": "the server is busy: send again shortly"}',
                         [("Retry-After", "2")])
            return
        if self.precheck is not None:
            refusal = await loop.run_in_executor(None, self.precheck, scope)
            if refusal is not None:
                await _plain(send, refusal[0], refusal[1], *refusal[2:])
                return
        limit, prebuffer = (self.body_limit(scope) if self.body_limit
                            else (self.limits.default_body_limit, self.limits.default_body_limit))
        prebuffer = min(prebuffer, limit, self.limits.buffer_limit)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _plain(send, 413, "the request is too large")
            return
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=self.spool_dir)
        try:
            outcome = await self._buffer(receive, spool, limit, prebuffer)
            if outcome in (408, 413):
                await _plain(send, outcome, "the request body came too slowly" if outcome == 408 else "the request is too large")
                return
            if outcome == 0:
                return  # the client left
            await self._respond(loop, scope, receive, send, spool, more=outcome == 1, limit=limit)
        finally:
            spool.close()

    async def _buffer(self, receive: Any, spool: IO[bytes], limit: int, prebuffer: int) -> int:
        """Read the body: 2 whole, 1 over the buffer limit (more to come), 0 client gone, 408/413."""
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.limits.body_timeout_s)
            except asyncio.TimeoutError:
                return 408
            if message["type"] == "http.disconnect":
                return 0
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                return 413
            spool.write(body)
            if not message.get("more_body"):
                return 2
            if size >= prebuffer:
                return 1

    async def _respond(self, loop: asyncio.AbstractEventLoop, scope: dict[str, Any], receive: Any, send: Any,
                       spool: IO[bytes], *, more: bool, limit: int) -> None:
        gone = threading.Event()
        received = [spool.tell()]

        def fetch() -> bytes:  # in the worker thread: the next block of a body over the buffer limit
            future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(receive(), self.limits.body_timeout_s), loop)
            try:
                message = future.result()
            except (asyncio.TimeoutError, TimeoutError) as exc:
                raise ClientDisconnected("the request body came too slowly") from exc
            if message["type"] == "http.disconnect":
                gone.set()
                raise ClientDisconnected("the client went away")
            received[0] += len(message.get("body", b""))
            if received[0] > limit:
                raise ClientDisconnected("the request is too large")
            block = message.get("body", b"")
            return block if message.get("more_body") or block else b""

        def out(message: dict[str, Any]) -> None:  # in the worker thread
            if gone.is_set():
                raise ClientDisconnected("the client went away")
            future = asyncio.run_coroutine_threadsafe(send(message), loop)
            try:
                future.result(self.limits.send_timeout_s)
            except TimeoutError as exc:
                gone.set()
                raise ClientDisconnected("the client stopped reading") from exc

        watcher = None if more else loop.create_task(_watch(receive, gone))
        environ = wsgi_environ(scope, _Input(spool, fetch if more else None), None if more else received[0])
        environ[DISCONNECTED] = gone  # a long-lived answer (a live stream) checks it to end early
        with self._waiting_lock:
            self.waiting += 1
        try:
            await loop.run_in_executor(self.pool, self._run, environ, out)
        finally:
            if watcher is not None:
                watcher.cancel()

    def _run(self, environ: dict[str, Any], out: Callable[[dict[str, Any]], None]) -> None:
        with self._waiting_lock:
            self.waiting -= 1
        started: list[bool] = []
        headers: list[Any] = []

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            headers[:] = [int(status.split(" ", 1)[0]),
                          [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers]]
            return lambda data: write(data)

        def write(data: bytes) -> None:
            if not started:
                out({"type": "http.response.start", "status": headers[0], "headers": headers[1]})
                started.append(True)
            if data:
                out({"type": "http.response.body", "body": data, "more_body": True})

        iterable = None
        try:
            iterable = self.app(environ, start_response)
            for chunk in iterable:
                write(chunk)
            write(b"")
            out({"type": "http.response.body", "body": b"", "more_body": False})
        except ClientDisconnected:
            pass
        except Exception:  # the app's own error pages failed too: still an answer people can read
            log.exception("%s %s failed", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            if started:
                raise  # half an answer is out: the connection is dropped
            body = FALLBACK_ERROR_PAGE.encode()
            out({"type": "http.response.start", "status": 500,
                 "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
            out({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing a response failed")


# The last resort when an app cannot render its own error page: both languages of the screens.
FALLBACK_ERROR_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>500</title></head><body>
<h1>出错了 · Something went wrong</h1>
<p>本机处理此请求时出错。请返回重试；如再次出现，请告知管理员。</p>
<p lang="en">The appliance could not complete this request. Go back and try again; tell the administrator if it happens again.</p>
<p><a href="/">返回首页 · Back to start</a></p></body></html>
"""


async def _watch(receive: Any, gone: threading.Event) -> None:
    """After the body: the next message is the client leaving (or the answer being complete)."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:
        pass
    gone.set()


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1").strip()
    return None


async def _plain(send: Any, status: int, text: str, extra: list[tuple[str, str]] | None = None) -> None:
    body = text.encode()
    kind = b"application/json" if text.startswith("{") else b"text/plain; charset=utf-8"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra or []]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def wsgi_environ(scope: dict[str, Any], body: Any = None, length: int | None = None) -> dict[str, Any]:
    """The WSGI environ of an ASGI request; with no ``body`` (a precheck, before the body is
    read) its input is empty and the headers are as the client sent them."""
    if body is None:
        body = io.BytesIO()
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] or 0),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.input_terminated": True,  # the stream ends with the body, chunked or not
        "wsgi.errors": _LogStream(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value.decode("latin-1")
            continue
        key = "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    if length is not None:  # the whole body is buffered: its length is known, chunked or not
        environ["CONTENT_LENGTH"] = str(length)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
    return environ


class _LogStream:
    def write(self, text: str) -> None:
        if text.strip():
            log.warning("%s", text.rstrip())

    def flush(self) -> None:
        pass

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)


class WebServer:
    """One WSGI app served on one address: bind with `prepare()` (a busy port fails there),
    then `serve()` (blocks) or `start()` (a thread); `stop()` within a second or two."""

    def __init__(self, app: Callable[..., Iterable[bytes]], host: str, port: int, *, threads: int = 24,
                 tls: tuple[Path, Path] | None = None, limits: Limits | None = None, spool_dir: Path | None = None,
                 precheck: Precheck | None = None, body_limit: BodyLimit | None = None, name: str = "web",
                 max_waiting: int | None = None) -> None:
        self.limits = limits or Limits()
        self.bridge = WsgiBridge(app, threads=threads, limits=self.limits, spool_dir=spool_dir, precheck=precheck,
                                 body_limit=body_limit, max_waiting=max_waiting)
        self.host, self.port, self.tls, self.name = host, port, tls, name
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def prepare(self, sock: socket.socket | None = None) -> int:
        """Bind and listen now; returns the port (useful with port 0). ``sock``: a listening
        socket to serve instead (one a supervisor bound and handed to its worker processes)."""
        _raise_open_files_limit()
        if sock is None:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(1024)
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        protocol = type("Protocol", (_Protocol,), {"header_timeout_s": self.limits.header_timeout_s})
        config = uvicorn.Config(self.bridge, http=protocol, ws="none", lifespan="off", interface="asgi3", log_config=None,
                                access_log=False, server_header=False, date_header=True, timeout_keep_alive=5,
                                timeout_graceful_shutdown=1, backlog=1024,
                                ssl_certfile=str(self.tls[0]) if self.tls else None,
                                ssl_keyfile=str(self.tls[1]) if self.tls else None,
                                ssl_version=ssl.PROTOCOL_TLS_SERVER)
        self._server = uvicorn.Server(config)
        return self.port

    def serve(self) -> None:
        if self._server is None:
            self.prepare()
        assert self._server is not None and self._socket is not None
        self._server.run(sockets=[self._socket])

    def start(self) -> None:
        if self._server is None:
            self.prepare()
        self._thread = threading.Thread(target=self.serve, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self._server and self._server.started) and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.01)

    def alive(self) -> bool:
        return self._thread is None or self._thread.is_alive()

    def stop(self, timeout: float = 1.5) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.bridge.pool.shutdown(wait=False, cancel_futures=True)


def _raise_open_files_limit() -> None:
    """Many slow connections each hold a descriptor: use what the system allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
