"""The ``appliance`` command. Every command that reads a site takes ``--data DIR`` (default:
$APPLIANCE_DATA, else /var/lib/site-appliance) and optionally ``--config FILE``.

Results are JSON on standard output; errors are one line on standard error and exit code 2
(1 is reserved for "verification failed").
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from appliance.config import ConfigError, effective_config, load_config
from appliance.keys import KeyFileError
from appliance.personal import PersonalDataError, redact_id_numbers
from appliance.store import StoreError

DEFAULT_DATA = "/var/lib/site-appliance"

data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="APPLIANCE_DATA",
    default=DEFAULT_DATA,
    show_default=True,
    help="Data directory of the site.",
)
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Configuration file (default: DATA/appliance.toml).",
)


def emit(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, separators=(", ", ": ")))


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from appliance.accounts import AccountError
        from appliance.site import SiteError

        try:
            return func(*args, **kwargs)
        except (ConfigError, SiteError, KeyFileError, StoreError, PersonalDataError, AccountError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group()
@click.version_option(package_name="site-appliance")
def main() -> None:
    """Site appliance for a county public resource trading venue."""


@main.command()
@data_option
@click.option("--site-id", required=True, help="Site id from the provincial center, e.g. cn-220281-jyzx.")
@click.option("--site-name", required=True, help="The venue's name, e.g. 某某县公共资源交易中心.")
@friendly_errors
def init(data_dir: Path, site_id: str, site_name: str) -> None:
    """Create the database, the signing key and the personal-data key (never overwrites keys)."""
    from appliance.site import init_site

    config_path = init_site(data_dir, site_id, site_name)
    emit({"ok": True, "data": str(data_dir), "config": str(config_path), "site_id": site_id})


@main.group()
def config() -> None:
    """Configuration."""


@config.command("show")
@data_option
@config_option
@friendly_errors
def config_show(data_dir: Path, config_path: Path | None) -> None:
    """Print the effective configuration (file + environment), secrets hidden."""
    emit(effective_config(load_config(config_path, data_dir=data_dir)))


def _run(data_dir: Path, config_path: Path | None, services: list[str], simulate_day: bool = False) -> None:
    from appliance.logs import setup_logging
    from appliance.runtime import run_services
    from appliance.site import open_site
    from kiosk_ui import create_app

    with open_site(data_dir, config_path=config_path) as site:
        setup_logging(site.config)
        if len(services) > 1:  # 'appliance run': the [services] switches apply; a single unit always runs
            services = [s for s in services if s == "web" or getattr(site.config.services, s)]
        code = run_services(site, services, web_factory=create_app, simulate_day=simulate_day)
    sys.exit(code)


@main.command()
@data_option
@config_option
@click.option("--simulate-day", is_flag=True, help="With devices.simulate: play a venue day at human speed (make run).")
@friendly_errors
def run(data_dir: Path, config_path: Path | None, simulate_day: bool) -> None:
    """Start every service (web, devices, recorder, sync) in one process tree."""
    _run(data_dir, config_path, ["web", "devices", "recorder", "sync"], simulate_day)


for _name, _service, _help in (
    ("serve", "web", "Run the web server alone (systemd unit appliance-web)."),
    ("devices", "devices", "Run the devices service alone (systemd unit appliance-devices)."),
    ("record", "recorder", "Run the recorder service alone (systemd unit appliance-recorder)."),
):

    def _single(data_dir: Path, config_path: Path | None, _s: str = _service) -> None:
        _run(data_dir, config_path, [_s])

    main.command(name=_name, help=_help)(data_option(config_option(friendly_errors(_single))))


@main.command()
@data_option
@config_option
@click.option("--author", default="staff", show_default=True, help="Who writes the note.")
@click.argument("text")
@friendly_errors
def note(data_dir: Path, config_path: Path | None, author: str, text: str) -> None:
    """Append a staff note to the journal (ID numbers in the text are masked)."""
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        record = site.journal.record(
            "staff.note", {"text": redact_id_numbers(text), "author": redact_id_numbers(author)}
        )
    emit({"ok": True, "seq": record.seq, "hash": record.hash})


@main.group()
def journal() -> None:
    """The signed journal: verify, show, checkpoint, prove."""


@journal.command("verify")
@data_option
@config_option
@click.option("--threads", default=2, show_default=True, help="Threads for signature checks.")
@friendly_errors
def journal_verify(data_dir: Path, config_path: Path | None, threads: int) -> None:
    """Re-check every record from 1: hashes, chain, signatures, gaps, checkpoints."""
    from appliance.journal import CHECKPOINT_FILE
    from appliance.site import open_for_verification
    from appliance.store import connect
    from appliance.verify import verify_journal

    cfg, public_key = open_for_verification(data_dir, config_path)
    if not cfg.database_path.exists():
        raise StoreError(f"{cfg.database_path}: no database")
    note_path = cfg.paths.data / CHECKPOINT_FILE
    latest = note_path.read_text(encoding="utf-8") if note_path.exists() else None
    conn = connect(cfg.database_path, cfg.store.busy_timeout_ms, readonly=True)
    try:
        result = verify_journal(conn, cfg.site.id, public_key, latest_note=latest, threads=threads)
    finally:
        conn.close()
    emit(result.as_json())
    sys.exit(0 if result.ok else 1)


@journal.command("show")
@data_option
@config_option
@click.option("--since", default=0, show_default=True, help="Show records after this seq.")
@click.option("--kind", default=None, help="Only this kind (or its sub-kinds, e.g. 'service').")
@click.option("--limit", default=None, type=int, help="At most this many records.")
@friendly_errors
def journal_show(data_dir: Path, config_path: Path | None, since: int, kind: str | None, limit: int | None) -> None:
    """Print records as JSON lines, personal data masked."""
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        for record in site.journal.records(since=since, kind=kind, limit=limit):
            click.echo(redact_id_numbers(json.dumps(record.as_json(), ensure_ascii=False)))


@journal.command("checkpoint")
@data_option
@config_option
@friendly_errors
def journal_checkpoint(data_dir: Path, config_path: Path | None) -> None:
    """Sign a checkpoint over the journal's current head now."""
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        made = site.journal.checkpoint()
        latest = site.journal.latest_checkpoint()
    emit({"ok": True, "new": made is not None, "size": latest[0] if latest else 0, "note": latest[1] if latest else None})


