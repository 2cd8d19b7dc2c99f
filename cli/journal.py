"""`appliance journal`: verify, show, checkpoint, prove (docs/journal.md)."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import click

from cli.common import config_option, data_option, emit, fail, friendly_errors


@click.group()
def journal() -> None:
    """The signed journal: verify, show, checkpoint, prove."""


@journal.command("verify")
@data_option
@config_option
@click.option("--threads", default=2, show_default=True, help="Threads for signature checks.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Verify against this key, held outside the data directory (a copy of keys/site.pub as PEM, "
                   "or the verifier key of record 1 / the center's pages).")
@click.option("--fingerprint", "pinned_fingerprint", default=None,
              help="The key's fingerprint as written down at init or shown by the center (64 hex characters).")
@friendly_errors
def journal_verify(data_dir: Path, config_path: Path | None, threads: int, key_path: Path | None,
                   pinned_fingerprint: str | None) -> None:
    """Re-check every record from 1: the key's copies, types, hashes, chain, signatures, gaps,
    checkpoints. Prints one JSON verdict with the key's fingerprint; exit 1 when anything fails."""
    from appliance.config import load_config
    from appliance.journal import CHECKPOINT_FILE
    from appliance.keys import (
        KeyFileError,
        load_pinned_key,
        load_public_key,
        normalise_fingerprint,
    )
    from appliance.store import connect
    from appliance.verify import verify_journal

    cfg = load_config(config_path, data_dir=data_dir)
    if not cfg.database_path.exists():
        fail(f"{cfg.database_path}: no database")
    fp = normalise_fingerprint(pinned_fingerprint) if pinned_fingerprint is not None else None
    pinned = load_pinned_key(key_path) if key_path is not None else None
    try:
        file_key = load_public_key(cfg.paths.keys_dir)
    except KeyFileError as exc:
        if pinned is None:
            fail(f"{exc}; give the site's key with --key FILE")
        file_key = None
    note_path = cfg.paths.data / CHECKPOINT_FILE
    latest = note_path.read_bytes() if note_path.exists() else None
    conn = connect(cfg.database_path, cfg.store.busy_timeout_ms, readonly=True)
    try:
        result = verify_journal(conn, cfg.site.id, pinned or file_key, latest_note=latest, threads=threads,
                                key_file=file_key if pinned is not None else None, pinned_fingerprint=fp,
                                pinned=pinned is not None)
    finally:
        conn.close()
    emit(result.as_json())
    sys.exit(0 if result.ok else 1)


@journal.command("show")
@data_option
@config_option
@click.option("--since", default=0, show_default=True, type=click.IntRange(min=0), help="Show records after this seq.")
@click.option("--kind", default=None, help="Only this kind (or its sub-kinds, e.g. 'service').")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="At most this many records.")
@friendly_errors
def journal_show(data_dir: Path, config_path: Path | None, since: int, kind: str | None, limit: int | None) -> None:
    """Print records as JSON lines, personal data masked. Each record's storage, encoding, hash,
    members and chain are checked as it is read (signatures: `journal verify`); at the first
    damaged record one JSON verdict line is printed instead, and the exit code is 1."""
    from appliance.config import load_config
    from appliance.keys import fingerprint, load_public_key
    from appliance.personal import redact_personal_data
    from appliance.store import connect
    from appliance.verify import read_records

    cfg = load_config(config_path, data_dir=data_dir)
    if not cfg.database_path.exists():
        fail(f"{cfg.database_path}: no database")
    conn = connect(cfg.database_path, cfg.store.busy_timeout_ms, readonly=True)
    key = load_public_key(cfg.paths.keys_dir)
    try:
        for item in read_records(conn, cfg.site.id, key, since=since, kind=kind, limit=limit):
            if isinstance(item, dict):  # the verdict on a damaged record, shaped as verify's
                emit({**item, "site": cfg.site.id, "key_fingerprint": fingerprint(key), "key_pinned": False})
                sys.exit(1)
            click.echo(redact_personal_data(json.dumps(item.as_json(), ensure_ascii=False)))
    finally:
        conn.close()


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
            fail("no signed checkpoint yet (run 'appliance journal checkpoint')")
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
    except (merkle.ProofError, IndexError) as exc:
        fail(f"no such proof: {exc or 'out of range'}")
    emit({**out, "proof": b64(proof), "checkpoint": note_text})
