"""Personal data (个人信息): ID numbers, names, photos, bank card numbers.

Rules this module enforces:

* at rest, every personal field is sealed with AES-256-GCM under a key derived from
  ``personal.key`` (which lives outside the database); the field's purpose is the associated
  data, so a sealed ID number cannot be passed off as a sealed bank card;
* lookups go through keyed tokens (HMAC-SHA256 under a second derived key), never through the
  clear value;
* screens, logs and the journal only ever see masked forms such as ``2201**********1234``;
* free text (notes, reasons, answers) is masked where it enters (`redact_personal_data`): ID
  numbers and bank card numbers (13-19 digits passing Luhn) in any digit form people type —
  full-width, spaced, other Unicode digits, Chinese numerals; names and identifiers that would
  carry one are refused instead (`refuse_personal_numbers`);
* the journal refuses any payload that still contains an ID number or a stand-alone card
  number (`assert_no_id_numbers`), and the log filter masks them, as a last line of defence.

Resident ID numbers follow GB 11643-1999: 17 digits and a check character from ISO 7064
MOD 11-2 (``0-9`` or ``X``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import unicodedata
from datetime import date

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from devices.idcard.text import gb11643_check_char

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


# Digits as people type them: ASCII, full-width (２), any other Unicode decimal digit, and the
# Chinese numerals (一二三, 〇/零, the financial 壹贰叁). Free text is checked on a "shadow" of the
# same length in which each such character is its ASCII digit and each separator a space, so
# a match maps back to the very characters typed.
_CHINESE_DIGITS = {**{c: str(i) for i, c in enumerate("〇一二三四五六七八九")}, "零": "0",
                   **{c: str(i + 1) for i, c in enumerate("壹贰叁肆伍陆柒捌玖")}}
# A line break is not a separator: the journal's guard joins a record's strings with one.
_SEPARATORS = set(" \t-\u00a0\u2009\u200a\u2010\u2011\u2012\u2013\u2014\u2212\u3000\uff0d")
# An ID number: 17 digits and a check character, single separators allowed between them.
_ID_CANDIDATE = re.compile(r"(?<![0-9])[1-9](?: ?[0-9]){16} ?[0-9Xx](?![0-9])")
# A bank card: 13-19 digits passing Luhn, written as one run or grouped as cards are printed,
# a separator of any kind (one or two) between groups: groups of four (6222 0212 3456 7890 128),
# 4-6-5 (American Express: 3782 822463 10005), 4-6-4 (Diners), or the issuer's six digits and
# the rest (622202 1234567894). Other groupings are no card: a code like 440300-2026-00104 is
# left alone. In free text every such number is masked; the journal's guard only refuses one
# that stands alone (not glued to letters, as in a hash or an id).
_SEP = " {1,2}"
_CARD_SHAPES = (r"[0-9]{13,19}",
                rf"[0-9]{{4}}(?:{_SEP}[0-9]{{4}}){{2,3}}(?:{_SEP}[0-9]{{1,4}})?",
                rf"[0-9]{{4}}{_SEP}[0-9]{{6}}{_SEP}[0-9]{{4,5}}",
                rf"[0-9]{{6}}{_SEP}[0-9]{{7,13}}")


def _card_pattern(edge: str) -> re.Pattern[str]:
    """Any card shape with nothing of ``edge`` touching it, nor a group of ``edge`` just before
    or after it (not a piece of a longer grouped number)."""
    before, after = rf"(?<!{edge})(?<!{edge} )(?<!{edge}  )", rf"(?!{edge})(?! {{1,2}}{edge})"
    return re.compile("|".join(f"{before}{shape}{after}" for shape in _CARD_SHAPES))


_CARD_CANDIDATE = _card_pattern("[0-9]")
_CARD_STANDALONE = _card_pattern("[0-9A-Za-z]")
_LONG_RUN = re.compile(r"[0-9](?: {0,2}[0-9]){12}")


def _shadow_char(c: str) -> str:
    if c in _SEPARATORS:
        return " "
    if c.isdecimal():
        return str(unicodedata.decimal(c))
    if c in _CHINESE_DIGITS:
        return _CHINESE_DIGITS[c]
    folded = unicodedata.normalize("NFKC", c)
    if len(folded) == 1 and (folded.isdigit() or folded in "Xx"):
        return folded
    return c if c.isascii() else "\u25a1"  # any other character: one character still


class _ShadowTable(dict):  # type: ignore[type-arg]
    """``str.translate`` table computing each character's shadow once."""

    def __missing__(self, code: int) -> str:
        self[code] = value = _shadow_char(chr(code))
        return value


