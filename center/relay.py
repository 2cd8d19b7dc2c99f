"""The relay of remote evaluations (远程异地评标; docs/sync-protocol.md, "The relay";
docs/remote-evaluation.md): the venues of one committee never reach each other, each talks to
the center over its authenticated, signed channel, and the center passes their messages on.

* **Who may talk**: the venues of a remote session, registered when the center publishes a
  day plan naming them (``remote``); the center fills in each venue's public key from its
  enrolment, so a venue verifies the others with keys the center vouched for in a signed item.
* **Send**: a venue posts messages — its own journal records (each with its record signature)
  or, from the main venue, its members' screens (signed under their own purpose line). The
  center verifies each with the sender's key before it takes it, and queues it for each other
  venue (or those named in ``to``) under that venue's next number: one order per receiving
  venue, gap-free and in commit order (an advisory lock per receiver), each message once
  (a message sent twice — a retry after a lost answer — is taken once).
* **Poll** (long polling): a venue asks for its messages after the last number it applied; the
  answer comes at once when there are any, else when one arrives or the venues' presence
  changes, at the latest after ``wait_s``. A venue is **present** while its last poll is under
  way or its wait ended less than 1.5 s ago; each answer says which venues of the venue's sessions
  are present, so all of them pause the committee together when one drops.
* Every relayed message is kept (table ``relay``) and named by its SHA-256 in the center's signed
  log (center/log.py, action ``relay``), in the transaction that queues it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from appliance.clock import utc_timestamp
from appliance.signing import attachment_message, record_message, screens_message
from center import log as center_log
from center.base import CenterError

KINDS = ("record", "screens", "attachment")
MAX_MESSAGES = 200  # in one send or one poll answer
MAX_BODY = 1 << 20  # one message's text
MAX_WAIT_S = 10.0
GRACE_S = 1.5  # a venue is present until this long after its last poll's wait ended
POLL_STEP_S = 0.02
ACTIVE_DAYS = 3  # a remote session's venues are reported this long after it was published, and until 12 h after its end


class CenterRelay:
    """Mixed into `center.core.Center` (``self.db``, ``self.clock``, ``site_key``)."""

    db: Any
    clock: Any
    key: Any
    site_key: Any
    _waiting_polls: threading.BoundedSemaphore | None = None

    # -- registration ------------------------------------------------------------------------

    def register_remote(self, conn: Any, site_id: str, plan: dict[str, Any]) -> None:
        """A day plan being published: its remote sessions' venues are registered, and each
        venue's public key is written into the plan from its enrolment (in place)."""
        for session in plan.get("sessions") or []:
            remote = session.get("remote") if isinstance(session, dict) else None
            if not isinstance(remote, dict):
                continue
            venues = remote.get("venues")
            if not isinstance(venues, list) or not all(isinstance(v, dict) and isinstance(v.get("site"), str) for v in venues):
                raise CenterError(400, "bad_body", f"session {session.get('id')}.remote.venues: a list of venues with their site ids")
            if site_id not in [v["site"] for v in venues]:
                raise CenterError(400, "bad_body", f"session {session.get('id')}.remote: {site_id} is not one of its venues")
            for venue in venues:
                try:
                    key = self.site_key(venue["site"])
                except CenterError as exc:
                    raise CenterError(400, "bad_body", f"session {session.get('id')}.remote: venue {venue['site']} is not "
                                      f"enrolled here ({exc})") from exc
                venue["public_key"] = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
                conn.execute("""INSERT INTO remote_sessions (session, site, main, registered, ends) VALUES (%s, %s, %s, %s, %s)
                                ON CONFLICT (session, site) DO UPDATE SET main = excluded.main, registered = excluded.registered,
                                ends = excluded.ends""",
                             (str(session.get("id")), venue["site"], venue["site"] == remote.get("main"),
                              utc_timestamp(self.clock.now()), _moment(session.get("end"))))

    def _venues(self, conn: Any, session: str) -> list[str]:
        return [r[0] for r in conn.execute("SELECT site FROM remote_sessions WHERE session = %s ORDER BY site", (session,))]

    # -- send --------------------------------------------------------------------------------

    def _verified(self, site_id: str, message: Any) -> dict[str, Any]:
        if not isinstance(message, dict) or message.get("kind") not in KINDS or not all(
                isinstance(message.get(k), str) for k in ("session", "body", "sig")):
            raise CenterError(400, "bad_request", "a message: kind (record, screens or attachment), session, body and sig")
        if len(message["body"]) > MAX_BODY:
            raise CenterError(413, "too_large", f"a relayed message is at most {MAX_BODY} characters")
        to = message.get("to")
        if to is not None and (not isinstance(to, list) or not all(isinstance(t, str) for t in to)):
            raise CenterError(400, "bad_request", "to: a list of site ids")
        digest = hashlib.sha256(message["body"].encode()).digest()
        signed = {"record": record_message, "screens": screens_message, "attachment": attachment_message}[message["kind"]](digest)
        try:
            self.site_key(site_id).verify(base64.b64decode(message["sig"], validate=True), signed)
            body = json.loads(message["body"])
        except (InvalidSignature, ValueError) as exc:
            raise CenterError(400, "bad_signature", f"a relayed {message['kind']} does not verify with {site_id}'s key") from exc
        origin = body.get("site") if message["kind"] == "record" else body.get("from")
        session = (body.get("payload") or {}).get("session") if message["kind"] == "record" else body.get("session")
        if origin != site_id or session != message["session"]:
            raise CenterError(400, "bad_request", "a relayed message names its sender and its session inside what is signed")
        return {"session": message["session"], "kind": message["kind"], "body": message["body"], "sig": message["sig"],
                "to": to, "sha256": digest.hex()}

    def relay_send(self, site_id: str, messages: Any) -> dict[str, Any]:
        """Verify and queue a venue's messages; answers how many were new and how many the
        center had already (a retry)."""
        if not isinstance(messages, list) or len(messages) > MAX_MESSAGES:
            raise CenterError(400, "bad_request", f"messages: a list of at most {MAX_MESSAGES}")
        checked = [self._verified(site_id, m) for m in messages]  # every signature before any lock
        new = duplicates = 0
        with self.db.transaction() as conn:
            for m in checked:
                venues = self._venues(conn, m["session"])
                if site_id not in venues:
                    raise CenterError(403, "not_a_venue", f"{site_id} is not a venue of the remote session {m['session']}")
                targets = [v for v in venues if v != site_id and (m["to"] is None or v in m["to"])]
                for target in targets:
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('relay:' || %s))", (target,))
                    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM relay WHERE to_site = %s", (target,)).fetchone()[0]
                    inserted = conn.execute(
                        """INSERT INTO relay (to_site, seq, session, from_site, kind, body, sig, sha256, relayed)
                           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (to_site, from_site, sha256) DO NOTHING""",
                        (target, seq, m["session"], site_id, m["kind"], m["body"], m["sig"], m["sha256"],
                         utc_timestamp(self.clock.now()))).rowcount
                    new, duplicates = new + inserted, duplicates + (1 - inserted)
                    if inserted:  # the center's signed log names every relayed message by its hash
                        center_log.append(conn, self.key, self.clock, site_id, "relay", {
                            "session": m["session"], "from": site_id, "to": target, "seq": seq, "kind": m["kind"],
                            "sha256": m["sha256"]})
        return {"relayed": new, "duplicates": duplicates}

    # -- poll --------------------------------------------------------------------------------

    def _presence(self, conn: Any, site_id: str) -> dict[str, dict[str, bool]]:
        rows = conn.execute(
            """SELECT r.session, o.site, COALESCE(p.expires > clock_timestamp(), FALSE)
               FROM remote_sessions r JOIN remote_sessions o ON o.session = r.session
               LEFT JOIN relay_presence p ON p.site = o.site
               WHERE r.site = %s AND (r.registered >= %s OR r.ends >= %s) ORDER BY r.session, o.site""",
            (site_id, utc_timestamp(self.clock.now() - timedelta(days=ACTIVE_DAYS)), self.clock.now() - timedelta(hours=12))).fetchall()
        out: dict[str, dict[str, bool]] = {}
        for session, venue, present in rows:
            out.setdefault(session, {})[venue] = bool(present)
        return out

    def relay_poll(self, site_id: str, after: int, wait_s: float) -> dict[str, Any]:
        """The venue's messages after ``after`` and its sessions' venues' presence (long poll)."""
        if self._waiting_polls is None:
            type(self)._waiting_polls = threading.BoundedSemaphore(8)
        waiting = self._waiting_polls.acquire(blocking=False)  # a few per worker may wait; others answer at once
        try:
            deadline = time.monotonic() + (wait_s if waiting else 0.0)
            with self.db.transaction() as conn:
                # A report signature is personal data: once its receiver has it, the center keeps
                # only its SHA-256 (and the signature over it), not the image.
                conn.execute("UPDATE relay SET body = '' WHERE to_site = %s AND kind = 'attachment' AND seq <= %s AND body != ''",
                             (site_id, after))
                conn.execute("""INSERT INTO relay_presence (site, expires) VALUES (%s, clock_timestamp() + make_interval(secs => %s))
                                ON CONFLICT (site) DO UPDATE SET expires = excluded.expires""",
                             (site_id, (wait_s if waiting else 0.0) + GRACE_S))
            with self.db.reader() as conn:
                first = self._presence(conn, site_id)
            while True:
                with self.db.reader() as conn:
                    rows = conn.execute("SELECT seq, session, from_site, kind, body, sig FROM relay WHERE to_site = %s AND seq > %s "
                                        "ORDER BY seq LIMIT %s", (site_id, after, MAX_MESSAGES)).fetchall()
                    presence = self._presence(conn, site_id) if not rows else first
                if rows or presence != first or time.monotonic() >= deadline:
                    break
                time.sleep(POLL_STEP_S)
            messages, size = [], 0
            for seq, session, origin, kind, body, sig in rows:
                if messages and size + len(body) > MAX_BODY * 4:
                    break
                messages.append({"seq": seq, "session": session, "from": origin, "kind": kind, "body": body, "sig": sig})
                size += len(body)
            return {"messages": messages, "venues": presence if not rows else self._presence_now(site_id)}
        finally:
            if waiting:
                self._waiting_polls.release()

    def _presence_now(self, site_id: str) -> dict[str, dict[str, bool]]:
        with self.db.reader() as conn:
            return self._presence(conn, site_id)


def _moment(text: Any) -> Any:
    """A plan's session end (ISO 8601 with its offset), or None when it is not one."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None
