"""An expert's first entry at the gate kiosk (闸机人证核验终端).

1. The card tap is decided as usual; when the only thing missing is the expert's commitment, a
   check-in prompt opens for the kiosk that shows that reader.
2. On the kiosk the expert reads the integrity and recusal commitment (廉洁自律和回避承诺书; 003
   第四十三条: read on site and sign before entering the evaluation room), signs it, and declares any
   conflict with the session's bidders.
3. A declared conflict stops the entry and files a replacement-draw request (补抽), journaled for
   the center. Otherwise a locker is assigned and opened with a one-time code (shown once, kept
   only as a hash), and the expert taps the card again to pass: the gate opens only for the card
   on the reader, never for whoever finished the screen.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from appliance.clock import utc_timestamp
from appliance.device_commands import queue_command
from appliance.site import Site
from appliance.siteops.checkin import VENUE_TZ

PROMPT_TTL = timedelta(seconds=90)
DEFAULT_COMMITMENT = (
    "本人作为本项目评标委员会成员，郑重承诺：\n"
    "一、遵守评标纪律，依法依规、客观公正、独立地进行评审；\n"
    "二、不私下接触投标人及其利害关系人，不收受任何财物或者其他好处；\n"
    "三、与本项目投标人存在利害关系的，主动申报并回避；\n"
    "四、不透露对投标文件的评审和比较、中标候选人的推荐情况以及与评标有关的其他情况；\n"
    "五、手机等通讯工具存入存储柜，评标期间未经批准不离开评标区。\n"
    "如有违反，愿意承担相应责任。"
)


def commitment_text(site: Site) -> str:
    """The commitment experts sign: the venue's own (``siteops.commitment_text``, the text the
    center provides, 003 第四十三条) or the built-in one."""
    return site.config.siteops.commitment_text.strip() or DEFAULT_COMMITMENT


class CheckinError(ValueError):
    pass


@dataclass(frozen=True)
class Prompt:
    id: int
    reader: str
    gate: str
    person_id: int
    session: str
    name_masked: str
    section_name: str
    bidders: list[dict[str, str]]


def open_prompt(site: Site, conn: Any, *, reader: str, gate: str, person_id: int, session: str) -> int:
    """Inside the tap's transaction: a prompt for the kiosk at this reader."""
    conn.execute("UPDATE checkin_prompts SET state = 'expired' WHERE reader = ? AND state = 'awaiting'", (reader,))
    cur = conn.execute(
        "INSERT INTO checkin_prompts (reader, gate, person_id, session, created, state) VALUES (?, ?, ?, ?, ?, 'awaiting')",
        (reader, gate, person_id, session, utc_timestamp(site.clock.now())))
    prompt_id = int(cur.lastrowid or 0)
    site.journal.append(conn, "checkin.started", {"prompt": prompt_id, "gate": gate, "person_id": person_id, "session": session})
    return prompt_id


def supersede_prompts(conn: Any, reader: str, person_id: int | None) -> None:
    """Inside a tap's transaction: someone else tapped at this reader, so a check-in waiting
    there for another person gives way (the kiosk shows the latest tap; the expert taps again)."""
    conn.execute("UPDATE checkin_prompts SET state = 'expired' WHERE reader = ? AND state = 'awaiting' "
                 "AND person_id IS NOT ?", (reader, person_id))


def abandon_prompt(site: Site, prompt_id: int, *, reader: str) -> None:
    """The kiosk's check-in screen timed out with nobody at it: the prompt ends, journaled."""
    with site.store.transaction() as conn:
        changed = conn.execute("UPDATE checkin_prompts SET state = 'expired' WHERE id = ? AND reader = ? AND state = 'awaiting'",
                               (prompt_id, reader)).rowcount
        if changed:
            site.journal.append(conn, "checkin.timed_out", {"prompt": prompt_id, "reader": reader})


def current_prompt(site: Site, reader: str) -> Prompt | None:
    since = utc_timestamp(site.clock.now() - PROMPT_TTL)
    row = site.store.reader().execute(
        """SELECT p.id, p.reader, p.gate, p.person_id, p.session, pe.name_masked, s.section_name
           FROM checkin_prompts p JOIN people pe ON pe.id = p.person_id JOIN sessions s ON s.id = p.session
           WHERE p.reader = ? AND p.state = 'awaiting' AND p.created >= ? ORDER BY p.id DESC LIMIT 1""",
        (reader, since)).fetchone()
    if row is None:
        return None
    bidders = [{"id": b[0], "name": b[1]} for b in site.store.reader().execute(
        "SELECT bidder, name FROM session_bidders WHERE session = ? ORDER BY bidder", (row[4],))]
    return Prompt(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bidders)


def last_decision(site: Site, reader: str, within_s: float = 15.0) -> dict[str, Any] | None:
    """The latest access decision at this reader's gate, if recent (for the kiosk screen)."""
    gate = site.store.reader().execute("SELECT id FROM gates WHERE reader = ?", (reader,)).fetchone()
    if gate is None:
        return None
    since = utc_timestamp(site.clock.now() - timedelta(seconds=within_s))
    for seq, ts, body in site.store.reader().execute(
            "SELECT seq, ts, body FROM journal WHERE kind = 'gate.decision' AND ts >= ? ORDER BY seq DESC LIMIT 20", (since,)):
        payload = json.loads(body)["payload"]
        if payload["gate"] == gate[0]:
            age_s = (site.clock.now() - datetime.fromisoformat(ts.replace("Z", "+00:00"))).total_seconds()
            # Whose result it is, masked: the name (or, for a card nobody registered, the masked
            # number) and the role on the session's roster.
            person_id, who, role = payload.get("person_id"), payload.get("id_masked") or "", None
            if person_id is not None:
                row = site.store.reader().execute("SELECT name_masked FROM people WHERE id = ?", (person_id,)).fetchone()
                who = row[0] if row and row[0] else who
                found = site.store.reader().execute("SELECT role FROM roster WHERE session = ? AND person_id = ?",
                                                    (payload.get("session"), person_id)).fetchone()
                role = found[0] if found else None
            return {"seq": seq, "ts": ts, "age_s": round(age_s, 3), "allow": payload["allow"], "reason": payload["reason"],
                    "who": who, "role": role}
    return None