@journal.command("prove")
@data_option
@config_option
@click.option("--seq", type=int, default=None, help="Inclusion proof for this record.")
@click.option("--old-size", type=int, default=None, help="Consistency proof from this tree size.")
@friendly_errors
def journal_prove(data_dir: Path, config_path: Path | None, seq: int | None, old_size: int | None) -> None:
    """RFC 9162 proofs against the latest signed checkpoint."""
    from appliance import merkle
    from appliance.site import open_site

    if (seq is None) == (old_size is None):
        raise click.UsageError("give exactly one of --seq or --old-size")
    with open_site(data_dir, config_path=config_path) as site:
        latest = site.journal.latest_checkpoint()
        if latest is None:
            raise StoreError("no signed checkpoint yet (run 'appliance journal checkpoint')")
        size, note_text = latest
        leaves = site.journal.leaf_hashes(size)

    def b64(items: list[bytes]) -> list[str]:
        return [base64.b64encode(x).decode() for x in items]

    try:
        if seq is not None:
            proof = merkle.inclusion_proof(seq - 1, leaves)
            out = {"seq": seq, "leaf_index": seq - 1, "tree_size": size, "leaf_hash": b64([leaves[seq - 1]])[0]}
        else:
            assert old_size is not None
            proof = merkle.consistency_proof(old_size, leaves)
            old_root = merkle.root(leaves[:old_size])
            out = {"old_size": old_size, "old_root": b64([old_root])[0], "tree_size": size}
    except merkle.ProofError as exc:
        raise StoreError(str(exc)) from exc
    emit({**out, "proof": b64(proof), "checkpoint": note_text})


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@main.group()
def user() -> None:
    """Staff, supervisor and admin accounts."""