_SHADOW = _ShadowTable({ord("-"): " ", ord("\t"): " "})


def digit_shadow(text: str) -> str:
    """``text`` with every typed digit as its ASCII digit and every separator a space, character
    for character (same length, so positions map back)."""
    if text.isascii():
        return text.replace("-", " ").replace("\t", " ")
    return text.translate(_SHADOW)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _compact(span: str) -> str:
    return span.replace(" ", "")


def personal_numbers(text: str, *, standalone_cards: bool = False) -> list[tuple[int, int, str, str]]:
    """Every resident ID number and bank card number in free text, in any digit form:
    (start, end, kind, the number as ASCII digits). ``standalone_cards``: count a card only when
    its digits are not glued to letters (the journal's guard: hashes and ids stay clear)."""
    shadow = digit_shadow(text)
    if not _LONG_RUN.search(shadow):  # most text: no run of 13 digits at all
        return []
    found: list[tuple[int, int, str, str]] = []
    for m in _ID_CANDIDATE.finditer(shadow):
        number = _compact(m.group(0)).upper()
        if is_valid_id_number(number):
            found.append((m.start(), m.end(), "id_number", number))
    taken = [(a, b) for a, b, _, _ in found]
    for m in (_CARD_STANDALONE if standalone_cards else _CARD_CANDIDATE).finditer(shadow):
        number = _compact(m.group(0))
        if 13 <= len(number) <= 19 and luhn_valid(number) and not any(a < m.end() and m.start() < b for a, b in taken):
            found.append((m.start(), m.end(), "bank_card", number))
    return sorted(found)


def find_id_numbers(text: str) -> list[str]:
    return [number for _, _, kind, number in personal_numbers(text) if kind == "id_number"]


def redact_personal_data(text: str) -> str:
    """Free text as typed, with every resident ID number and bank card number in it (full-width,
    spaced, in Chinese numerals…) replaced by its masked form: ``2201**********1234``,
    ``622202*********0123``. Everything else is kept exactly."""
    found = personal_numbers(text)
    if not found:
        return text
    out, at = [], 0
    for start, end, kind, number in found:
        out.append(text[at:start])
        out.append(mask_id_number(number) if kind == "id_number" else mask_bank_card(number))
        at = end
    out.append(text[at:])
    return "".join(out)




def contains_personal_number(text: str) -> bool:
    return bool(personal_numbers(text))


def refuse_personal_numbers(text: str, field: str) -> str:
    """For names and identifiers (a kiosk's name, a file name): text that would carry an ID or
    bank card number is refused, naming the field, instead of being masked into another name."""
    if personal_numbers(text):
        raise PersonalDataError(f"{field}: must not contain a resident ID number or a bank card number")
    return text


def assert_no_id_numbers(strings: list[str], where: str) -> None:
    """Raise if any of ``strings`` contains a resident ID number or a stand-alone bank card
    number, in any digit form: the journal's last line of defence."""
    joined = "\n".join(strings)
    if personal_numbers(joined, standalone_cards=True):
        raise PersonalDataError(f"{where}: contains a resident ID number or bank card number in clear")


def assert_no_personal_data(value: object, where: str = "$") -> None:
    """Raise if an ID or bank card number appears anywhere in a JSON-like value."""
    if isinstance(value, str):
        assert_no_id_numbers([value], where)
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
    """Masks resident ID and bank card numbers, and passwords in URLs, in every log message before
    any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        from appliance.credentials import hide_url_passwords

        message = record.getMessage()
        redacted = hide_url_passwords(redact_personal_data(message))
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = hide_url_passwords(redact_personal_data(text)), None
        return True
