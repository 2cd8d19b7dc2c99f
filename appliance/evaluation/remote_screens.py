"""The main venue's side of a remote committee's screens (docs/remote-evaluation.md): what each
member at a secondary venue sees — the same data the main venue's own terminals render — signed
and sent after every change of the committee or of the member's own marks. The secondary
venue keeps them (appliance.evaluation.remote.receive_screens) and its terminals draw them."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from appliance.evaluation import terminal
from appliance.evaluation.remote import Remote
from appliance.signing import ATTACHMENT_SIGNING_CONTEXT, SCREENS_SIGNING_CONTEXT
from appliance.site import Site


def screens(site: Site, remote: Remote) -> dict[str, dict[str, Any]]:
    """At the main venue: each secondary member's screen, by venue and the member's plan id —
    the same data the main venue's own terminals render (appliance.evaluation.terminal.screen)."""
    conn = site.store.reader()
    out: dict[str, dict[str, Any]] = {v: {} for v in remote.others}
    for person_id, venue, ref in conn.execute(
            """SELECT m.person_id, r.venue, f.ref FROM eval_members m JOIN roster r ON r.session = m.session AND r.person_id = m.person_id
               JOIN person_refs f ON f.person_id = m.person_id WHERE m.session = ? AND m.left IS NULL AND r.venue IS NOT NULL""",
            (remote.session,)):
        if venue in out:
            out[venue][ref] = terminal.screen(site, remote.session, person_id)
    return out


def screens_fingerprint(conn: Any, session: str) -> str:
    """Changes whenever a member's screen may have changed: the committee's state, and every
    member's own marks (a member at a secondary venue sees them as the main venue holds them)."""
    parts = terminal.session_parts(conn, session) + [[tuple(r) for r in conn.execute(
        "SELECT step, person_id, bidder, criterion, value, explanation FROM eval_marks WHERE session = ? "
        "ORDER BY step, person_id, bidder, criterion", (session,))]]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def sign_screens(site: Site, text: str) -> str:
    """The main venue's signature over a screens message's JSON text."""
    return base64.b64encode(site.journal.sign(SCREENS_SIGNING_CONTEXT, hashlib.sha256(text.encode()).digest())).decode()


def sign_attachment(site: Site, text: str) -> str:
    """A venue's signature over an attachment message's JSON text (a member's report signature)."""
    return base64.b64encode(site.journal.sign(ATTACHMENT_SIGNING_CONTEXT, hashlib.sha256(text.encode()).digest())).decode()