def _free_lock(conn: Any, banks: list[Any], day: str) -> tuple[str, int] | None:
    """A lock not assigned to anyone of today's sessions (venue date)."""
    taken = {(b, n) for b, n in conn.execute(
        """SELECT la.bank, la.lock FROM locker_assignments la JOIN sessions s ON s.id = la.session
           WHERE la.released IS NULL AND s.day = ?""", (day,))}
    for bank in banks:
        locks = 16 if bank.protocol == "kerong" else bank.locks
        for lock in range(1, locks + 1):
            if (bank.name, lock) not in taken:
                return bank.name, lock
    return None


def complete(site: Site, prompt_id: int, *, reader: str, signature_png: bytes, conflicts: list[str]) -> dict[str, Any]:
    """The expert signed (and declared conflicts, if any). Returns what the kiosk shows."""
    if len(signature_png) < 100 or not signature_png.startswith(b"\x89PNG"):
        raise CheckinError("a signature is required")
    now = site.clock.now()
    with site.store.transaction() as conn:
        row = conn.execute(
            "SELECT gate, person_id, session, created, state FROM checkin_prompts WHERE id = ? AND reader = ?",
            (prompt_id, reader)).fetchone()
        if row is None or row[4] != "awaiting":
            raise CheckinError("this check-in is no longer open")
        gate_id, person_id, session, created, _ = row
        if datetime.fromisoformat(created.replace("Z", "+00:00")) < now - PROMPT_TTL:
            conn.execute("UPDATE checkin_prompts SET state = 'expired' WHERE id = ?", (prompt_id,))
            raise CheckinError("this check-in has expired: tap the card again")
        bidders = {b for (b,) in conn.execute("SELECT bidder FROM session_bidders WHERE session = ?", (session,))}
        unknown = set(conflicts) - bidders
        if unknown:
            raise CheckinError(f"unknown bidders {sorted(unknown)}")
        sealed = site.personal.seal("person.signature", signature_png)
        signature_hash = hashlib.sha256(signature_png).hexdigest()
        if conflicts:
            conn.execute(
                """INSERT INTO checkins (session, person_id, conflict_declared, signature_sealed) VALUES (?, ?, 1, ?)
                   ON CONFLICT(session, person_id) DO UPDATE SET conflict_declared = 1, signature_sealed = excluded.signature_sealed""",
                (session, person_id, sealed))
            conn.execute("UPDATE checkin_prompts SET state = 'refused' WHERE id = ?", (prompt_id,))
            site.journal.append(conn, "checkin.conflict_declared", {"prompt": prompt_id, "session": session, "person_id": person_id,
                                                                     "bidders": sorted(conflicts), "signature_sha256": signature_hash})
            site.journal.append(conn, "replacement_draw.requested", {"session": session, "replaces_person_id": person_id,
                                                                      "reason": "recusal", "requested_by": "kiosk"})
            return {"outcome": "conflict"}
        lock = _free_lock(conn, site.config.devices.locker, now.astimezone(VENUE_TZ).date().isoformat())
        if lock is None:
            raise CheckinError("no free locker: please ask the staff")
        code = f"{secrets.randbelow(10**6):06d}"
        code_hash = site.personal.token("locker.code", f"{lock[0]}/{lock[1]}/{code}")
        conn.execute(
            """INSERT INTO checkins (session, person_id, commitment_signed, locker, signature_sealed) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(session, person_id) DO UPDATE SET commitment_signed = excluded.commitment_signed,
                   locker = excluded.locker, signature_sealed = excluded.signature_sealed""",
            (session, person_id, utc_timestamp(now), f"{lock[0]}/{lock[1]}", sealed))
        conn.execute(
            "INSERT OR REPLACE INTO locker_assignments (session, person_id, bank, lock, code_hash, assigned) VALUES (?, ?, ?, ?, ?, ?)",
            (session, person_id, lock[0], lock[1], code_hash, utc_timestamp(now)))
        conn.execute("UPDATE checkin_prompts SET state = 'completed' WHERE id = ?", (prompt_id,))
        site.journal.append(conn, "checkin.commitment_signed", {"prompt": prompt_id, "session": session, "person_id": person_id,
                                                                 "signature_sha256": signature_hash,
                                                                 "commitment_sha256": hashlib.sha256(commitment_text(site).encode()).hexdigest()})
        site.journal.append(conn, "locker.assigned", {"session": session, "person_id": person_id, "bank": lock[0], "lock": lock[1],
                                                       "gate": gate_id})
    queue_command(site, "locker.open", lock[0], {"lock": lock[1]}, requested_by=f"kiosk:{reader}")
    return {"outcome": "signed", "locker_bank": lock[0], "locker": lock[1], "code": code}

