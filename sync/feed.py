"""The feed down: center-signed items, per site, in priority lanes (docs/sync-protocol.md §Feed).

An item is the canonical JSON (the journal's JCS subset) of::

    {"format": "site-appliance/feed-item/v1", "site": S, "lane": L, "seq": N, "kind": K,
     "key": KEY, "issued": T, "body": {...}}

signed by the center's Ed25519 key over ``FEED_SIGNING_CONTEXT || SHA-256(item)``. ``seq`` counts
from 1 in each (site, lane) without gaps; the site's cursor in a lane is the last ``seq`` it
applied. ``key`` names what the item is about; a later item with the same key supersedes an
earlier one (a newer plan of the same day, a lifted revocation), which is what lets the center
compact a lane and hand a site a snapshot.

This module is shared by both sides: `sign_item` for the center, `open_item` and `apply_item`
for the site. Applying an item and moving the cursor happen in the caller's one transaction.
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
from appliance.site import Site

FORMAT = "site-appliance/feed-item/v1"
FEED_SIGNING_CONTEXT = b"site-appliance/feed-item/v1\n"

# Lanes in the order the site drains them: a revoked expert must be known before a new plan.
LANES = ("urgent", "plans", "bulk")
KIND_LANES = {
    "revocation": "urgent",
    "blacklist": "urgent",
    "day_plan": "plans",
    "replacement_result": "plans",
    "evaluation_template": "bulk",
    "configuration": "bulk",
}
PAGE_ITEMS = 50  # bounded pages: at most this many items ...
PAGE_BYTES = 1 << 20  # ... and about this many bytes (one item may exceed it alone)


class FeedError(ValueError):
    """An item that does not verify or does not follow the cursor: nothing is applied."""


def item_key(kind: str, body: dict[str, Any]) -> str:
    """What an item is about; a later item with the same key supersedes it."""
    if kind == "day_plan":
        return f"day_plan:{body.get('date')}"
    if kind == "replacement_result":
        return f"replacement_result:{body.get('session')}:{body.get('replaces_person_id')}"
    if kind in ("revocation", "blacklist"):
        number = str(body.get("id_number", "")).strip().upper()
        return f"{kind}:{hashlib.sha256(number.encode()).hexdigest()}"  # never the number itself
    if kind == "evaluation_template":
        return f"evaluation_template:{body.get('id')}"
    if kind == "configuration":
        return f"configuration:{body.get('name', 'site')}"
    raise FeedError(f"unknown feed kind {kind!r} (known: {', '.join(KIND_LANES)})")


def sign_item(key: Ed25519PrivateKey, item: dict[str, Any]) -> dict[str, str]:
    text = canonical_bytes(item)
    return {"item": text.decode(), "sig": base64.b64encode(key.sign(FEED_SIGNING_CONTEXT + hashlib.sha256(text).digest())).decode()}


def open_item(center_key: Ed25519PublicKey, signed: Any, *, site_id: str, lane: str) -> dict[str, Any]:
    """The item, once its signature verifies with the pinned center key and it is for this
    site and lane."""
    try:
        text, sig = str(signed["item"]).encode(), base64.b64decode(str(signed["sig"]), validate=True)
        center_key.verify(sig, FEED_SIGNING_CONTEXT + hashlib.sha256(text).digest())
        item = json.loads(text)
    except (KeyError, TypeError, ValueError, InvalidSignature) as exc:
        raise FeedError(f"a feed item does not verify with the pinned center key ({type(exc).__name__})") from exc
    if item.get("format") != FORMAT or item.get("site") != site_id or item.get("lane") != lane:
        raise FeedError(f"a feed item is not for this site's {lane!r} lane")
    if item.get("kind") not in KIND_LANES or KIND_LANES[item["kind"]] != lane or not isinstance(item.get("body"), dict):
        raise FeedError(f"a feed item of kind {item.get('kind')!r} does not belong in lane {lane!r}")
    return item


def cursor(site: Site, lane: str) -> int:
    return int(site.store.get_meta(f"feed_cursor_{lane}") or 0)


def set_cursor(conn: Any, lane: str, value: int) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                 (f"feed_cursor_{lane}", str(value)))


def apply_item(site: Site, conn: Any, item: dict[str, Any]) -> str:
    """Apply one verified item inside the caller's transaction; returns what happened
    (``applied``, ``already`` or ``refused: …``). A signed item the site cannot apply (a plan
    for another site, a mistyped ID number) is refused, journaled and alarmed, and the cursor
    still moves: the center is told through the journal, and the lane is not blocked forever."""
    from appliance.siteops.alarms import raise_alarm
    from appliance.siteops.plan import PlanError

    kind, body = item["kind"], item["body"]
    digest = hashlib.sha256(canonical_bytes(item)).hexdigest()
    conn.execute("SAVEPOINT feed_item")  # a refused item leaves nothing of itself behind
    try:
        outcome = _APPLY[kind](site, conn, body)
        conn.execute("RELEASE feed_item")
    except (PlanError, FeedError, ValueError) as exc:  # PersonalDataError included
        conn.execute("ROLLBACK TO feed_item")
        conn.execute("RELEASE feed_item")
        reason = str(exc)[:300]
        record = site.journal.append(conn, "feed.refused", {"lane": item["lane"], "seq": item["seq"], "kind": kind,
                                                            "sha256": digest, "reason": _redacted(reason)})
        raise_alarm(site, conn, "feed_refused", seq=record.seq, detail={"kind": kind, "reason": _redacted(reason)})
        return f"refused: {_redacted(reason)}"
    about: dict[str, Any]
    if kind in ("revocation", "blacklist"):
        # Whom it is about, as the keyed token the site uses everywhere (a plain hash of an ID
        # number could be brute-forced; the token cannot without the site's key).
        from appliance.people import ID_PURPOSE

        about = {"person_token": site.personal.token(ID_PURPOSE, str(body.get("id_number", "")).strip().upper())}
    else:
        about = {"key": _redacted(str(item["key"]))}
    site.journal.append(conn, "feed.applied", {"lane": item["lane"], "seq": item["seq"], "kind": kind, **about,
                                               "sha256": digest, "outcome": outcome})
    return outcome


def _redacted(text: str) -> str:
    from appliance.personal import redact_personal_data

    return redact_personal_data(text)


def _day_plan(site: Site, conn: Any, body: dict[str, Any]) -> str:
    from appliance.siteops.plan import load_plan, parse_plan

    plan = parse_plan(json.dumps(body, ensure_ascii=False))
    current = conn.execute("SELECT MAX(version) FROM plans WHERE day = ?", (plan.date.isoformat(),)).fetchone()[0]
    if current is not None and plan.version <= current:
        return "already"  # a re-delivered or superseded plan: the site already has this or newer
    load_plan(site, plan, conn=conn)
    return "applied"


def _replacement_result(site: Site, conn: Any, body: dict[str, Any]) -> str:
    """The draw's result joins the roster through the newer plan it carries."""
    if not isinstance(body.get("plan"), dict) or not isinstance(body.get("session"), str):
        raise FeedError("a replacement_result needs session and plan")
    return _day_plan(site, conn, body["plan"])


