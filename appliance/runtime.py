"""The composition root: build the services, reconcile what a crash left, start the workers in
order, feed systemd's watchdog, and stop everything in reverse order on SIGTERM/SIGINT.

``appliance run`` starts every service in one process; ``appliance serve|devices|record|sync``
start one each (one systemd unit per service). Each service holds an exclusive lock file while it
runs, so a second copy refuses to start and a status row left 'running' without its lock means
the previous run died: that is journaled as ``service.recovered`` before anything else happens.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.clock import utc_timestamp
from appliance.personal import redact_personal_data
from appliance.sdnotify import notify, watchdog_interval
from appliance.service_detail import detail
from appliance.signals import StopSignals
from appliance.site import Site

log = logging.getLogger(__name__)

SERVICES = ("web", "devices", "recorder", "sync")
STOP_DEADLINE_S = 1.5


class CannotStart(RuntimeError):
    """Start-up refused with a reason an operator acts on (exit 2, one line, no traceback)."""


class AlreadyRunning(CannotStart):
    pass


@dataclass
class Worker:
    """A named loop: ``step()`` every ``interval`` seconds until stopped, heartbeating."""

    name: str
    step: Callable[[], str | None]
    interval: float

    def __post_init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.detail = ""
        self.failed: str | None = None
        self.last_step: float | None = None  # monotonic time of the last completed step


class ServiceStatus:
    """The service_status table: what the console shows and what the watchdog checks."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def set(self, name: str, state: str, detail: str = "", *, started: bool = False) -> None:
        now = utc_timestamp(self.site.clock.now())
        with self.site.store.transaction() as conn:
            if started:
                conn.execute(
                    """INSERT INTO service_status (name, pid, state, detail, started, heartbeat)
                       VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT(name) DO UPDATE SET pid=excluded.pid, state=excluded.state,
                         detail=excluded.detail, started=excluded.started, heartbeat=excluded.heartbeat""",
                    (name, os.getpid(), state, detail, now, now),
                )
            else:
                conn.execute(
                    "UPDATE service_status SET state = ?, detail = ?, heartbeat = ? WHERE name = ? AND pid = ?",
                    (state, detail, now, name, os.getpid()),
                )

    def all(self) -> list[dict[str, Any]]:
        rows = self.site.store.reader().execute(
            "SELECT name, pid, state, detail, started, heartbeat FROM service_status ORDER BY name"
        )
        return [dict(r) for r in rows]


