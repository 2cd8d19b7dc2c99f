"""The center's own signed log: every action provincial staff take on the pages — a feed item
published, an alarm acknowledged, a legal hold placed or lifted, an evidence package exported —
is appended as a record chained to the one before and signed by the center's key, in the same
shape as a venue's journal record (docs/center.md, "The center's log"):

    body = canonical JSON {"seq", "ts", "actor", "action", "detail", "prev"}
    hash = SHA-256(body)                     (hex; "prev" is the previous record's, 64 zeros first)
    sig  = Ed25519(center key, "provincial-center/log-record/v1\\n" || hash bytes)   (base64)

Appends are serialised across every worker by an advisory lock, inside the transaction of the
action itself: the action and its record commit together or not at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.canonical import canonical_bytes
from appliance.clock import utc_timestamp

LOG_CONTEXT = b"provincial-center/log-record/v1\n"
GENESIS = "0" * 64


def append(conn: Any, key: Ed25519PrivateKey, clock: Any, actor: str, action: str, detail: dict[str, Any]) -> int:
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('center-log', 0))")
    last = conn.execute("SELECT seq, hash FROM center_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    ts = utc_timestamp(clock.now())
    body = canonical_bytes({"seq": seq, "ts": ts, "actor": actor, "action": action, "detail": detail, "prev": prev})
    digest = hashlib.sha256(body).digest()
    sig = base64.b64encode(key.sign(LOG_CONTEXT + digest)).decode()
    conn.execute("INSERT INTO center_log (seq, ts, actor, action, body, hash, sig) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                 (seq, ts, actor, action, body.decode(), digest.hex(), sig))
    return seq


def verify(rows: Any, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Check the chain and every signature; the first bad record is named."""
    prev, n = GENESIS, 0
    for seq, body, hex_hash, sig in rows:
        n += 1
        digest = hashlib.sha256(body.encode()).digest()
        obj = json.loads(body)
        problem = ("sequence" if obj.get("seq") != seq or seq != n else "hash" if digest.hex() != hex_hash
                   else "chain" if obj.get("prev") != prev else None)
        if problem is None:
            try:
                public_key.verify(base64.b64decode(sig), LOG_CONTEXT + digest)
            except (InvalidSignature, ValueError):
                problem = "signature"
        if problem:
            return {"ok": False, "records": n, "first_bad": seq, "problem": problem}
        prev = hex_hash
    return {"ok": True, "records": n, "head": prev}


def entries(db: Any, limit: int = 200) -> list[dict[str, Any]]:
    return [json.loads(body) | {"hash": h} for body, h in db.all(
        "SELECT body, hash FROM center_log ORDER BY seq DESC LIMIT %s", (limit,))]
