"""`appliance sync` and `appliance enroll`: the site's side of the province (docs/sync-protocol.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.common import config_option, data_option, emit, friendly_errors
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
