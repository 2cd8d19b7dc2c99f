"""The top-level ``appliance`` group: init, config, the services, notes; the other groups are
added from their modules."""

from __future__ import annotations

from pathlib import Path

import click

from cli.accounts import kiosk, user
from cli.bench import bench
from cli.common import FiniteFloat, config_option, data_option, emit, friendly_errors
from cli.device import device
from cli.evaluation import eval_
from cli.evidence import evidence
from cli.journal import journal
from cli.services import run_services_of
from cli.siteops import fees, plan, rooms, simulate
from cli.center import center
from cli.sync import enroll, sync


@click.group()
@click.version_option(package_name="site-appliance")
def main() -> None:
    """Site appliance for a county public resource trading venue."""


for _group in (journal, user, kiosk, plan, rooms, fees, evidence, sync, enroll, eval_, center, simulate, bench, device):
    main.add_command(_group)


@main.command()
@data_option
@click.option("--site-id", required=True, help="Site id from the provincial center, e.g. cn-220281-jyzx.")
@click.option("--site-name", required=True, help="The venue's name, e.g. 某某县公共资源交易中心.")
@friendly_errors
def init(data_dir: Path, site_id: str, site_name: str) -> None:
    """Create the database, the signing key and the personal-data key (never overwrites keys);
    prints the signing key's fingerprint for staff to write down."""
    from appliance.keys import fingerprint, grouped, load_public_key
    from appliance.site import init_site

    config_path = init_site(data_dir, site_id, site_name)
    fp = fingerprint(load_public_key(data_dir / "keys"))
    emit({"ok": True, "data": str(data_dir), "config": str(config_path), "site_id": site_id,
          "key_fingerprint": fp, "key_fingerprint_grouped": grouped(fp)})


@main.group()
def config() -> None:
    """Configuration."""


@config.command("show")
@data_option
@config_option
@friendly_errors
def config_show(data_dir: Path, config_path: Path | None) -> None:
    """Print the effective configuration (file + environment), secrets and camera passwords hidden."""
    from appliance.config import effective_config, load_config

    emit(effective_config(load_config(config_path, data_dir=data_dir)))


@main.command()
@data_option
@config_option
@click.option("--simulate-day", is_flag=True, help="With devices.simulate: play a venue day at human speed (make run), "
              "once a day: it starts when someone logs in (or after 5 minutes), a few minutes per phase.")
@click.option("--simulate-speed", default=1.0, show_default=True, type=FiniteFloat(min=0, min_open=True, max=1000),
              help="With --simulate-day: how much faster than the human pace (2: twice as fast).")
@friendly_errors
def run(data_dir: Path, config_path: Path | None, simulate_day: bool, simulate_speed: float) -> None:
    """Start every service (web, devices, recorder, sync) in one process tree."""
    run_services_of(data_dir, config_path, ["web", "devices", "recorder", "sync"], simulate_speed if simulate_day else 0.0)


for _name, _service, _help in (
    ("serve", "web", "Run the web server alone (systemd unit appliance-web)."),
    ("devices", "devices", "Run the devices service alone (systemd unit appliance-devices)."),
    ("record", "recorder", "Run the recorder service alone (systemd unit appliance-recorder)."),
):

    def _single(data_dir: Path, config_path: Path | None, _s: str = _service) -> None:
        run_services_of(data_dir, config_path, [_s])

    main.command(name=_name, help=_help)(data_option(config_option(friendly_errors(_single))))


@main.command()
@data_option
@config_option
@click.option("--author", default="staff", show_default=True, help="Who writes the note.")
@click.argument("text")
@friendly_errors
def note(data_dir: Path, config_path: Path | None, author: str, text: str) -> None:
    """Append a staff note to the journal (ID and bank card numbers in the text are masked)."""
    from appliance.personal import redact_personal_data
    from appliance.site import open_site

    with open_site(data_dir, config_path=config_path) as site:
        record = site.journal.record(
            "staff.note", {"text": redact_personal_data(text), "author": redact_personal_data(author)}
        )
    emit({"ok": True, "seq": record.seq, "hash": record.hash})


if __name__ == "__main__":  # pragma: no cover
    main()
