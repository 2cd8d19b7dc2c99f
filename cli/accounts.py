"""`appliance user` and `appliance kiosk`: accounts and registered kiosks."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.common import config_option, data_option, emit, friendly_errors


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group()
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


@click.group()
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
    from appliance.kiosks import Kiosks
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        code = Kiosks(site).add(name, purpose, reader=reader, room=room)
    emit({"ok": True, "name": name, "purpose": purpose, "reader": reader, "room": room, "code": code})


@kiosk.command("disable")
@data_option
@config_option
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the kiosk again instead (it then needs a new code: `kiosk code`).")
@friendly_errors
def kiosk_disable(data_dir: Path, config_path: Path | None, name: str, enable: bool) -> None:
    """Disable a kiosk at once: its device token stops working on its next request and its open
    screens stop updating (a lost or stolen screen), or --enable it again."""
    from appliance.kiosks import Kiosks
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        Kiosks(site).set_disabled(name, not enable)
    emit({"ok": True, "name": name, "disabled": not enable})


@kiosk.command("code")
@data_option
@config_option
@click.argument("name")
@friendly_errors
def kiosk_code(data_dir: Path, config_path: Path | None, name: str) -> None:
    """A new one-time enrolment code for a registered kiosk (a replaced screen); its old
    enrolment stops working."""
    from appliance.kiosks import Kiosks
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        code = Kiosks(site).new_code(name)
    emit({"ok": True, "name": name, "code": code})


@kiosk.command("list")
@data_option
@config_option
@friendly_errors
def kiosk_list(data_dir: Path, config_path: Path | None) -> None:
    """List kiosks as JSON lines (name, purpose, reader, room, enrolled, disabled, token lapse)."""
    from appliance.kiosks import Kiosks
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        for row in Kiosks(site).all():
            emit(row)