class Runtime:
    def __init__(self, site: Site, services: Sequence[str], *, web_factory: Callable[[Site], Any] | None = None,
                 sync_factory: Callable[..., Any] | None = None, demo_center_factory: Callable[[Site], Any] | None = None,
                 simulate_day: float = 0.0) -> None:
        """The layers above the domain come in as factories (the command line passes them): the
        web app, the sync loop, the demo center. ``simulate_day``: play the paced demo day at
        this speed (0: not)."""
        unknown = set(services) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services: {sorted(unknown)}")
        self.site = site
        self.services = list(services)
        self.stop_event = threading.Event()
        self.status = ServiceStatus(site)
        self.workers: list[Worker] = []
        self._web_factory = web_factory
        self._sync_factory = sync_factory
        self._demo_center_factory = demo_center_factory
        self._web_server: Any = None
        self._web_app: Any = None
        self._locks: list[int] = []
        self._started: list[str] = []
        self.device_service: Any = None
        self.recorder_service: Any = None
        self.demo_center: Any = None
        self.simulate_day = simulate_day
        self.day_simulation: Any = None
        self.stop_signal: str | None = None
        self._signals: StopSignals | None = None

    # -- start-up ----------------------------------------------------------------------------

    def _lock(self, name: str) -> None:
        run_dir = self.site.data_dir / "run"
        run_dir.mkdir(exist_ok=True)
        fd = os.open(run_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise AlreadyRunning(f"service {name!r} is already running for this data directory") from exc
        self._locks.append(fd)

    def reconcile(self) -> list[dict[str, Any]]:
        """Journal what a crash left half-done. Runs before any service starts."""
        recovered = []
        rows = {r["name"]: r for r in self.status.all()}
        for name in self.services:
            row = rows.get(name)
            if row and row["state"] in ("starting", "running", "stopping"):
                info = {
                    "service": name,
                    "previous_pid": row["pid"],
                    "previous_state": row["state"],
                    "last_heartbeat": row["heartbeat"],
                }
                self.site.journal.record("service.recovered", info)
                log.warning("service %s did not stop cleanly last time (last heartbeat %s)", name, row["heartbeat"])
                recovered.append(info)
        # Cover whatever the crashed run appended, so a later truncation would be caught.
        self.site.journal.checkpoint()
        return recovered

    def start(self) -> None:
        for name in self.services:
            self._lock(name)
        self.reconcile()
        for name in self.services:
            self.status.set(name, "starting", started=True)
            self.site.journal.record("service.started", {"service": name, "pid": os.getpid(), "version": __version__})
            self._started.append(name)
        cfg = self.site.config
        self._last_checkpoint = self.site.clock.monotonic()
        self.workers.append(Worker("checkpoint", self._checkpoint_step, min(1.0, cfg.journal.checkpoint_interval_s)))
        placeholders = {"recorder": detail("recorder_none"), "sync": detail("sync_not_enrolled")}
        if "devices" in self.services:
            from appliance.device_service import DeviceService

            self.device_service = DeviceService(self.site)
            self.device_service.start()
            self.workers.append(Worker("devices", self.device_service.step, 0.1))
            if self.simulate_day and self.site.config.devices.simulate:
                from appliance.siteops.simulate import DaySimulation

                self.day_simulation = DaySimulation(self.site, self.device_service, speed=float(self.simulate_day), paced=True)
                threading.Thread(target=self._run_day, name="day-simulation", daemon=True).start()
        if "recorder" in self.services and cfg.recording.cameras:
            from appliance.recording import RecorderService

            self.recorder_service = RecorderService(self.site)
            self.recorder_service.start()
            self.workers.append(Worker("recorder", self.recorder_service.step, 1.0))
        if "sync" in self.services and cfg.sync.demo_center and self._demo_center_factory is not None:
            self.demo_center = self._demo_center_factory(self.site)
            log.info("demo center on %s (staff pages: /center/ui/, login demo / demo-center-2026)", self.demo_center.start())
        if "sync" in self.services and self._sync_factory is not None:
            loop = self._sync_factory(self.site, round_s=min(20.0, max(5.0, cfg.sync.interval_s)))
            self.workers.append(Worker("sync", loop.step, cfg.sync.interval_s))
        for name in ("recorder", "sync"):
            if name in self.services and not any(w.name == name for w in self.workers):
                self.workers.append(Worker(name, lambda d=placeholders[name]: d, cfg.services.heartbeat_s))
        for worker in self.workers:
            worker.thread = threading.Thread(target=self._loop, args=(worker,), name=worker.name, daemon=True)
            worker.thread.start()
        if "web" in self.services:
            self._start_web()
        notify("READY=1\nSTATUS=running")
        log.info("started %s (pid %d)", ", ".join(self.services), os.getpid())

    def _start_web(self) -> None:
        from appliance.webserver import WebServer

        assert self._web_factory is not None, "web service needs a web factory"
        cfg = self.site.config.web
        self._web_app = self._web_factory(self.site)
        spool = self.site.data_dir / "run" / "uploads"
        spool.mkdir(parents=True, exist_ok=True)
        server = WebServer(self._web_app, cfg.host, cfg.port, threads=cfg.threads,
                           tls=(cfg.tls_cert, cfg.tls_key) if cfg.tls_cert and cfg.tls_key else None,
                           limits=web_limits(cfg), spool_dir=spool,
                           body_limit=getattr(self._web_app, "extensions", {}).get("body_limit"))
        try:
            server.prepare()  # binds now, so a busy port fails start-up with a clear error
        except OSError as exc:
            raise CannotStart(f"web: cannot listen on {cfg.host}:{cfg.port} ({exc.strerror or exc}): another program "
                                 "has the port; set web.port or stop it") from exc
        server.start()
        self._web_server = server
        url = f"{server.scheme}://{cfg.host}:{self.web_port}/"
        self.status.set("web", "running", detail("web_serving", url=url))
        # The web service's heartbeat, like every worker's: the console never calls it "not
        # responding" while it serves the page; a server thread that died shows as failed.
        worker = Worker("web", lambda: self._web_step(url), self.site.config.services.heartbeat_s)
        self.workers.append(worker)
        worker.thread = threading.Thread(target=self._loop, args=(worker,), name="web-heartbeat", daemon=True)
        worker.thread.start()

    def _web_step(self, url: str) -> str:
        if self._web_server is None or not self._web_server.alive():
            raise RuntimeError("the web server stopped")
        return detail("web_serving", url=url)

    @property
    def web_port(self) -> int | None:
        return self._web_server.port if self._web_server is not None else None

    # -- running -----------------------------------------------------------------------------

    def _run_day(self) -> None:
        try:
            summary = self.day_simulation.run()
            log.info("simulated day finished: %s", summary)
        except Exception:
            log.exception("the day simulation failed")

    def _checkpoint_step(self) -> str:
        """Checkpoint when the interval has passed or enough records are uncovered."""
        cfg = self.site.config.journal
        uncovered = self.site.journal.uncovered()
        due = self.site.clock.monotonic() - self._last_checkpoint >= cfg.checkpoint_interval_s
        if uncovered and (due or uncovered >= cfg.checkpoint_every):
            self.site.journal.checkpoint()
            self._last_checkpoint = self.site.clock.monotonic()
        return detail("journal_uncovered", n=uncovered) if uncovered else detail("journal_covered")

    def _loop(self, worker: Worker) -> None:
        heartbeat_s = self.site.config.services.heartbeat_s
        last_beat = -1e9
        while not self.stop_event.is_set():
            try:
                worker.detail = worker.step() or ""
                worker.failed = None
                worker.last_step = self.site.clock.monotonic()
            except Exception as exc:  # a worker must survive one bad step; the fault is shown
                if worker.failed is None:
                    log.exception("worker %s failed", worker.name)
                worker.failed = redact_personal_data(str(exc))[:300] or type(exc).__name__
            # Between steps (a sync round every minute) the heartbeat goes on, so the console
            # never calls a waiting service "not responding".
            next_step = self.site.clock.monotonic() + worker.interval
            while True:
                now = self.site.clock.monotonic()
                if worker.name in self.services and now - last_beat >= heartbeat_s:
                    state = "failed" if worker.failed else "running"
                    try:
                        self.status.set(worker.name, state, worker.failed or worker.detail)
                        last_beat = now
                    except Exception:
                        log.exception("cannot record heartbeat of %s", worker.name)
                if now >= next_step or self.stop_event.wait(min(heartbeat_s, max(0.0, next_step - now))):
                    break

    def healthy(self) -> bool:
        """Every worker alive, not failing, and stepping recently; the web server alive."""
        cfg = self.site.config.services
        now = self.site.clock.monotonic()
        for w in self.workers:
            limit = max(w.interval, cfg.heartbeat_s) * cfg.watchdog_grace
            if w.thread is None or not w.thread.is_alive() or w.failed is not None:
                return False
            if w.last_step is None or now - w.last_step > limit:
                return False
        return self._web_server is None or self._web_server.alive()

    def wait(self) -> None:
        """Block until a stop signal (or `stop_event`); feed systemd's watchdog meanwhile while
        every worker is healthy."""
        interval = watchdog_interval()
        fed = self.site.clock.monotonic()
        while not self.stop_event.is_set():
            timeout = min(interval or 1.0, 1.0)
            if self._signals is not None:
                self.stop_signal = self._signals.wait(timeout)
                if self.stop_signal:
                    break
            else:
                self.stop_event.wait(timeout)
            if interval and self.site.clock.monotonic() - fed >= interval and self.healthy():
                notify("WATCHDOG=1")
                fed = self.site.clock.monotonic()
        self.stop_event.set()
        if self.stop_signal:
            log.info("received %s, stopping", self.stop_signal)

    def install_signal_handlers(self) -> None:
        self._signals = StopSignals()

    # -- stopping ----------------------------------------------------------------------------

    def stop(self) -> None:
        notify("STOPPING=1")
        self.stop_event.set()
        if self.day_simulation is not None:
            self.day_simulation.stop_event.set()
        if self._web_server is not None:
            live = self._web_app.extensions.get("live")
            if live is not None:
                live.stop()  # ends the open live-update streams, so their threads free up
            self._web_server.stop(STOP_DEADLINE_S / 2)
        for worker in reversed(self.workers):
            if worker.thread is not None:
                worker.thread.join(STOP_DEADLINE_S / 2)
        if self.device_service is not None:
            self.device_service.stop()
        if self.recorder_service is not None:
            self.recorder_service.stop()  # ffmpeg closes its open segment, which is sealed
        if self.demo_center is not None:
            self.demo_center.stop()
        try:
            for name in self._started:
                self.site.journal.record("service.stopped", {"service": name, "pid": os.getpid()})
                self.status.set(name, "stopped")
            self.site.journal.checkpoint()
        finally:
            for fd in self._locks:
                os.close(fd)
            self._locks.clear()
        log.info("stopped %s", ", ".join(self._started) or "nothing")
        self._started.clear()


def web_limits(cfg: Any) -> Any:
    from appliance.webserver import Limits

    return Limits(header_timeout_s=cfg.header_timeout_s, body_timeout_s=cfg.body_timeout_s)


def run_services(site: Site, services: Sequence[str], simulate_day: float = 0.0, **factories: Any) -> int:
    runtime = Runtime(site, services, simulate_day=simulate_day, **factories)
    runtime.install_signal_handlers()
    try:
        runtime.start()
        runtime.wait()
    except CannotStart as exc:
        log.error("%s", exc)
        return 2
    finally:
        runtime.stop()
    return 0


def data_dir_default() -> Path:
    return Path(os.environ.get("APPLIANCE_DATA", "/var/lib/site-appliance"))
