"""The site's keys, kept as files outside the database.

* ``site.key`` — Ed25519 private key (PKCS#8 PEM, mode 0600): signs journal records and
  checkpoints. ``site.pub`` beside it holds the public key (SubjectPublicKeyInfo PEM).
* ``personal.key`` — 32 random bytes (mode 0600): the root of the personal-data keys
  (AES-256-GCM for fields at rest, HMAC-SHA256 for lookup tokens), see `appliance.personal`.
* ``web-secret`` — 32 random bytes (mode 0600), hex: signs web sessions unless configured.

`create_site_keys` refuses to overwrite any existing key: losing the signing key would break
the chain of evidence, losing the personal-data key would make stored personal data unreadable.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

SIGNING_KEY = "site.key"
PUBLIC_KEY = "site.pub"
PERSONAL_KEY = "personal.key"
WEB_SECRET = "web-secret"


class KeyFileError(RuntimeError):
    """A key file is missing, unreadable, too open, or would be overwritten."""


def _write_secret(path: Path, data: bytes) -> None:
    # O_EXCL: never replace a key, even in a race with another init.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read_secret(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError as exc:
        raise KeyFileError(f"{path} is missing (run 'appliance init')") from exc
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    return path.read_bytes()


def create_site_keys(keys_dir: Path) -> None:
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    existing = [n for n in (SIGNING_KEY, PERSONAL_KEY) if (keys_dir / n).exists()]
    if existing:
        raise KeyFileError(f"{keys_dir}: {', '.join(existing)} already exist; refusing to overwrite keys")
    private = Ed25519PrivateKey.generate()
    _write_secret(
        keys_dir / SIGNING_KEY,
        private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
    )
    _write_secret(keys_dir / PERSONAL_KEY, secrets.token_bytes(32))
    public_pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (keys_dir / PUBLIC_KEY).write_bytes(public_pem)
    _fsync_dir(keys_dir)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class SiteKeys:
    signing: Ed25519PrivateKey
    personal_root: bytes

    @property
    def public(self) -> Ed25519PublicKey:
        return self.signing.public_key()


def load_site_keys(keys_dir: Path) -> SiteKeys:
    pem = _read_secret(keys_dir / SIGNING_KEY)
    signing = load_pem_private_key(pem, password=None)
    if not isinstance(signing, Ed25519PrivateKey):
        raise KeyFileError(f"{keys_dir / SIGNING_KEY} is not an Ed25519 key")
    personal = _read_secret(keys_dir / PERSONAL_KEY)
    if len(personal) != 32:
        raise KeyFileError(f"{keys_dir / PERSONAL_KEY} must hold 32 bytes")
    return SiteKeys(signing=signing, personal_root=personal)


def load_public_key(keys_dir: Path) -> Ed25519PublicKey:
    """The site's public key, readable without the private key (for verifiers)."""
    try:
        key = load_pem_public_key((keys_dir / PUBLIC_KEY).read_bytes())
    except FileNotFoundError as exc:
        raise KeyFileError(f"{keys_dir / PUBLIC_KEY} is missing") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{keys_dir / PUBLIC_KEY} is not an Ed25519 key")
    return key


def web_secret(keys_dir: Path) -> str:
    """The web session secret, created on first use."""
    path = keys_dir / WEB_SECRET
    if not path.exists():
        try:
            _write_secret(path, secrets.token_hex(32).encode())
        except KeyFileError:
            pass  # another process created it first
    return _read_secret(path).decode().strip()


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """The key's fingerprint: lowercase hex SHA-256 of the raw 32-byte Ed25519 public key, the
    form staff write down at `appliance init` and the center shows beside the pinned key."""
    import hashlib

    return hashlib.sha256(raw_public_key(key)).hexdigest()


def grouped(fp: str) -> str:
    """``3f2a9c1b…`` → ``3f2a 9c1b …``: easier to read aloud and write down."""
    return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))


def normalise_fingerprint(text: str) -> str:
    """A fingerprint as typed (spaces, colons, upper case allowed) → 64 lowercase hex, or
    KeyFileError naming what is wrong."""
    fp = "".join(c for c in text if c not in " :-\t").lower()
    if len(fp) != 64 or any(c not in "0123456789abcdef" for c in fp):
        raise KeyFileError("--fingerprint: 64 hexadecimal characters (the SHA-256 of the site's public key)")
    return fp


def load_pinned_key(path: Path) -> Ed25519PublicKey:
    """A key held outside the data directory: a SubjectPublicKeyInfo PEM (a copy of
    keys/site.pub) or the C2SP verifier key text ``<site>+<id>+<base64>``."""
    from appliance.signednote import NoteError, parse_verifier_key

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"--key: {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN" in data:
        try:
            key = load_pem_public_key(data)
        except ValueError as exc:
            raise KeyFileError(f"--key: {path} is not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"--key: {path} is not an Ed25519 key")
        return key
    try:
        return parse_verifier_key(data.decode("ascii").strip())[1]
    except (UnicodeDecodeError, NoteError) as exc:
        raise KeyFileError(f"--key: {path} is neither a PEM public key nor a verifier key") from exc
