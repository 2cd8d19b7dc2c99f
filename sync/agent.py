"""The site's sync agent (docs/sync-protocol.md).

``appliance enroll --center URL --token T [--ca FILE]`` registers the site's public key with the
center and pins the center's key (and, optionally, the CA its TLS certificate must come from).
A round (``appliance sync once``; the sync worker runs them, bounded in time, with backoff and
jitter after a failure) goes lane by lane:

1. the center's head (connectivity; the site reports its own size, for the center's lag);
2. the feed down, urgent lane first: center-signed items verified with the pinned key, each
   applied with its cursor in one transaction; a cursor the center cannot continue from is
   answered with ``refetch`` and the lane's snapshot is applied instead;
3. the journal up from the center's head in bounded batches, each with the site's signed
   checkpoint and a consistency proof, keeping the cosigned receipts;
4. session footage up by tus (sync/media.py), confirmed only when the center holds the file with
   the sealed SHA-256.

Every request is signed with the site key (RFC 9421, requests-http-signature) and carries a nonce
and a Content-Digest. The center's Date header gives the clock offset shown on the console.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat, load_pem_public_key
from requests_http_signature import HTTPSignatureAuth, algorithms

from appliance import merkle
from appliance.clock import utc_timestamp
from appliance.keys import load_site_keys
from appliance.personal import redact_personal_data
from appliance.service_detail import detail
from appliance.signednote import Checkpoint, NoteError, sign_checkpoint, verify_note
from appliance.site import Site
from sync import feed
from sync.errors import SyncError  # noqa: F401  (raised here, and imported from here by callers)
from sync.feed import LANES
from sync.statements import StatementError, open_media_held

CENTER_NAME = "provincial-center"
CLOCK_SKEW_S = 4  # the center's signature check allows a request created at most 5 s in its future
BATCH = 2000
TIMEOUT_S = 30
BASE_BACKOFF_S = 2.0


def _set_meta(site: Site, conn: Any, key: str, value: str) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


def _verify(site: Site) -> str | bool:
    """The pinned CA for TLS to the center, when enrolment gave one; else the system's CAs."""
    ca = site.store.get_meta("sync_center_ca")
    return ca if ca else True


class PinnedSession(requests.Session):
    """A session whose pinned CA wins over REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the
    environment (requests otherwise lets them replace ``Session.verify``, psf/requests#3829)."""

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str) and verify in (None, True):
            settings["verify"] = self.verify
        return settings


def enroll(site: Site, center_url: str, token: str, ca_file: Path | None = None) -> dict[str, Any]:
    """Register the site's key with the center and pin the center's key (and its CA, if given:
    from then on only a certificate issued by that CA is accepted for the center)."""
    public_pem = site.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    pinned = None
    if ca_file is not None:
        pinned = site.data_dir / "sync-center-ca.pem"
        pinned.write_bytes(Path(ca_file).read_bytes())
    http = PinnedSession()
    http.verify = str(pinned) if pinned else True
    try:
        resp = http.post(center_url.rstrip("/") + "/center/v1/enroll", timeout=TIMEOUT_S,
                         json={"site_id": site.config.site.id, "token": token, "public_key": public_pem})
    except requests.RequestException as exc:
        raise SyncError(f"the center at {center_url} cannot be reached: {exc}") from exc
    if resp.status_code != 200:
        raise SyncError(f"enrolment refused: {resp.status_code} {resp.text[:200]}", "refused")
    answer = resp.json()
    load_pem_public_key(answer["center_public_key"].encode())  # a real key, or this raises
    with site.store.transaction() as conn:
        _set_meta(site, conn, "sync_center_url", center_url.rstrip("/"))
        _set_meta(site, conn, "sync_center_key", answer["center_public_key"])
        _set_meta(site, conn, "sync_center_ca", str(pinned) if pinned else "")
        _set_meta(site, conn, "sync_acked", "0")
        site.journal.append(conn, "sync.enrolled", {"center": center_url.rstrip("/"), "center_name": answer["center_name"],
                                                    "ca_pinned": pinned is not None})
    return {"center": center_url, "center_name": answer["center_name"], "ca_pinned": pinned is not None}


