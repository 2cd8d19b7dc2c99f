"""`appliance evidence`: export and check evidence packages (docs/evidence.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.common import config_option, data_option, emit


@click.group()
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
