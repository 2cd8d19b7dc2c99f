"""`appliance center …`: the provincial center's commands (docs/center.md). The center is a
separate product; these commands import only `center/` and what both sides share."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from cli.common import emit, fail, read_text_file


@click.group()
def center() -> None:
    """The provincial center: init, serve, sites, feed, staff, scrub (docs/center.md)."""


center_data = click.option("--data", "center_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                           help="The center's data folder (its center.toml, key and secrets).")


def _open(center_dir: Path, **kwargs: Any) -> Any:
    """The center of DIR/center.toml, or one clear line and exit 2 (a missing or wrong setting,
    an unreachable database)."""
    from center.config import CenterConfigError
    from center.core import Center
    from center.db import DatabaseError

    try:
        return Center(center_dir, **kwargs)
    except CenterConfigError as exc:
        fail(f"center.toml: {exc}")
    except DatabaseError as exc:
        fail(f"the center's database cannot be used: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}")


@center.command("init")
@center_data
@click.option("--database", required=True, help="The PostgreSQL URL, e.g. postgresql://center@db.example:5432/center")
@click.option("--workers", type=click.IntRange(1, 256), help="API worker processes (default: the CPU count).")
@click.option("--footage-path", help="posix store: the footage directory (relative: inside the data folder).")
@click.option("--s3-bucket", help="s3 store: the bucket (credentials from the environment, as boto3 finds them).")
@click.option("--s3-endpoint", help="s3 store: the object store's URL (omitted: AWS).")
@click.option("--s3-region", help="s3 store: the region.")
def center_init(center_dir: Path, database: str, workers: int | None, footage_path: str | None, s3_bucket: str | None,
                s3_endpoint: str | None, s3_region: str | None) -> None:
    """Write DIR/center.toml and bring the database's schema up to date."""
    from center.config import CenterConfigError, write

    footage: dict[str, str] = {}
    if s3_bucket:
        footage = {"backend": "s3", "bucket": s3_bucket, **({"endpoint_url": s3_endpoint} if s3_endpoint else {}),
                   **({"region": s3_region} if s3_region else {})}
    elif footage_path:
        footage = {"backend": "posix", "path": footage_path}
    try:
        path = write(center_dir, database, workers=workers, footage=footage or None)
    except CenterConfigError as exc:
        fail(str(exc))
    c = _open(center_dir)
    emit({"ok": True, "config": str(path), "fingerprint": _fingerprint(c)})


def _fingerprint(c: Any) -> str:
    from appliance.keys import fingerprint

    return fingerprint(c.key.public_key())


@center.command("migrate")
@center_data
def center_migrate(center_dir: Path) -> None:
    """Bring the database's schema to the newest revision (serve does this at every start)."""
    from center.config import CenterConfigError, load
    from center.db import DatabaseError, migrate

    try:
        emit({"ok": True, "revision": migrate(load(center_dir).database)})
    except CenterConfigError as exc:
        fail(f"center.toml: {exc}")
    except DatabaseError as exc:
        fail(f"the center's database cannot be used: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}")


@center.command("site")
@center_data
@click.argument("action", type=click.Choice(["add", "revoke"]))
@click.argument("site_id")
@click.option("--replace-key", is_flag=True, help="add: the site is enrolled already and gets a new key (a replaced box).")
def center_site(center_dir: Path, action: str, site_id: str, replace_key: bool) -> None:
    """`add SITE`: a one-time enrolment token for the site; `revoke SITE`: refuse its key from now on."""
    from center.base import CenterError

    c = _open(center_dir)
    if action == "add":
        try:
            emit({"ok": True, "site": site_id, "token": c.add_site(site_id, replace_key=replace_key)})
        except CenterError as exc:
            fail(str(exc))
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
    from center.base import CenterError

    c = _open(center_dir)
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
    from center.accounts import CenterStaff
    from center.base import CenterError

    try:
        CenterStaff(_open(center_dir)).set(name, password)
    except CenterError as exc:
        fail(str(exc))
    emit({"ok": True, "staff": name})