def _bar(kind: str) -> Any:
    def apply(site: Site, conn: Any, body: dict[str, Any]) -> str:
        from appliance.personal import is_valid_id_number

        number = str(body.get("id_number", "")).strip().upper()
        if not is_valid_id_number(number):
            raise FeedError(f"{kind}: not a valid resident ID number")
        from appliance.people import ID_PURPOSE

        token = site.personal.token(ID_PURPOSE, number)
        now = utc_timestamp(site.clock.now())
        if body.get("lifted"):
            conn.execute("UPDATE center_bars SET lifted = ? WHERE token = ? AND kind = ? AND lifted IS NULL", (now, token, kind))
        else:
            conn.execute("""INSERT INTO center_bars (token, kind, reason, since, lifted) VALUES (?, ?, ?, ?, NULL)
                            ON CONFLICT(token, kind) DO UPDATE SET reason = excluded.reason, since = excluded.since,
                            lifted = NULL""", (token, kind, _redacted(str(body.get("reason", "")))[:300], now))
        return "applied"
    return apply


def _document(kind: str) -> Any:
    def apply(site: Site, conn: Any, body: dict[str, Any]) -> str:
        name = str(body.get("id") or body.get("name") or "site")
        conn.execute("""INSERT INTO center_documents (kind, name, body, sha256, received) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT(kind, name) DO UPDATE SET body = excluded.body, sha256 = excluded.sha256,
                        received = excluded.received""",
                     (kind, name, json.dumps(body, ensure_ascii=False), hashlib.sha256(canonical_bytes(body)).hexdigest(),
                      utc_timestamp(site.clock.now())))
        return "applied"
    return apply


_APPLY = {
    "day_plan": _day_plan,
    "replacement_result": _replacement_result,
    "revocation": _bar("revocation"),
    "blacklist": _bar("blacklist"),
    "evaluation_template": _document("evaluation_template"),
    "configuration": _document("configuration"),
}
