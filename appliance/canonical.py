"""Canonical JSON: the exact bytes that journal hashes and signatures are computed over.

The form is RFC 8785 (JSON Canonicalization Scheme) restricted to values that have one obvious
encoding, so that any JCS implementation produces the same bytes:

* objects, arrays, strings, integers, ``true``, ``false`` and ``null`` only; floating point
  numbers are refused (put decimals in strings);
* integers within ±(2**53 - 1), the range every JSON reader keeps exact;
* object keys are ASCII strings, sorted by code point, unique;
* no whitespace; ``,`` and ``:`` as separators;
* strings as UTF-8, with only ``"`` ``\\`` and the C0 controls escaped (``\\b \\f \\n \\r \\t``
  by name, the rest as lowercase ``\\u00xx``); everything else, CJK included, is written as is.

Python's ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` produces
exactly this form for such values, which `canonical_bytes` checks before using it.
"""

from __future__ import annotations

import json
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalError(ValueError):
    """A value that has no canonical form under our rules."""


def _check(value: Any, path: str, strings: list[str] | None) -> None:
    if isinstance(value, str):
        if strings is not None:
            strings.append(value)
        return
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalError(f"{path}: integer {value} is outside ±(2**53-1)")
        return
    if isinstance(value, float):
        raise CanonicalError(f"{path}: floating point numbers are not allowed; use a string")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]", strings)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise CanonicalError(f"{path}: object keys must be ASCII strings, got {key!r}")
            if strings is not None:
                strings.append(key)
            _check(item, f"{path}.{key}", strings)
        return
    raise CanonicalError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_bytes(value: Any, strings: list[str] | None = None) -> bytes:
    """Return the canonical UTF-8 encoding of ``value`` or raise `CanonicalError`.

    When ``strings`` is given, every string value is appended to it (one walk serves the
    caller's own checks, e.g. the journal's personal-data guard)."""
    _check(value, "$", strings)
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise CanonicalError("string is not valid Unicode") from exc


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def is_canonical(data: bytes) -> bool:
    """True when ``data`` parses as JSON and re-encodes to the same bytes."""
    try:
        return canonical_bytes(json.loads(data.decode("utf-8"))) == data
    except (ValueError, UnicodeDecodeError):
        return False


def _no_float(text: str) -> Any:
    raise CanonicalError(f"floating point number {text} is not allowed")


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise CanonicalError(f"integer {text} is outside ±(2**53-1)")
    return value


def _ascii_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    for key, _ in pairs:
        if not key.isascii():
            raise CanonicalError(f"object key {key!r} is not ASCII")
    return dict(pairs)


_PARSER = json.JSONDecoder(parse_float=_no_float, parse_int=_safe_int, object_pairs_hook=_ascii_keys)
# An all-ASCII text (most records: gate decisions, segments) has ASCII keys: no per-object hook.
_ASCII_PARSER = json.JSONDecoder(parse_float=_no_float, parse_int=_safe_int)


def parse_canonical(text: str) -> Any:
    """Parse JSON text received from elsewhere that must already be canonical (a journal record
    at the center): the same rules as `canonical_bytes`, enforced by the parser's hooks and by
    re-encoding to the very same text, without a Python walk over the value (the center checks
    600,000 records in a drain). Raises `CanonicalError` or ValueError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, written raw
        raise CanonicalError("string is not valid Unicode") from exc
    value = (_ASCII_PARSER if text.isascii() else _PARSER).decode(text)
    if _ENCODER.encode(value) != text:
        raise CanonicalError("not in canonical form")
    return value