@center.command("evidence")
@center_data
@click.option("--site", "site_id", default=None, help="The venue's site id (not with --remote).")
@click.option("--remote", is_flag=True, help="A remote evaluation's package: every venue's records and keys in one.")
@click.option("--session", required=True, help="The session's id.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The package to write (.zip).")
@click.option("--by", default="cli", show_default=True, help="Who exports it (written to the center's log).")
def center_evidence(center_dir: Path, site_id: str | None, remote: bool, session: str, out: Path, by: str) -> None:
    """A session's evidence package from what the center holds, signed by the center and
    checked offline with `appliance evidence verify` (docs/evidence.md); with --remote, a
    remote evaluation's package holding every venue's."""
    from center.base import CenterError
    from center.evidence import export, export_remote

    if remote == (site_id is not None):
        fail("--site: name the venue, or give --remote for a remote evaluation's package (one of the two)")
    try:
        if remote:
            emit({"ok": True, **export_remote(_open(center_dir), session, out, by=by)})
        else:
            emit({"ok": True, **export(_open(center_dir), site_id, session, out, by=by)})
    except CenterError as exc:
        fail(str(exc))


@center.command("scrub")
@center_data
@click.option("--older-than-days", type=click.IntRange(0, 3650), default=0, show_default=True,
              help="Only objects not scrubbed within this many days (0: every object).")
def center_scrub(center_dir: Path, older_than_days: int) -> None:
    """Re-hash stored footage against the hashes the venues' journals sealed; a mismatch or a
    missing object is raised as an alarm. Exit 1 when any was found (the nightly timer's job)."""
    from center.scrub import scrub

    result = scrub(_open(center_dir), older_than_days=older_than_days)
    emit({"ok": not result["bad"] and "stopped" not in result, **result})
    if result["bad"] or "stopped" in result:
        sys.exit(1)


@center.command("simulate-province")
@center_data
@click.option("--sites", type=click.IntRange(1, 400), default=12, show_default=True, help="How many county venues.")
@click.option("--days", type=click.IntRange(1, 60), default=2, show_default=True, help="Days of journal and footage each.")
@click.option("--notes-per-day", type=click.IntRange(0, 100000), default=60, show_default=True,
              help="Patrol notes per venue and day (besides the plan, sessions, an alarm and footage).")
@click.option("--venues", "venues_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the venues' data folders go (default: DIR/simulated-venues).")
def center_simulate(center_dir: Path, sites: int, days: int, notes_per_day: int, venues_dir: Path | None) -> None:
    """A province in a box: N enrolled venues with signed journals and footage, synced
    concurrently into this center (one of them behind, one diverged, one silent)."""
    from center.api import center_server
    from cli.province import simulate

    c = _open(center_dir)
    server = center_server(c, "127.0.0.1", 0, threads=8, name="province-center")
    url = f"http://127.0.0.1:{server.prepare()}"
    server.start()
    try:
        emit({"ok": True, **simulate(c, url, venues_dir or center_dir / "simulated-venues", sites, days,
                                     notes_per_day=notes_per_day)})
    finally:
        server.stop()
        c.db.close()


@center.command("serve")
@center_data
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--workers", type=click.IntRange(1, 256), help="API worker processes (default: center.toml's, else the CPU count).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Serve HTTPS with this certificate (PEM chain).")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="The certificate's private key (PEM).")
def center_serve(center_dir: Path, host: str, port: int, workers: int | None, tls_cert: Path | None, tls_key: Path | None) -> None:
    """Serve the center's API and pages on every core until interrupted: a supervisor and N
    worker processes sharing PostgreSQL and the footage store (docs/center.md)."""
    from center.workers import serve

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    _open(center_dir).db.close()  # a wrong setting or an unreachable database: one clear line, exit 2
    try:
        serve(center_dir, host, port, workers, tls=(tls_cert, tls_key) if tls_cert and tls_key else None)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
