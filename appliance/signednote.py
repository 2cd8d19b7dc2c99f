"""C2SP signed notes (https://c2sp.org/signed-note) and tlog checkpoints
(https://c2sp.org/tlog-checkpoint), with Ed25519 keys.

A note is UTF-8 text ending in a newline; after it comes one blank line and one line per
signature: ``— <key name> <base64(key id || signature)>\\n`` (U+2014 EM DASH, a space).
For Ed25519 the key id is the first 4 bytes of ``SHA-256(key name || 0x0A || 0x01 || public
key)`` and the signature is over the note text alone, trailing newline included.

A checkpoint is a note whose text is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` followed
by optional extension lines. The site's origin and key name are both its site id.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 0x01
_SIG_LINE = re.compile(r"^\u2014 (\S+) ([A-Za-z0-9+/=]+)$")


class NoteError(ValueError):
    """A malformed note, a malformed checkpoint, or a signature that does not verify."""


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def check_key_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    check_key_name(name)
    data = name.encode() + b"\n" + bytes([ALG_ED25519]) + _raw_public(public_key)
    return hashlib.sha256(data).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The vkey text form ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
    raw = bytes([ALG_ED25519]) + _raw_public(public_key)
    return f"{name}+{key_id(name, public_key).hex()}+{base64.b64encode(raw).decode()}"


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    try:
        name, hex_id, b64 = vkey.split("+", 2)  # base64 may itself contain "+"
        raw = base64.b64decode(b64, validate=True)
    except ValueError as exc:
        raise NoteError("verifier key must be <name>+<hex id>+<base64 key>") from exc
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("verifier key is not an Ed25519 key")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, public).hex() != hex_id:
        raise NoteError("verifier key id does not match the key")
    return name, public


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    signature = private_key.sign(text.encode("utf-8"))
    kid = key_id(name, private_key.public_key())
    return f"{text}\n\u2014 {name} {base64.b64encode(kid + signature).decode()}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: list[tuple[str, bytes, bytes]]  # (key name, key id, signature)


def parse_note(note: str) -> Note:
    text, sep, sigs = note.rpartition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise NoteError("note has no signature block")
    text += "\n"
    signatures = []
    for line in sigs[:-1].split("\n"):
        m = _SIG_LINE.match(line)
        if not m:
            raise NoteError(f"malformed signature line {line!r}")
        try:
            blob = base64.b64decode(m.group(2), validate=True)
        except ValueError as exc:
            raise NoteError("signature is not base64") from exc
        if len(blob) < 5:
            raise NoteError("signature too short")
        signatures.append((m.group(1), blob[:4], blob[4:]))
    return Note(text=text, signatures=signatures)


def verify_note(note: str, name: str, public_key: Ed25519PublicKey) -> str:
    """Return the note text if it carries a valid signature by (name, key); else raise."""
    parsed = parse_note(note)
    kid = key_id(name, public_key)
    for sig_name, sig_id, signature in parsed.signatures:
        if sig_name == name and sig_id == kid:
            try:
                public_key.verify(signature, parsed.text.encode("utf-8"))
            except InvalidSignature as exc:
                raise NoteError(f"signature by {name} does not verify") from exc
            return parsed.text
    raise NoteError(f"note carries no signature by {name}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("checkpoint needs origin, size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not re.fullmatch(r"0|[1-9][0-9]*", size_text):
        raise NoteError("checkpoint size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError as exc:
        raise NoteError("checkpoint root is not base64") from exc
    if len(root) != 32:
        raise NoteError("checkpoint root is not 32 bytes")
    return Checkpoint(origin, int(size_text), root, tuple(lines[3:-1]))


def sign_checkpoint(cp: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> str:
    return sign_note(cp.text(), name, private_key)


def open_checkpoint(note: str, name: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """Verify a signed checkpoint and return it; its origin must be the key's name."""
    cp = parse_checkpoint(verify_note(note, name, public_key))
    if cp.origin != name:
        raise NoteError(f"checkpoint origin {cp.origin!r} is not {name!r}")
    return cp
