"""Personal data (个人信息): ID numbers, names, photos, bank card numbers.

Rules this module enforces:

* at rest, every personal field is sealed with AES-256-GCM under a key derived from
  ``personal.key`` (which lives outside the database); the field's purpose is the associated
  data, so a sealed ID number cannot be passed off as a sealed bank card;
* lookups go through keyed tokens (HMAC-SHA256 under a second derived key), never through the
  clear value;
* screens, logs and the journal only ever see masked forms such as ``2201**********1234``;
* the journal refuses any payload that still contains a valid resident ID number
  (`find_id_numbers`), and the log filter redacts them, as a last line of defence.

Resident ID numbers follow GB 11643-1999: 17 digits and a check character from ISO 7064
MOD 11-2 (``0-9`` or ``X``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from datetime import date

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from devices.idcard.text import gb11643_check_char

_ID_CANDIDATE = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")
SEALED_VERSION = b"\x01"


class PersonalDataError(ValueError):
    """Personal data that is malformed, or found where it must not be."""


def id_check_char(first17: str) -> str:
    return gb11643_check_char(first17)


def is_valid_id_number(text: str) -> bool:
    """GB 11643: 18 characters, plausible region and birth date, correct check character."""
    if len(text) != 18 or not text[:17].isdigit() or text[0] == "0":
        return False
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return False
    if not 1890 <= born.year <= 2100:
        return False
    return id_check_char(text[:17]) == text[17].upper()


def find_id_numbers(text: str) -> list[str]:
    return [m.group(0) for m in _ID_CANDIDATE.finditer(text) if is_valid_id_number(m.group(0))]


def mask_id_number(text: str) -> str:
    """``220102199003071234`` → ``2201**********1234`` (first 4 and last 4 kept)."""
    if len(text) <= 8:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 8) + text[-4:]


def mask_bank_card(text: str) -> str:
    """Keep the issuer's first 6 digits and the last 4, as bank receipts do."""
    digits = re.sub(r"\D", "", text)
    if len(digits) <= 10:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_name(text: str) -> str:
    """``张三丰`` → ``张**``; the family name stays so staff can still address the person."""
    return text[:1] + "*" * (len(text) - 1) if text else text


def redact_id_numbers(text: str) -> str:
    """Replace every valid resident ID number in free text by its masked form."""
    return _ID_CANDIDATE.sub(
        lambda m: mask_id_number(m.group(0)) if is_valid_id_number(m.group(0)) else m.group(0), text
    )


def assert_no_id_numbers(strings: list[str], where: str) -> None:
    """Raise if any of ``strings`` contains a valid resident ID number (one regex pass)."""
    if find_id_numbers("\n".join(strings)):
        raise PersonalDataError(f"{where}: contains a resident ID number in clear")


def assert_no_personal_data(value: object, where: str = "$") -> None:
    """Raise if a valid resident ID number appears anywhere in a JSON-like value."""
    if isinstance(value, str):
        if find_id_numbers(value):
            raise PersonalDataError(f"{where}: contains a resident ID number in clear")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_no_personal_data(key, f"{where}.<key>")
            assert_no_personal_data(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            assert_no_personal_data(item, f"{where}[{i}]")


class PersonalDataCipher:
    """Seal and open personal fields; make lookup tokens. Keys derive from one 32-byte root."""

    def __init__(self, root_key: bytes) -> None:
        if len(root_key) != 32:
            raise PersonalDataError("personal-data root key must be 32 bytes")
        self._aead = AESGCM(self._derive(root_key, b"site-appliance/personal/aes-256-gcm/v1"))
        self._token_key = self._derive(root_key, b"site-appliance/personal/lookup-token/v1")

    @staticmethod
    def _derive(root: bytes, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root)

    def seal(self, purpose: str, value: bytes | str) -> bytes:
        """``0x01 || 12-byte nonce || ciphertext+tag``; ``purpose`` (e.g. ``person.id_number``)
        is bound as associated data."""
        data = value.encode("utf-8") if isinstance(value, str) else value
        nonce = os.urandom(12)
        return SEALED_VERSION + nonce + self._aead.encrypt(nonce, data, purpose.encode())

    def open(self, purpose: str, sealed: bytes) -> bytes:
        if not sealed.startswith(SEALED_VERSION) or len(sealed) < 29:
            raise PersonalDataError("not a sealed personal field")
        return self._aead.decrypt(sealed[1:13], sealed[13:], purpose.encode())

    def token(self, purpose: str, value: str) -> str:
        """Keyed lookup token: equal values give equal tokens, the value cannot be recovered."""
        mac = hmac.new(self._token_key, purpose.encode() + b"\x00" + value.encode(), hashlib.sha256)
        return mac.hexdigest()


class RedactingFilter(logging.Filter):
    """Masks resident ID numbers in every log message before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_id_numbers(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact_id_numbers(text), None
        return True
