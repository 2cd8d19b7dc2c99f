"""Site operations on the command line: the day plan, rooms, experts' fees, a simulated day."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from cli.common import (
    FiniteFloat,
    config_option,
    data_option,
    emit,
    fail,
    friendly_errors,
    read_text_file,
)


@click.group()
def plan() -> None:
    """The day plan (rooms, gates, sessions, rosters): load it, print its JSON Schema."""


@plan.command("load")
@data_option
@config_option
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@friendly_errors
def plan_load(data_dir: Path, config_path: Path | None, file: Path) -> None:
    """Load a day plan (docs/day-plan.schema.json); ID numbers are sealed on load."""
    from appliance.site import open_site
    from appliance.siteops.plan import PlanError, load_plan, parse_plan

    try:
        day_plan = parse_plan(read_text_file(file))
        with open_site(data_dir, config_path=config_path) as site:
            counts = load_plan(site, day_plan)
    except PlanError as exc:
        click.echo(f"error: {file}: {exc}", err=True)
        sys.exit(2)
    emit({"ok": True, "day": day_plan.date.isoformat(), "version": day_plan.version, **counts})


@plan.command("schema")
def plan_schema() -> None:
    """Print the day plan's JSON Schema."""
    from appliance.siteops.plan import json_schema

    click.echo(json.dumps(json_schema(), ensure_ascii=False, indent=2))


@click.group()
def rooms() -> None:
    """Room scheduling: booking requests given rooms and times (docs/site-operations.md)."""


@rooms.command("book")
@data_option
@config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@friendly_errors
def rooms_book(data_dir: Path, config_path: Path | None, file: Path) -> None:
    """Add the booking requests of FILE (a JSON list), each for the venue date of its earliest start."""
    from appliance.site import open_site
    from appliance.siteops.scheduling import (
        VENUE_TZ,
        BookingError,
        add_booking,
        parse_requests,
    )

    try:
        requests = parse_requests(read_text_file(file))
        with open_site(data_dir, config_path=config_path) as site:
            ids = [add_booking(site, day=r.earliest.astimezone(VENUE_TZ).date().isoformat(), by="cli",
                               **r.model_dump()) for r in requests]
    except BookingError as exc:
        click.echo(f"error: {file}: {exc}", err=True)
        sys.exit(2)
    emit({"ok": True, "bookings": ids})


@rooms.command("schedule")
@data_option
@config_option
@click.option("--day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Venue date, YYYY-MM-DD.")
@friendly_errors
def rooms_schedule(data_dir: Path, config_path: Path | None, day: Any) -> None:
    """Give the day's open bookings rooms and times around the day plan; print the result as JSON."""
    from appliance.site import open_site
    from appliance.siteops.scheduling import describe, schedule_day

    day = day.date().isoformat()
    with open_site(data_dir, config_path=config_path) as site:
        result = schedule_day(site, day, by="cli")
    for item in result["unplaced"]:
        item["explained"] = [describe(r) for r in item["reasons"]]
    emit({"ok": True, **result})


@click.group()
def simulate() -> None:
    """Simulations against the device simulators."""


@simulate.command("day")
@data_option
@config_option
@click.option("--seed", default=0, show_default=True)
@click.option("--speed", default=1.0, show_default=True, type=FiniteFloat(min=0, min_open=True, max=10_000),
              help="Time compression: 10 runs the day ten times faster (more than 0).")
@friendly_errors
def simulate_day(data_dir: Path, config_path: Path | None, seed: int, speed: float) -> None:
    """A venue day (needs `devices.simulate` and the demo devices); prints a JSON summary."""
    from appliance.device_service import DeviceService
    from appliance.site import open_site
    from appliance.siteops.simulate import DaySimulation

    with open_site(data_dir, config_path=config_path) as site:
        if not site.config.devices.simulate:
            raise click.UsageError("devices.simulate is off: a day simulation drives simulated devices only")
        service = DeviceService(site)
        service.start()
        stop = threading.Event()
        runner = threading.Thread(target=lambda: _run_commands(service, stop), daemon=True)
        runner.start()
        try:
            summary = DaySimulation(site, service, speed=speed, seed=seed).run()
            time.sleep(1.0)  # the last commands and announcements
        finally:
            stop.set()
            runner.join(2)
            service.stop()
    emit(summary)


@simulate.command("remote-evaluation")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A new folder for the two venues' data and the center's (its PostgreSQL cluster beside it).")
@click.option("--delay-ms", default=0.0, show_default=True, type=FiniteFloat(min=0, max=2000),
              help="Latency added to each venue's link to the center, each way (milliseconds).")
@click.option("--cut-s", default=4.0, show_default=True, type=FiniteFloat(min=0, max=600),
              help="How long the secondary venue's link stays cut, mid-step (seconds).")
@friendly_errors
def simulate_remote(folder: Path, delay_ms: float, cut_s: float) -> None:
    """A remote evaluation: a main venue, a secondary venue and the center on loopback, the
    link cut mid-step (docs/remote-evaluation.md); prints a JSON summary, exit 1 when an action
    was lost or duplicated or a journal does not verify."""
    from cli.remote_demo import SimulationError, run

    if folder.exists() and any(folder.iterdir()):
        fail(f"--folder {folder}: not empty (the simulation makes new venues)")
    try:
        summary = run(folder, delay_ms=delay_ms, cut_s=cut_s)
    except SimulationError as exc:
        fail(f"the simulation stopped: {exc}")
    emit(summary)
    if not summary["ok"] or summary["actions_lost"] or summary["duplicates"]:
        sys.exit(1)


def _run_commands(service: Any, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        service.step()


@click.group()
def fees() -> None:
    """Experts' fees (docs/site-operations.md)."""


@fees.command("sheet")
@data_option
@config_option
@click.option("--session", "session_id", required=True, help="Session id.")
@click.option("--finalize", is_flag=True, help="Journal the sheet (the session must have ended; bank cards entered).")
def fees_sheet(data_dir: Path, config_path: Path | None, session_id: str, finalize: bool) -> None:
    """Print a session's fee sheet as JSON (names and bank cards masked; money in fen)."""
    from appliance.site import open_site
    from appliance.siteops.fees import FeeError, fee_sheet, finalize_sheet

    try:
        with open_site(data_dir, config_path=config_path) as site:
            sheet = fee_sheet(site, session_id)
            if finalize:
                sheet["finalized_sha256"] = finalize_sheet(site, session_id, by="cli")["sha256"]
    except FeeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    emit({"ok": True, **sheet})


@fees.command("quote")
@data_option
@config_option
@click.option("--hours", required=True, type=FiniteFloat(min=0, max=24),
              help="How long the expert worked, in hours (e.g. 5.5).")
@click.option("--holiday", is_flag=True, help="Paid as a holiday.")
@click.option("--terminated", is_flag=True, help="The session was terminated (中止后终止).")
@friendly_errors
def fees_quote(data_dir: Path, config_path: Path | None, hours: float, holiday: bool, terminated: bool) -> None:
    """What the configured fee rule pays for a given duration, before and after the daily cap:
    check the rule against the venue's published fee notice without running a session."""
    from appliance.config import load_config
    from appliance.siteops.fees import FeeError, quote

    rule = load_config(config_path, data_dir=data_dir).siteops.fees
    try:
        emit({"ok": True, **quote(rule, round(hours * 60), holiday=holiday, terminated=terminated)})
    except FeeError as exc:
        fail(str(exc))
