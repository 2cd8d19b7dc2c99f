"""`appliance evidence`: export and check evidence packages (docs/evidence.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cli.common import fail, friendly_errors, config_option, data_option, emit


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
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The site's key held elsewhere (PEM, or its verifier key text): the package must be signed by it.")
@click.option("--fingerprint", "pinned_fingerprint", default=None,
              help="The site key's fingerprint as written down at the venue or shown by the center (64 hex); "
                   "for a remote evaluation's package, the center key's.")
@friendly_errors
def evidence_verify(file: Path, key_path: Path | None, pinned_fingerprint: str | None) -> None:
    """Check an evidence package and print the fingerprint of the key that signed it; exit 1 and
    name every problem when anything is altered or the key is not the pinned one; exit 2 when
    the file is not a package at all."""
    from appliance.evidence import EvidenceError, verify
    from appliance.evidence_remote import is_remote, verify_remote
    from appliance.keys import load_pinned_key, normalise_fingerprint

    key = load_pinned_key(key_path) if key_path is not None else None
    fp = normalise_fingerprint(pinned_fingerprint) if pinned_fingerprint is not None else None
    try:
        if is_remote(file):  # a remote evaluation's: every venue's package, pinned to the keys it lists
            if key_path is not None:
                fail("--key: a remote evaluation's package holds several venues' keys; pin the center's with --fingerprint")
            report: Any = verify_remote(file, center_fingerprint=fp)
        else:
            report = verify(file, key=key, fingerprint_hex=fp)
    except EvidenceError as exc:
        fail(str(exc))
    emit(report.as_json())
    if not report.ok:
        sys.exit(1)
