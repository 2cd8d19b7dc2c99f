"""Alarms pushed to the province's own systems: every new alarm is POSTed once to the
``alarm_webhook`` of center.toml as JSON, signed with the center's key (header
``X-Center-Signature``: base64 Ed25519 over ``"provincial-center/webhook/v1\\n" || SHA-256(body)``),
so the receiver can tell a real alarm from a forged one with the center's public key
(``GET /center/v1/key``).

Delivery runs in a thread of each worker process, off every request path. Workers share the
work through the database: alarms are claimed five at a time with ``FOR UPDATE SKIP LOCKED`` (one
worker sends each), a claim older than five minutes (its worker died) is taken over, a failure
is tried again after 10 s, 20 s, 40 s … up to an hour, ten times in all, then marked failed (and
stays on the alarm page). Delivery is once unless a worker dies between the receiver's answer and
recording it: then the alarm is sent again, so receivers de-duplicate by ``alarm`` (its id)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from datetime import timedelta
from typing import Any

import requests

from appliance.clock import utc_timestamp
from center.base import CENTER_NAME

log = logging.getLogger(__name__)
CONTEXT = b"provincial-center/webhook/v1\n"
TRIES = 10
TIMEOUT_S = 5
BATCH = 5  # alarms claimed at once: a pass ends well within STALE_CLAIM even if every POST times out
STALE_CLAIM = timedelta(minutes=5)  # a claim this old belongs to a worker that died


def sign(key: Any, body: bytes) -> str:
    return base64.b64encode(key.sign(CONTEXT + hashlib.sha256(body).digest())).decode()


class WebhookDelivery:
    def __init__(self, center: Any, url: str, interval_s: float = 2.0) -> None:
        self.center, self.url, self.interval_s = center, url, interval_s
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="alarm-webhook", daemon=True)
        self.session = requests.Session()

    def start(self) -> "WebhookDelivery":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)

    def _run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            try:
                self.deliver_due()
            except Exception:  # the database away, say: the next pass tries again
                log.exception("alarm webhook pass failed")

    def deliver_due(self) -> int:
        now = self.center.clock.now()
        stamp = utc_timestamp(now)
        with self.center.db.transaction() as conn:
            rows = conn.execute(
                """UPDATE alarms SET webhook_state = 'claimed', webhook_at = %s, webhook_tries = webhook_tries + 1
                   WHERE id IN (SELECT id FROM alarms
                                WHERE (webhook_state IS NULL AND (webhook_at IS NULL OR webhook_at <= %s))
                                   OR (webhook_state = 'claimed' AND webhook_at < %s)
                                ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
                   RETURNING id, site, kind, detail, raised, count, webhook_tries""",
                (stamp, stamp, utc_timestamp(now - STALE_CLAIM), BATCH)).fetchall()
        sent = 0
        for alarm_id, site, kind, detail, raised, count, tries in rows:
            body = json.dumps({"center": CENTER_NAME, "alarm": alarm_id, "site": site, "kind": kind,
                               "detail": json.loads(detail), "raised": raised, "count": count},
                              ensure_ascii=False, sort_keys=True).encode()
            try:
                answer = self.session.post(self.url, data=body, timeout=TIMEOUT_S, headers={
                    "Content-Type": "application/json", "X-Center-Signature": sign(self.center.key, body)})
                ok = 200 <= answer.status_code < 300
            except requests.RequestException:
                ok = False
            later = utc_timestamp(self.center.clock.now() + timedelta(seconds=min(3600, 10 * 2 ** (tries - 1))))
            state, at = ("sent", utc_timestamp(self.center.clock.now())) if ok else (("failed" if tries >= TRIES else None), later)
            with self.center.db.transaction() as conn:  # only if the claim is still this pass's
                conn.execute("UPDATE alarms SET webhook_state = %s, webhook_at = %s WHERE id = %s "
                             "AND webhook_state = 'claimed' AND webhook_at = %s", (state, at, alarm_id, stamp))
            sent += ok
        return sent
