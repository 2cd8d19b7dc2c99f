"""The site's sync agent, first part: enrolment and the journal going up (docs/sync-protocol.md).

``appliance enroll --center URL --token T`` registers the site's public key with the center and
pins the center's key. ``appliance sync once`` asks the center for its head of this site's
journal, then sends the records after it in bounded batches, each with the site's signed
checkpoint at the batch's end and a consistency proof from the center's size; it keeps each
receipt (the checkpoint cosigned by the center, checked against the pinned key) and the
acknowledged size. Every request is signed with the site key (RFC 9421, requests-http-signature)
and carries a nonce and a Content-Digest.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import requests
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat, load_pem_public_key
from requests_http_signature import HTTPSignatureAuth, algorithms

from appliance import merkle
from appliance.clock import utc_timestamp
from appliance.keys import load_site_keys
from appliance.signednote import Checkpoint, NoteError, sign_checkpoint, verify_note
from appliance.site import Site

CENTER_NAME = "provincial-center"
BATCH = 1000
TIMEOUT_S = 30


class SyncError(RuntimeError):
    pass


def _set_meta(site: Site, conn: Any, key: str, value: str) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


def enroll(site: Site, center_url: str, token: str) -> dict[str, Any]:
    public_pem = site.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    try:
        resp = requests.post(center_url.rstrip("/") + "/center/v1/enroll", timeout=TIMEOUT_S,
                             json={"site_id": site.config.site.id, "token": token, "public_key": public_pem})
    except requests.RequestException as exc:
        raise SyncError(f"the center at {center_url} cannot be reached: {exc}") from exc
    if resp.status_code != 200:
        raise SyncError(f"enrolment refused: {resp.status_code} {resp.text[:200]}")
    answer = resp.json()
    load_pem_public_key(answer["center_public_key"].encode())  # a real key, or this raises
    with site.store.transaction() as conn:
        _set_meta(site, conn, "sync_center_url", center_url.rstrip("/"))
        _set_meta(site, conn, "sync_center_key", answer["center_public_key"])
        _set_meta(site, conn, "sync_acked", "0")
        site.journal.append(conn, "sync.enrolled", {"center": center_url.rstrip("/"), "center_name": answer["center_name"]})
    return {"center": center_url, "center_name": answer["center_name"]}


class Agent:
    def __init__(self, site: Site) -> None:
        self.site = site
        url = site.store.get_meta("sync_center_url")
        key_pem = site.store.get_meta("sync_center_key")
        if not url or not key_pem:
            raise SyncError("not enrolled with a center (appliance enroll --center URL --token T)")
        self.url = url
        self.center_key = load_pem_public_key(key_pem.encode())
        signing = load_site_keys(site.config.paths.keys_dir).signing
        self._signing = signing
        pem = signing.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        self.http = requests.Session()
        self.http.auth = HTTPSignatureAuth(signature_algorithm=algorithms.ED25519, key=pem, key_id=site.config.site.id,
                                           covered_component_ids=("@method", "@authority", "@target-uri", "content-digest"),
                                           use_nonce=True)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = self.http.post(f"{self.url}/center/v1/sites/{self.site.config.site.id}/{path}", timeout=TIMEOUT_S,
                                  data=json.dumps(body, ensure_ascii=False).encode(), headers={"Content-Type": "application/json"})
        except requests.RequestException as exc:
            raise SyncError(f"the center cannot be reached: {exc}") from exc
        if resp.status_code != 200:
            try:
                err = resp.json()
            except ValueError:
                err = {"error": "http", "message": resp.text[:200]}
            raise SyncError(f"the center refused: {err.get('error')}: {err.get('message')}")
        return resp.json()

    def _checkpoint(self, size: int, root: bytes) -> str:
        cp = Checkpoint(origin=self.site.config.site.id, size=size, root=root)
        return sign_checkpoint(cp, self.site.config.site.id, self._signing)

    def sync_once(self, max_batches: int | None = None) -> dict[str, Any]:
        """Send what the center lacks; at most ``max_batches`` batches (the worker bounds a
        round so that it keeps heartbeating; the rest goes in the next round)."""
        center = self._post("head", {})
        acked = int(center["size"])
        local = self.site.journal.count()
        if acked > local:
            raise SyncError(f"the center holds {acked} records of this site, this site only {local}: "
                            "restored from an old image? Stop and call the provincial center")
        sent = 0
        receipt = center.get("receipt")
        leaves = self.site.journal.leaf_hashes()
        tree = merkle.CompactRange()  # the running root: one pass over the leaves, not one per batch
        for leaf in leaves[:acked]:
            tree.append(leaf)
        batches = 0
        while acked < len(leaves) and (max_batches is None or batches < max_batches):
            batches += 1
            end = min(len(leaves), acked + BATCH)
            for leaf in leaves[acked:end]:
                tree.append(leaf)
            rows = self.site.store.reader().execute(
                "SELECT seq, body, hash, sig FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq", (acked, end)).fetchall()
            batch = {"records": [{"seq": r[0], "body": r[1], "hash": r[2], "sig": r[3]} for r in rows],
                     "checkpoint": self._checkpoint(end, tree.root()),
                     "consistency": [base64.b64encode(h).decode() for h in merkle.consistency_proof(acked, leaves[:end])] if acked else []}
            answer = self._post("journal", batch)
            receipt = answer["receipt"]
            try:
                verify_note(receipt, CENTER_NAME, self.center_key)  # type: ignore[arg-type]
            except NoteError as exc:
                raise SyncError(f"the center's receipt does not verify with the pinned key: {exc}") from exc
            sent += answer["accepted"]
            acked = int(answer["size"])
            with self.site.store.transaction() as conn:
                _set_meta(self.site, conn, "sync_acked", str(acked))
                _set_meta(self.site, conn, "sync_receipt", receipt)
                _set_meta(self.site, conn, "sync_last_success", utc_timestamp(self.site.clock.now()))
        return {"acked": acked, "sent": sent, "pending": self.site.journal.count() - acked}


def sync_step(site: Site) -> str:
    """One round for the sync worker: a dropped link is a state to show, not a failure of the
    service (the journal waits, safely, for the next round)."""
    if not site.store.get_meta("sync_center_url"):
        return "no provincial center enrolled yet"
    try:
        result = Agent(site).sync_once(max_batches=20)
    except SyncError as exc:
        return f"center not reached or refused: {exc}"[:300]
    return f"{result['acked']} records acknowledged, {result['pending']} pending"


def sync_status(site: Site) -> dict[str, Any]:
    """What the console shows: enrolled or not, acknowledged and pending records, last success."""
    url = site.store.get_meta("sync_center_url")
    if not url:
        return {"state": "not_connected", "detail": "no provincial center enrolled yet"}
    acked = int(site.store.get_meta("sync_acked") or 0)
    return {"state": "enrolled", "center": url, "acked": acked, "pending": site.journal.count() - acked,
            "last_success": site.store.get_meta("sync_last_success")}