class Agent:
    """One round with the center, lane by lane: the feed down (urgent lane first), the journal
    up, the recordings up; each bounded by the round's deadline so the worker keeps beating."""

    def __init__(self, site: Site) -> None:
        self.site = site
        url = site.store.get_meta("sync_center_url")
        key_pem = site.store.get_meta("sync_center_key")
        if not url or not key_pem:
            raise SyncError("not enrolled with a center (appliance enroll --center URL --token T)", "not_enrolled")
        self.url = url
        self.base = f"{url}/center/v1/sites/{site.config.site.id}"
        center_key = load_pem_public_key(key_pem.encode())
        assert isinstance(center_key, Ed25519PublicKey)
        self.center_key = center_key
        signing = load_site_keys(site.config.paths.keys_dir).signing
        self._signing = signing
        pem = signing.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        self.http = PinnedSession()
        self.http.verify = _verify(site)
        self.http.auth = HTTPSignatureAuth(signature_algorithm=algorithms.ED25519, key=pem, key_id=site.config.site.id,
                                           covered_component_ids=("@method", "@authority", "@target-uri", "content-digest"),
                                           label="sig1", use_nonce=True)
        self.http.hooks["response"].append(self._clock)
        self.clock_offset_s: int | None = None

    def _clock(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        """The center's Date header against this box's clock (1 s resolution): the console
        shows the offset, so a drifting clock is noticed before it matters for a record's time."""
        try:
            center_now = parsedate_to_datetime(resp.headers["Date"])
        except (KeyError, TypeError, ValueError):
            return
        local = self.site.clock.now()
        elapsed = resp.elapsed.total_seconds() if resp.elapsed else 0.0
        self.clock_offset_s = round((center_now - local).total_seconds() + elapsed / 2)

    def _post(self, path: str, body: dict[str, Any], timeout: Any = TIMEOUT_S) -> dict[str, Any]:
        return self._post_bytes(path, json.dumps(body, ensure_ascii=False).encode(), timeout)

    def _post_bytes(self, path: str, data: bytes, timeout: Any = TIMEOUT_S) -> dict[str, Any]:
        try:
            resp = self.http.post(f"{self.base}/{path}", timeout=timeout, data=data, headers={"Content-Type": "application/json"})
        except requests.RequestException as exc:
            raise SyncError(f"the center cannot be reached: {exc}") from exc
        if resp.status_code != 200:
            try:
                err = resp.json()
            except ValueError:
                err = {"error": "http", "message": f"{resp.status_code} {resp.text[:200]}"}
            raise SyncError(f"the center refused: {err.get('error')}: {err.get('message')}", str(err.get("error")))
        try:
            return resp.json()
        except ValueError as exc:  # a cut or garbled answer: the round ends, nothing was applied
            raise SyncError(f"the center's answer is not JSON ({len(resp.content)} bytes)") from exc

    def _receipt_size(self, receipt: Any, local: int, nodes: merkle.TreeNodes | None = None) -> int:
        """What the center acknowledges, from its cosigned receipt, never from an answer's plain
        fields: the receipt verifies with the pinned center key and is a checkpoint of this
        site's own journal — it carries this site's own signature (the site signs no other tree),
        or, signed by an earlier key of the site, its root is this journal's root at that size."""
        try:
            text = verify_note(str(receipt), CENTER_NAME, self.center_key)
            origin, size_text, root_b64 = text.split("\n")[:3]
            size, root = int(size_text), base64.b64decode(root_b64, validate=True)
        except (NoteError, ValueError) as exc:
            raise SyncError(f"the center's receipt does not verify with the pinned key: {exc}", "bad_receipt") from exc
        mine = origin == self.site.config.site.id and 0 < size <= local
        if mine:
            try:
                verify_note(str(receipt), self.site.config.site.id, self.site.public_key)
            except NoteError:
                if nodes is None:
                    nodes = merkle.TreeNodes()
                    nodes.extend(self.site.journal.leaf_hashes(size))
                mine = root == nodes.root(size)
        if not mine:
            raise SyncError(f"the center's receipt (size {size}) is not a checkpoint of this site's journal", "bad_receipt")
        return size

    def acknowledged(self, head: dict[str, Any]) -> int:
        """The center's size of this journal from its ``head`` answer, as its receipt proves it."""
        size, local = int(head.get("size") or 0), self.site.journal.count()
        if size > local:
            raise SyncError(f"the center holds {size} records of this site, this site only {local}: "
                            "restored from an old image? Stop and call the provincial center", "shrink")
        if size == 0:
            return 0
        if self._receipt_size(head.get("receipt"), local) != size:
            raise SyncError(f"the center's head ({size}) is not its latest receipt", "bad_receipt")
        return size

    def _checkpoint(self, size: int, root: bytes) -> str:
        cp = Checkpoint(origin=self.site.config.site.id, size=size, root=root)
        return sign_checkpoint(cp, self.site.config.site.id, self._signing)

    # -- a round ------------------------------------------------------------------------------

    def sync_once(self, max_seconds: float | None = None) -> dict[str, Any]:
        """One round: connectivity (the center's head), the feed down lane by lane, the journal
        up, the recordings up. ``max_seconds`` bounds the round (the rest waits for the next)."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        center = self._post("head", {"local_size": self.site.journal.count()})
        acked = self.acknowledged(center)
        feed = self.pull_feed(deadline)
        journal = self.push_journal(acked, deadline)
        media = self.push_media(deadline)
        if media["confirmed"] and (deadline is None or time.monotonic() < deadline):
            journal = self.push_journal(journal["acked"], deadline)  # the acknowledgements go up in the same round
        with self.site.store.transaction() as conn:
            _set_meta(self.site, conn, "sync_last_success", utc_timestamp(self.site.clock.now()))
            if self.clock_offset_s is not None:
                _set_meta(self.site, conn, "sync_clock_offset_s", str(self.clock_offset_s))
        return {**journal, "feed": feed, "media": media, "clock_offset_s": self.clock_offset_s}

    # -- the feed down ----------------------------------------------------------------------------

    def pull_feed(self, deadline: float | None = None) -> dict[str, int]:
        """Every lane in priority order, page by page; each item verified with the pinned key
        and applied with its cursor in one transaction. Returns items applied per lane."""
        applied = {lane: 0 for lane in LANES}
        site_id = self.site.config.site.id
        for lane in LANES:
            while deadline is None or time.monotonic() < deadline:
                try:
                    page = self._post(f"feed/{lane}", {"after": feed.cursor(self.site, lane)})
                except SyncError as exc:
                    if exc.code != "refetch":
                        raise
                    applied[lane] += self.refetch(lane)
                    continue
                if not page["items"]:
                    break
                for signed in page["items"]:
                    try:
                        item = feed.open_item(self.center_key, signed, site_id=site_id, lane=lane)
                    except feed.FeedError as exc:
                        raise SyncError(str(exc), "bad_feed_item") from exc
                    with self.site.store.transaction() as conn:
                        have = int((conn.execute("SELECT value FROM meta WHERE key = ?", (f"feed_cursor_{lane}",)).fetchone()
                                    or ["0"])[0])
                        if item["seq"] <= have:
                            continue  # applied already (another round ran alongside)
                        if item["seq"] != have + 1:
                            raise SyncError(f"feed lane {lane}: item {item['seq']} does not follow {have}", "feed_gap")
                        feed.apply_item(self.site, conn, item)
                        feed.set_cursor(conn, lane, item["seq"])
                    applied[lane] += 1
        return applied

    def refetch(self, lane: str) -> int:
        """The center cannot continue from this site's cursor: apply the lane's snapshot (the
        latest item of every key) and move the cursor to its head, all in one transaction."""
        snap = self._post(f"feed/{lane}/snapshot", {})
        site_id = self.site.config.site.id
        try:
            items = [feed.open_item(self.center_key, s, site_id=site_id, lane=lane) for s in snap["items"]]
        except feed.FeedError as exc:
            raise SyncError(str(exc), "bad_feed_item") from exc
        head = int(snap["head"])
        if any(b["seq"] <= a["seq"] for a, b in zip(items, items[1:])) or any(i["seq"] > head for i in items):
            raise SyncError(f"feed lane {lane}: the snapshot is out of order", "bad_feed_item")
        with self.site.store.transaction() as conn:
            for item in items:
                feed.apply_item(self.site, conn, item)
            feed.set_cursor(conn, lane, head)
            self.site.journal.append(conn, "feed.refetched", {"lane": lane, "head": head, "items": len(items)})
        return len(items)

    # -- the journal up -----------------------------------------------------------------------

    def push_journal(self, acked: int, deadline: float | None = None) -> dict[str, int]:
        """The records after the center's head in batches, each with the site's checkpoint at
        its end and a consistency proof from the center's size (O(log n) from stored nodes)."""
        local = self.site.journal.count()
        if acked > local:
            raise SyncError(f"the center holds {acked} records of this site, this site only {local}: "
                            "restored from an old image? Stop and call the provincial center", "shrink")
        sent = 0
        if acked < local:
            nodes = merkle.TreeNodes()
            nodes.extend(self.site.journal.leaf_hashes(local))

            def batch(start: int) -> tuple[int, bytes]:
                end = min(local, start + BATCH)
                rows = self.site.store.reader().execute(
                    "SELECT seq, body, hash, sig FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq", (start, end)).fetchall()
                return end, json.dumps({"records": [{"seq": r[0], "body": r[1], "hash": r[2], "sig": r[3]} for r in rows],
                                        "checkpoint": self._checkpoint(end, nodes.root(end)),
                                        "consistency": [base64.b64encode(h).decode() for h in nodes.consistency_proof(start, end)]},
                                       ensure_ascii=False).encode()

            # The next batch is prepared while the center verifies this one (its CPU and ours overlap).
            with ThreadPoolExecutor(1, thread_name_prefix="sync-batch") as pool:
                ahead = pool.submit(batch, acked)
                while acked < local and (deadline is None or time.monotonic() < deadline):
                    end, body = ahead.result()
                    if end < local:
                        ahead = pool.submit(batch, end)
                    answer = self._post_bytes("journal", body)
                    receipt = answer["receipt"]
                    acked = self._receipt_size(receipt, local, nodes)
                    sent += answer["accepted"]
                    with self.site.store.transaction() as conn:
                        _set_meta(self.site, conn, "sync_acked", str(acked))
                        _set_meta(self.site, conn, "sync_receipt", receipt)
                    if acked != end and acked < local:  # the center holds another size than expected: go on from it
                        ahead.cancel()
                        ahead = pool.submit(batch, acked)
        with self.site.store.transaction() as conn:
            _set_meta(self.site, conn, "sync_acked", str(acked))
        return {"acked": acked, "sent": sent, "pending": self.site.journal.count() - acked}

    # -- recordings up ------------------------------------------------------------------------

    def media_held(self, seqs: list[int]) -> dict[str, str]:
        """Which of these segments (by sealing record) the center holds whole, as the center's
        signed statement answering a fresh challenge says (sync/statements.py): the site frees
        footage on it, so an unsigned or replayed answer is refused."""
        challenge = secrets.token_hex(16)
        answer = self._post("media/status", {"seqs": seqs, "challenge": challenge})
        try:
            return open_media_held(self.center_key, answer, site_id=self.site.config.site.id, challenge=challenge)
        except StatementError as exc:
            raise SyncError(str(exc), "bad_statement") from exc

    def push_media(self, deadline: float | None = None) -> dict[str, int]:
        """Session footage the center has not confirmed, oldest first, by tus; a segment is
        confirmed (``segments.center_ack``, and a journal record) only when the center holds it
        whole with the sealed SHA-256."""
        from sync.media import upload_segment

        acked_journal = int(self.site.store.get_meta("sync_acked") or 0)
        rows = [dict(r) for r in self.site.store.reader().execute(
            """SELECT s.id, s.path, s.sha256, s.size, s.seq FROM segments s
               WHERE s.center_ack IS NULL AND s.deleted IS NULL AND s.seq <= ?
                 AND EXISTS (SELECT 1 FROM segment_sessions l WHERE l.segment = s.id) ORDER BY s.seq""", (acked_journal,))]
        out = {"uploaded": 0, "confirmed": 0, "pending": len(rows)}
        if not rows:
            return out
        held = self.media_held([r["seq"] for r in rows[:5000]])
        for r in rows:
            if held.get(str(r["seq"])) != r["sha256"]:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                upload_segment(self, r)
                out["uploaded"] += 1
                if self.media_held([r["seq"]]).get(str(r["seq"])) != r["sha256"]:
                    raise SyncError(f"segment {r['id']}: uploaded, but the center does not hold it with the sealed hash",
                                    "media_not_held")
            with self.site.store.transaction() as conn:
                if conn.execute("UPDATE segments SET center_ack = ? WHERE id = ? AND center_ack IS NULL",
                                (utc_timestamp(self.site.clock.now()), r["id"])).rowcount:
                    self.site.journal.append(conn, "recording.center_ack", {"segment": r["id"], "seal_seq": r["seq"],
                                                                           "sha256": r["sha256"]})
            out["confirmed"] += 1
            out["pending"] -= 1
        return out


class SyncLoop:
    """The sync worker's step: rounds bounded in time, and after a failure, exponential
    backoff with full jitter (so a province's sites do not all come back at once) up to
    ``sync.max_backoff_s``; the state is in ``meta`` for the console."""

    def __init__(self, site: Site, round_s: float = 20.0) -> None:
        self.site, self.round_s = site, round_s
        self.max_backoff_s = site.config.sync.max_backoff_s
        self.failures = 0
        self.next_try = 0.0

    def step(self) -> str:
        if not self.site.store.get_meta("sync_center_url"):
            return detail("sync_not_enrolled")
        now = time.monotonic()
        if now < self.next_try:
            return detail("sync_waiting", seconds=round(self.next_try - now))
        agent = None
        try:
            agent = Agent(self.site)
            result = agent.sync_once(max_seconds=self.round_s)
        except SyncError as exc:
            self.failures += 1
            delay = random.uniform(0, min(self.max_backoff_s, BASE_BACKOFF_S * 2 ** min(self.failures, 20)))
            self.next_try = time.monotonic() + delay
            state = "offline" if exc.code == "unreachable" else "refused"
            offset = agent.clock_offset_s if agent is not None else None
            message = redact_personal_data(str(exc))  # the center's words may echo what the site sent
            if offset is not None and abs(offset) > CLOCK_SKEW_S and exc.code == "bad_signature":
                # The center refuses signatures created in its future: say why, the console shows it.
                message = f"this box's clock is {-offset:+d} s off the center's; fix the time (NTP). {message}"
            with self.site.store.transaction() as conn:
                _set_meta(self.site, conn, "sync_state", state)
                _set_meta(self.site, conn, "sync_last_error", message[:300])
                if offset is not None:  # known from the refusal's Date header too
                    _set_meta(self.site, conn, "sync_clock_offset_s", str(offset))
            return detail("sync_unreachable" if state == "offline" else "sync_refused", seconds=round(delay))
        self.failures, self.next_try = 0, 0.0
        with self.site.store.transaction() as conn:
            _set_meta(self.site, conn, "sync_state", "online")
            _set_meta(self.site, conn, "sync_last_error", "")
        return detail("sync_ok", acked=result["acked"], pending=result["pending"], media=result["media"]["pending"])


def sync_status(site: Site) -> dict[str, Any]:
    """What the console shows: link state, acknowledged and pending records and bytes, media
    pending, the last success and the clock's offset from the center."""
    url = site.store.get_meta("sync_center_url")
    if not url:
        return {"state": "not_connected", "detail": "no provincial center enrolled yet"}
    acked = int(site.store.get_meta("sync_acked") or 0)
    conn = site.store.reader()
    pending_bytes = conn.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM journal WHERE seq > ?", (acked,)).fetchone()[0]
    media = conn.execute(
        """SELECT COUNT(*), COALESCE(SUM(size), 0) FROM segments s WHERE s.center_ack IS NULL AND s.deleted IS NULL
           AND EXISTS (SELECT 1 FROM segment_sessions l WHERE l.segment = s.id)""").fetchone()
    offset = site.store.get_meta("sync_clock_offset_s")
    return {"state": site.store.get_meta("sync_state") or "enrolled", "center": url, "acked": acked,
            "pending": site.journal.count() - acked, "pending_bytes": pending_bytes, "media_pending": media[0],
            "media_pending_bytes": media[1], "last_success": site.store.get_meta("sync_last_success"),
            "last_error": site.store.get_meta("sync_last_error") or "",
            "clock_offset_s": int(offset) if offset else None}
