"""The site's side of the relay (docs/sync-protocol.md, "The relay"; docs/remote-evaluation.md):
while this venue takes part in a remote evaluation, two threads beside the sync worker keep
its committee linked through the center — not at the sync cadence, within a fraction of a
second:

* the **sender** looks every 50 ms for journal records to pass on (a secondary venue's members'
  actions; the main venue's committee records of the session) and, at the main venue, for a
  change of what the secondary members' screens show; it sends them, signed, and moves its
  cursor only once the center has them (a retry is taken once);
* the **poller** asks the center for this venue's messages (long polling, ``wait_s``) and
  applies each — verified with the sending venue's key from the plan, each in its own
  transaction, its number kept as the cursor afterwards (a message applied twice after a crash
  is recognised and skipped). Each answer says which venues are present; this venue records
  the link (remote_links), and a failed poll marks every other venue away: the committee
  pauses here at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from appliance.evaluation import remote, remote_screens
from appliance.site import Site
from sync.agent import Agent, SyncError, SyncLoop

log = logging.getLogger(__name__)
WAIT_S = 0.5  # a poll waits this long for a message; a venue away is known within about 2 s
SEND_EVERY_S = 0.02
IDLE_S = 1.0  # no remote session under way: look again after this
MAX_TRIES = 5


def _meta(site: Site, key: str) -> int:
    return int(site.store.get_meta(key) or 0)


def _set_meta(site: Site, key: str, value: int) -> None:
    with site.store.transaction() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, str(value)))


class RelayLink:
    def __init__(self, site: Site, *, wait_s: float = WAIT_S) -> None:
        self.site, self.wait_s = site, wait_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._screens_sent: dict[str, str] = {}  # session → the screens' fingerprint last sent
        self._tries: dict[int, int] = {}  # relay number → failed attempts to apply it
        self.errors = 0

    # -- running ------------------------------------------------------------------------------

    def start(self) -> "RelayLink":
        for name, step in (("relay-send", self.send_once), ("relay-poll", self.poll_once)):
            thread = threading.Thread(target=self._loop, args=(step,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.wait_s + 5)

    def _loop(self, step: Any) -> None:
        agent: Agent | None = None
        while not self._stop.is_set():
            try:
                agent = agent or Agent(self.site)
                pause = step(agent)
            except SyncError as exc:  # not enrolled, or the center away: the poller has marked the link
                log.debug("relay: %s", exc)
                pause = 0.5
            except Exception:  # noqa: BLE001 - the relay must outlive any one bad message or database hiccup
                log.exception("relay step failed")
                self.errors += 1
                pause = 1.0
            if pause:
                self._stop.wait(pause)

    # -- sending ------------------------------------------------------------------------------

    def send_once(self, agent: Agent) -> float:
        """Send what is new; returns how long to wait before looking again."""
        remotes = remote.active(self.site)
        if not remotes:
            return IDLE_S
        cursor = _meta(self.site, "relay_forwarded")
        records, upto = remote.relayed_records(self.site, cursor)
        messages = []
        for r, rec in records:
            if not r.is_main:  # a member's report signature goes first, beside the action naming it
                messages += self._attachment(r, rec["seq"])
            messages.append({"kind": "record", "session": r.session, "to": None if r.is_main else [r.main],
                             "body": rec["body"], "sig": rec["sig"]})
        actions = [rec["seq"] for r, rec in records if not r.is_main]
        fingerprints = {}
        for r in remotes:
            if r.is_main:
                fp = remote_screens.screens_fingerprint(self.site.store.reader(), r.session)
                if fp != self._screens_sent.get(r.session):
                    fingerprints[r.session] = fp
                    messages += self._screens(r)
        for start in range(0, len(messages), 100):
            agent._post("relay/send", {"messages": messages[start:start + 100]}, timeout=(2.0, 10.0))
        if upto != cursor:
            _set_meta(self.site, "relay_forwarded", upto)
        remote.sent(self.site, actions)
        self._screens_sent.update(fingerprints)
        return 0.0 if upto != cursor else SEND_EVERY_S

    def _attachment(self, r: remote.Remote, seq: int) -> list[dict[str, Any]]:
        data = remote.attachment(self.site, seq)
        if data is None:
            return []
        text = json.dumps(data, ensure_ascii=False, sort_keys=True)
        return [{"kind": "attachment", "session": r.session, "to": [r.main], "body": text,
                 "sig": remote_screens.sign_attachment(self.site, text)}]

    def _screens(self, r: remote.Remote) -> list[dict[str, Any]]:
        out = []
        version = max(time.time_ns(), _meta(self.site, "relay_screens_version") + 1)  # newer than any sent before
        _set_meta(self.site, "relay_screens_version", version)
        for venue, screens in remote_screens.screens(self.site, r).items():
            text = json.dumps({"session": r.session, "from": r.me, "version": version, "screens": screens},
                              ensure_ascii=False, sort_keys=True, default=str)
            out.append({"kind": "screens", "session": r.session, "to": [venue], "body": text,
                        "sig": remote_screens.sign_screens(self.site, text)})
        return out

    # -- receiving ----------------------------------------------------------------------------

    def poll_once(self, agent: Agent) -> float:
        remotes = remote.active(self.site)
        if not remotes:
            return IDLE_S
        cursor = _meta(self.site, "relay_cursor")
        started = time.monotonic()
        try:
            answer = agent._post("relay/poll", {"after": cursor, "wait_s": self.wait_s}, timeout=(1.0, self.wait_s + 1.0))
        except SyncError:
            for r in remotes:  # this venue is cut off: every other venue is away from here
                remote.set_links(self.site, r.session, {v: False for v in r.others})
            raise
        venues = answer.get("venues") if isinstance(answer.get("venues"), dict) else {}
        for r in remotes:
            present = venues.get(r.session) if isinstance(venues.get(r.session), dict) else {}
            remote.set_links(self.site, r.session, {v: bool(present.get(v)) for v in r.others})
        messages = answer.get("messages") if isinstance(answer.get("messages"), list) else []
        for m in messages:
            if not self._take(m):
                return 0.2  # the committee is paused: this message is taken again when it resumes
            _set_meta(self.site, "relay_cursor", int(m["seq"]))
        quick = not messages and time.monotonic() - started < self.wait_s / 4
        return 0.3 if quick else 0.0  # (the center answered at once without messages: it has no room to wait)

    def _take(self, m: dict[str, Any]) -> bool:
        """Apply one message; False when it must wait (deferred while the committee is paused)."""
        try:
            if m.get("kind") == "record":
                return remote.receive_record(self.site, str(m["session"]), str(m["from"]), str(m["body"]), str(m["sig"])) != "deferred"
            if m.get("kind") == "screens":
                remote.receive_screens(self.site, str(m["session"]), str(m["from"]), str(m["body"]), str(m["sig"]))
                return True
            if m.get("kind") == "attachment":
                remote.receive_attachment(self.site, str(m["session"]), str(m["from"]), str(m["body"]), str(m["sig"]))
                return True
            log.warning("relay: message %s of unknown kind %r skipped", m.get("seq"), m.get("kind"))
        except (remote.RemoteError, KeyError, TypeError) as exc:
            # Not what it claims to be: never applied; journaled and passed over (the center keeps it).
            log.warning("relay: message %s refused: %s", m.get("seq"), exc)
            remote.refused(self.site, m, str(exc))
        except Exception:
            # Anything else (a busy database, a full disk) is tried again; a message that fails
            # five times is passed over so that the messages behind it still arrive.
            seq = int(m.get("seq") or 0)
            self._tries[seq] = self._tries.get(seq, 0) + 1
            if self._tries[seq] < MAX_TRIES:
                raise
            log.exception("relay: message %s from %s could not be applied after %d tries: passed over", seq, m.get("from"),
                          MAX_TRIES)
        return True


class SyncWithRelay(SyncLoop):
    """The sync worker's step, with the relay's threads started once the site is enrolled."""

    def __init__(self, site: Site, round_s: float = 20.0) -> None:
        super().__init__(site, round_s)
        self.relay: RelayLink | None = None

    def step(self) -> str:
        if self.relay is None and self.site.store.get_meta("sync_center_url"):
            self.relay = RelayLink(self.site).start()
        return super().step()
