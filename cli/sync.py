"""`appliance sync`, `appliance enroll` and the reference center's commands (docs/sync-protocol.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cli.common import config_option, data_option, emit, fail, friendly_errors, read_text_file
from cli.services import run_services_of


@click.group(invoke_without_command=True)
@data_option
@config_option
@click.pass_context
@friendly_errors
def sync(ctx: click.Context, data_dir: Path, config_path: Path | None) -> None:
    """Run the sync service alone (systemd unit appliance-sync); `sync once` does one round."""
    if ctx.invoked_subcommand is None:
        run_services_of(data_dir, config_path, ["sync"])


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


@click.command()
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


@click.group()
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
            body = json.loads(read_text_file(body_file))
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
    """Add (or reset) a provincial staff login for the center's web pages (a reset ends its sessions)."""
    from sync.center import Center, CenterError

    from sync.center_accounts import CenterStaff

    try:
        CenterStaff(Center(center_dir)).set(name, password)
    except CenterError as exc:
        fail(str(exc))
    emit({"ok": True, "staff": name})


@center.command("serve")
@center_data
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Serve HTTPS with this certificate (PEM chain).")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="The certificate's private key (PEM).")
def center_serve(center_dir: Path, host: str, port: int, tls_cert: Path | None, tls_key: Path | None) -> None:
    """Serve the center's API and its staff pages until interrupted (docs/web.md, "Slow clients")."""
    from sync.center import Center
    from sync.center_api import center_server

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    server = center_server(Center(center_dir), host, port, tls=(tls_cert, tls_key) if tls_cert and tls_key else None)
    bound = server.prepare()
    click.echo(json.dumps({"ok": True, "url": f"{server.scheme}://{host}:{bound}"}), nl=True)
    sys.stdout.flush()
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
