"""Opening a site's data directory: config, store, keys, journal, personal-data cipher.

`init_site` creates a new one; `open_site` opens an existing one and checks that the database,
the configuration and the keys belong together.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from appliance.clock import Clock, utc_timestamp
from appliance.config import CONFIG_FILE_NAME, Config, ConfigError, initial_config_text, load_config
from appliance.journal import CHECKPOINT_FILE, Journal
from appliance.keys import create_site_keys, load_public_key, load_site_keys
from appliance.personal import PersonalDataCipher
from appliance.signednote import verifier_key
from appliance.store import Store


log = logging.getLogger(__name__)


class SiteError(RuntimeError):
    """The data directory is missing, incomplete, or its parts do not belong together."""


def public_key_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


@dataclass
class Site:
    config: Config
    store: Store
    journal: Journal
    personal: PersonalDataCipher
    public_key: Ed25519PublicKey
    clock: Clock

    @property
    def data_dir(self) -> Path:
        return self.config.paths.data

    def close(self) -> None:
        """Cover what this process appended with a signed checkpoint, then close the store: a
        command that appends while no service runs leaves no record uncovered."""
        if self.store.closed:
            return
        try:
            if self.journal.appended:
                self.journal.checkpoint()
        except Exception:  # a damaged journal or a full disk: the records themselves are durable
            log.exception("could not sign a checkpoint over the records appended")
        finally:
            self.store.close()

    def __enter__(self) -> "Site":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def init_site(data_dir: Path, site_id: str, site_name: str, *, clock: Clock | None = None) -> Path:
    """Create config, database and keys in ``data_dir``; never overwrite keys."""
    clock = clock or Clock()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o750)
    config_path = data_dir / CONFIG_FILE_NAME
    if config_path.exists():
        config = load_config(config_path, data_dir=data_dir)
        if config.site.id != site_id:
            raise SiteError(f"{config_path} already configures site {config.site.id!r}")
    else:
        text = initial_config_text(site_id, site_name)
        config_path.write_text(text, encoding="utf-8")
        config = load_config(config_path, data_dir=data_dir)
    create_site_keys(config.paths.keys_dir)  # refuses to overwrite
    keys = load_site_keys(config.paths.keys_dir)
    store = Store(config.database_path, busy_timeout_ms=config.store.busy_timeout_ms, create=True)
    try:
        store.migrate()
        journal = Journal(store, site_id, keys.signing, clock=clock)
        with store.transaction() as conn:
            if conn.execute("SELECT COUNT(*) FROM meta").fetchone()[0]:
                raise SiteError(f"{config.database_path} already belongs to a site")
            meta = {
                "site_id": site_id,
                "site_name": site_name,
                "public_key": public_key_hex(keys.public),
                "created": utc_timestamp(clock.now()),
            }
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            journal.append(
                conn,
                "site.initialised",
                {
                    "site_id": site_id,
                    "site_name": site_name,
                    "public_key": public_key_hex(keys.public),
                    "verifier_key": verifier_key(site_id, keys.public),
                },
            )
        journal.checkpoint_file = data_dir / CHECKPOINT_FILE
        journal.checkpoint()  # record 1 is covered from the start
    finally:
        store.close()
    (data_dir / "logs").mkdir(exist_ok=True)
    return config_path


def open_site(
    data_dir: Path | None = None,
    *,
    config: Config | None = None,
    config_path: Path | None = None,
    clock: Clock | None = None,
) -> Site:
    clock = clock or Clock()
    if config is None:
        config = load_config(config_path, data_dir=data_dir)
    keys = load_site_keys(config.paths.keys_dir)
    store = Store(config.database_path, busy_timeout_ms=config.store.busy_timeout_ms)
    store.migrate()
    site_id = store.get_meta("site_id")
    if site_id != config.site.id:
        store.close()
        raise ConfigError(f"site.id: the database belongs to {site_id!r}, the config says {config.site.id!r}")
    if store.get_meta("public_key") != public_key_hex(keys.public):
        store.close()
        raise SiteError("the signing key in the keys directory is not the key this site was created with")
    journal = Journal(
        store, site_id, keys.signing, clock=clock, checkpoint_file=config.paths.data / CHECKPOINT_FILE
    )
    return Site(config, store, journal, PersonalDataCipher(keys.personal_root), keys.public, clock)


def open_for_verification(data_dir: Path, config_path: Path | None = None) -> tuple[Config, Ed25519PublicKey]:
    """What a verifier needs: the config (site id, paths) and the public key only."""
    config = load_config(config_path, data_dir=data_dir)
    return config, load_public_key(config.paths.keys_dir)