@user.command("add")
@data_option
@config_option
@click.argument("username")
@click.option("--role", type=click.Choice(["staff", "supervisor", "admin"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@friendly_errors
def user_add(data_dir: Path, config_path: Path | None, username: str, role: str, password_stdin: bool) -> None:
    """Create an account (the password is asked for, or read from stdin)."""
    from appliance.accounts import Accounts
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        created = Accounts(site).add(username, role, _password(password_stdin))
    emit({"ok": True, "username": created.username, "role": created.role})


@user.command("passwd")
@data_option
@config_option
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@friendly_errors
def user_passwd(data_dir: Path, config_path: Path | None, username: str, password_stdin: bool) -> None:
    """Set a new password; the user's open sessions end."""
    from appliance.accounts import Accounts
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        Accounts(site).set_password(username, _password(password_stdin))
    emit({"ok": True, "username": username})


@user.command("disable")
@data_option
@config_option
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@friendly_errors
def user_disable(data_dir: Path, config_path: Path | None, username: str, enable: bool) -> None:
    """Disable an account (its sessions end at once), or --enable it again."""
    from appliance.accounts import Accounts
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        Accounts(site).set_disabled(username, not enable)
    emit({"ok": True, "username": username, "disabled": not enable})


@user.command("unlock")
@data_option
@config_option
@click.argument("username")
@friendly_errors
def user_unlock(data_dir: Path, config_path: Path | None, username: str) -> None:
    """Unlock an account locked by failed logins."""
    from appliance.accounts import Accounts
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        Accounts(site).unlock(username)
    emit({"ok": True, "username": username})


@user.command("list")
@data_option
@config_option
@friendly_errors
def user_list(data_dir: Path, config_path: Path | None) -> None:
    """List accounts as JSON lines."""
    from dataclasses import asdict

    from appliance.accounts import Accounts
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        for account in Accounts(site).list():
            emit(asdict(account))


@main.group()
def kiosk() -> None:
    """Kiosk devices (gate kiosks, evaluation terminals)."""


@kiosk.command("add")
@data_option
@config_option
@click.argument("name")
@click.option("--purpose", type=click.Choice(["gate", "evaluation"]), default="gate", show_default=True)
@click.option("--reader", default=None, help="The ID card reader whose taps it shows (devices.idcard[].name): a gate "
                                            "kiosk's gate reader, an evaluation terminal's desk reader for sign-in.")
@click.option("--room", default=None, help="Evaluation terminals: the room of the day plan it stands in (e.g. PB1).")
@friendly_errors
def kiosk_add(data_dir: Path, config_path: Path | None, name: str, purpose: str, reader: str | None, room: str | None) -> None:
    """Register a kiosk; prints the one-time code to enter at /kiosk/enrol on the device."""
    from appliance.accounts import Accounts
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        code = Accounts(site).add_kiosk(name, purpose, reader=reader, room=room)
    emit({"ok": True, "name": name, "purpose": purpose, "reader": reader, "room": room, "code": code})


@main.group()
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
        day_plan = parse_plan(file.read_text(encoding="utf-8"))
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


@main.group()
def rooms() -> None:
    """Room scheduling: booking requests given rooms and times (docs/site-operations.md)."""


@rooms.command("book")
@data_option
@config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rooms_book(data_dir: Path, config_path: Path | None, file: Path) -> None:
    """Add the booking requests of FILE (a JSON list), each for the venue date of its earliest start."""
    from appliance.site import open_site
    from appliance.siteops.scheduling import VENUE_TZ, BookingError, add_booking, parse_requests

    try:
        requests = parse_requests(file.read_text(encoding="utf-8"))
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
@click.option("--day", required=True, help="Venue date, YYYY-MM-DD.")
def rooms_schedule(data_dir: Path, config_path: Path | None, day: str) -> None:
    """Give the day's open bookings rooms and times around the day plan; print the result as JSON."""
    from appliance.site import open_site
    from appliance.siteops.scheduling import describe, schedule_day

    with open_site(data_dir, config_path=config_path) as site:
        result = schedule_day(site, day, by="cli")
    for item in result["unplaced"]:
        item["explained"] = [describe(r) for r in item["reasons"]]
    emit({"ok": True, **result})


@main.group()
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


@main.group()
def evidence() -> None:
    """Evidence packages: a session's footage and journal with proofs (docs/evidence.md)."""


@evidence.command("export")
@data_option
@config_option
@click.option("--session", "session_id", required=True, help="Session id.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The ZIP to write.")
def evidence_export(data_dir: Path, config_path: Path | None, session_id: str, out: Path) -> None:
    """Write a session's evidence package."""
    from appliance.evidence import EvidenceError, export
    from appliance.site import open_site

    try:
        with open_site(data_dir, config_path=config_path) as site:
            result = export(site, session_id, out, by="cli")
    except EvidenceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    emit({"ok": True, **result})


@evidence.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def evidence_verify(file: Path) -> None:
    """Check an evidence package; exit 1 and name every problem when anything is altered."""
    from appliance.evidence import verify

    report = verify(file)
    emit(report.as_json())
    if not report.ok:
        sys.exit(1)


@main.group(invoke_without_command=True)
@data_option
@config_option
@click.pass_context
@friendly_errors
def sync(ctx: click.Context, data_dir: Path, config_path: Path | None) -> None:
    """Run the sync service alone (systemd unit appliance-sync); `sync once` does one round."""
    if ctx.invoked_subcommand is None:
        _run(data_dir, config_path, ["sync"])


@sync.command("once")
@data_option
@config_option
def sync_once(data_dir: Path, config_path: Path | None) -> None:
    """One round with the center: the feed down, the journal up, session footage up; prints the outcome."""
    from appliance.site import open_site
    from sync.agent import Agent, SyncError

    try:
        with open_site(data_dir, config_path=config_path) as site:
            result = Agent(site).sync_once()
    except SyncError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    emit({"ok": True, **result})


@main.command()
@data_option
@config_option
@click.option("--center", "center_url", required=True, help="The center's base URL, e.g. https://center.example:8443")
@click.option("--token", required=True, help="The one-time enrolment token the center gave for this site.")
@click.option("--ca", "ca_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Pin this CA (PEM): the center's TLS certificate must be issued by it.")
def enroll(data_dir: Path, config_path: Path | None, center_url: str, token: str, ca_file: Path | None) -> None:
    """Register this site's public key with the center and pin the center's key (and CA)."""
    from appliance.site import open_site
    from sync.agent import SyncError
    from sync.agent import enroll as do_enroll

    try:
        with open_site(data_dir, config_path=config_path) as site:
            result = do_enroll(site, center_url, token, ca_file)
    except SyncError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    emit({"ok": True, **result})


@main.group("eval")
def eval_() -> None:
    """Bid evaluation: the scoring engine (docs/scoring.md)."""


@eval_.command("score")
@click.argument("rule_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("bids_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def eval_score(rule_file: Path, bids_file: Path) -> None:
    """Score BIDS.json under RULE.json; prints one JSON array, a row per bidder (bidder, valid,
    baseline, deviation_pct, price_score, total, rank …). Exit 2 with the field named when the
    rule or the bids cannot be scored."""
    from appliance.evaluation.scoring import RuleError, parse_json, score

    try:
        results = score(parse_json(rule_file.read_text(encoding="utf-8")), parse_json(bids_file.read_text(encoding="utf-8")))
    except RuleError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps([r.as_json() for r in results], ensure_ascii=False))


@eval_.command("report")
@data_option
@config_option
@click.argument("session")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Where to write the PDF (or .html).")
def eval_report(data_dir: Path, config_path: Path | None, session: str, out: Path) -> None:
    """Write the issued evaluation report of SESSION (opened and checked against its journaled hash)."""
    from appliance.evaluation.committee import EvaluationError
    from appliance.evaluation.report import read
    from appliance.site import open_site

    try:
        with open_site(data_dir, config_path=config_path) as site:
            data = read(site, session, "html" if out.suffix == ".html" else "pdf")
    except EvaluationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    out.write_bytes(data)
    emit({"ok": True, "session": session, "out": str(out), "bytes": len(data)})


@eval_.command("template")
@data_option
@config_option
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def eval_template(data_dir: Path, config_path: Path | None, file: Path) -> None:
    """Load an evaluation template from FILE.json (when the center cannot send it): checked, kept
    beside the center's templates, journaled with its hash. Exit 2 naming the field at fault."""
    from decimal import Decimal

    from appliance.evaluation.committee import EvaluationError, load_template
    from appliance.site import open_site

    try:
        template = json.loads(file.read_text(encoding="utf-8"), parse_float=Decimal)
        with open_site(data_dir, config_path=config_path) as site:
            template_id = load_template(site, template, by="cli")
    except (EvaluationError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    emit({"ok": True, "template": template_id})


@main.group()
def center() -> None:
    """The reference center receiver (docs/sync-protocol.md)."""


center_data = click.option("--data", "center_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                           help="The center's data directory (created when missing).")


@center.command("site")
@center_data
@click.argument("action", type=click.Choice(["add", "revoke"]))
@click.argument("site_id")
@click.option("--replace-key", is_flag=True, help="add: the site is enrolled already and gets a new key (a replaced box).")
def center_site(center_dir: Path, action: str, site_id: str, replace_key: bool) -> None:
    """`add SITE`: a one-time enrolment token for the site; `revoke SITE`: refuse its key from now on."""
    from sync.center import Center, CenterError

    c = Center(center_dir)
    if action == "add":
        try:
            emit({"ok": True, "site": site_id, "token": c.add_site(site_id, replace_key=replace_key)})
        except CenterError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
    else:
        c.revoke(site_id)
        emit({"ok": True, "site": site_id, "revoked": True})


@center.command("feed")
@center_data
@click.argument("action", type=click.Choice(["add", "compact"]))
@click.argument("site_id")
@click.argument("kind", required=False)
@click.argument("body_file", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path))
def center_feed(center_dir: Path, action: str, site_id: str, kind: str | None, body_file: Path | None) -> None:
    """`add SITE KIND FILE.json`: queue a signed item (day_plan, replacement_result, revocation,
    blacklist, evaluation_template, configuration); `compact SITE`: drop superseded items."""
    from sync.center import Center, CenterError

    c = Center(center_dir)
    try:
        if action == "compact":
            emit({"ok": True, "site": site_id, "dropped": c.compact(site_id)})
            return
        if not kind or body_file is None:
            raise click.UsageError("add needs KIND and FILE")
        try:
            body = json.loads(body_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise click.UsageError(f"{body_file} is not JSON: {exc}") from exc
        emit({"ok": True, **c.add_item(site_id, kind, body)})
    except CenterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@center.command("staff")
@center_data
@click.argument("name")
@click.password_option("--password", help="The staff member's password for the center's web pages.")
def center_staff(center_dir: Path, name: str, password: str) -> None:
    """Add (or reset) a provincial staff login for the center's web pages."""
    from sync.center import Center

    Center(center_dir).set_staff(name, password)
    emit({"ok": True, "staff": name})


@center.command("serve")
@center_data
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Serve HTTPS with this certificate (PEM chain).")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="The certificate's private key (PEM).")
def center_serve(center_dir: Path, host: str, port: int, tls_cert: Path | None, tls_key: Path | None) -> None:
    """Serve the center's API and its staff pages (cheroot) until interrupted."""
    from cheroot import wsgi

    from sync.center import Center, create_center_app

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    server = wsgi.Server((host, port), create_center_app(Center(center_dir)), numthreads=8, server_name="center")
    scheme = "http"
    if tls_cert is not None:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        server.ssl_adapter = BuiltinSSLAdapter(str(tls_cert), str(tls_key))
        scheme = "https"
    server.prepare()
    click.echo(json.dumps({"ok": True, "url": f"{scheme}://{host}:{server.bind_addr[1]}"}), nl=True)
    sys.stdout.flush()
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@main.group()
def simulate() -> None:
    """Simulations against the device simulators."""


@simulate.command("day")
@data_option
@config_option
@click.option("--seed", default=0, show_default=True)
@click.option("--speed", default=1.0, show_default=True, help="Time compression: 10 runs the day ten times faster.")
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


def _run_commands(service: Any, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        service.step()


@main.group()
def bench() -> None:
    """Benchmarks (code in bench/); each prints one JSON object."""


@bench.command("devices")
@click.option("--reads", default=200, show_default=True, help="Card reads per phase.")
@click.option("--opens", default=200, show_default=True, help="Gate opens per phase.")
def bench_devices(reads: int, opens: int) -> None:
    """Card event and gate command latency, idle and with both cores loaded."""
    from bench.devices import run_benchmark

    logging.disable(logging.WARNING)
    emit(run_benchmark(reads=reads, opens=opens))


@bench.command("gate-tap")
@click.option("--taps", default=100, show_default=True, help="Taps per phase.")
def bench_gate_tap(taps: int) -> None:
    """Card tap → gate command, with the decision durably journaled first; idle and loaded."""
    from bench.gate_tap import run_benchmark

    logging.disable(logging.WARNING)
    emit(run_benchmark(taps=taps))


@bench.command("journal")
@click.option("--single", default=300, show_default=True, help="Durable single appends to time.")
@click.option("--batched", default=20000, show_default=True, help="Records appended in batches.")
@click.option("--batch-size", default=500, show_default=True)
@click.option("--verify-records", default=20000, show_default=True)
def bench_journal(single: int, batched: int, batch_size: int, verify_records: int) -> None:
    """Append and verify rates against a raw SQLite baseline measured in the same run."""
    from bench.journal import run_benchmark

    logging.disable(logging.WARNING)
    emit(run_benchmark(single=single, batched=batched, batch_size=batch_size, verify_records=verify_records))


from appliance.device_cli import device  # noqa: E402  (a group of its own module)

main.add_command(device)

if __name__ == "__main__":  # pragma: no cover
    main()
