"""Signed statements from the center that the site acts on.

The site frees a recording only once the center holds it (docs/sync-protocol.md, "recordings
up"), so the center's answer to ``media/status`` must be the center's own word, not whatever a
proxy or a man in the middle returns: it is a canonical JSON statement signed with the center's
key over ``MEDIA_HELD_CONTEXT || SHA-256(statement)``, and it echoes the site's random challenge
so an old answer cannot be replayed.

    {"format": "site-appliance/media-held/v1", "site": "...", "challenge": "<hex from the site>",
     "held": {"<seal seq>": "<sha256>", ...}, "issued": "<RFC 3339 UTC>"}
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.canonical import canonical_bytes

MEDIA_HELD_FORMAT = "site-appliance/media-held/v1"
MEDIA_HELD_CONTEXT = b"site-appliance/media-held/v1\n"


class StatementError(ValueError):
    pass


def sign_media_held(key: Ed25519PrivateKey, site_id: str, challenge: str, held: dict[str, str], issued: str) -> dict[str, str]:
    text = canonical_bytes({"format": MEDIA_HELD_FORMAT, "site": site_id, "challenge": challenge, "held": held, "issued": issued})
    return {"statement": text.decode(),
            "sig": base64.b64encode(key.sign(MEDIA_HELD_CONTEXT + hashlib.sha256(text).digest())).decode()}


def open_media_held(center_key: Ed25519PublicKey, answer: Any, *, site_id: str, challenge: str) -> dict[str, str]:
    """The held map, once the statement verifies with the pinned key and answers this challenge."""
    try:
        text = str(answer["statement"]).encode()
        center_key.verify(base64.b64decode(str(answer["sig"]), validate=True), MEDIA_HELD_CONTEXT + hashlib.sha256(text).digest())
        statement = json.loads(text)
    except (KeyError, TypeError, ValueError, InvalidSignature) as exc:
        raise StatementError(f"the center's media statement does not verify with the pinned key ({type(exc).__name__})") from exc
    if statement.get("format") != MEDIA_HELD_FORMAT or statement.get("site") != site_id or statement.get("challenge") != challenge:
        raise StatementError("the center's media statement is not the answer to this request")
    held = statement.get("held")
    if not isinstance(held, dict):
        raise StatementError("the center's media statement has no held map")
    return {str(k): str(v) for k, v in held.items()}
