"""The bid opening (开标) of an opening session: attendance, decryption, the opening record table,
the bidders' confirmations, the supervisor's sign-off, and collusion signals (docs/evaluation.md).

* ``open_bids``: each bidder's attendance (on site or remote), the decryption status of its bid
  (``decrypted``, ``failed``, ``withdrawn``) and the record's fields (price, duration, project
  manager … as the template names them), plus, when the plan supplies it, the bid files'
  metadata. Collusion signals are computed at once.
* ``confirm``: a bidder's representative confirms the record (or declines, with a reason).
* ``sign_off``: a supervisor closes the record once every attending bidder has answered; its
  SHA-256 is journaled and the evaluation takes its prices from it (`bids_for_evaluation`).

Objections raised at the opening and their answers go in the objections register (the console's
registers), which journals them.

**Collusion signals** (``collusion_signals``, pure): bidders whose bid files share an identifying
value — the file creation code (文件创建标识码), the machine code or MAC address of the computer that
made them, the pricing software's lock number (计价软件加密锁号), the deposit account, the IP
address they were uploaded from. Each shared value is a signal with its evidence, flagged to the
supervisors (an alarm) and journaled: a signal to look into, not an accusation.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from appliance.canonical import canonical_bytes
from appliance.clock import utc_timestamp
from appliance.evaluation.scoring import RuleError, dec
from appliance.personal import redact_personal_data
from appliance.site import Site

DECRYPTION = ("decrypted", "failed", "withdrawn")
ATTENDANCE = ("onsite", "remote", "absent")
METADATA_FIELDS = {
    "file_creation_code": "文件创建标识码",
    "machine_code": "机器码",
    "mac": "网卡MAC地址",
    "lock_number": "计价软件加密锁号",
    "deposit_account": "投标保证金缴纳账户",
    "ip": "投标文件上传IP地址",
}


class OpeningError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def collusion_signals(bids: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups of two or more bidders sharing a metadata value, per field: [{field, label, value,
    bidders}], in field order then value order. Empty values are not compared."""
    out = []
    for field, label in METADATA_FIELDS.items():
        by_value: dict[str, list[str]] = {}
        for b in bids:
            value = str((b.get("metadata") or {}).get(field) or "").strip()
            if field == "mac":
                value = value.upper().replace("-", ":")
            if value:
                by_value.setdefault(value, []).append(str(b["bidder"]))
        for value, bidders in sorted(by_value.items()):
            if len(bidders) > 1:
                out.append({"field": field, "label": label, "value": value, "bidders": sorted(bidders)})
    return out


def open_bids(site: Site, session: str, bids: list[dict[str, Any]], *, by: str) -> dict[str, Any]:
    """Record the opening of an opening session's bids (see the module's doc)."""
    from appliance.siteops.alarms import raise_alarm

    with site.store.transaction() as conn:
        row = conn.execute("SELECT kind FROM sessions WHERE id = ?", (session,)).fetchone()
        if row is None or row[0] != "opening":
            raise OpeningError("not_opening", f"{session} is not an opening session of the plan")
        if conn.execute("SELECT 1 FROM openings WHERE session = ?", (session,)).fetchone():
            raise OpeningError("exists", "this opening is recorded already")
        known = {r[0]: r[1] for r in conn.execute("SELECT bidder, name FROM session_bidders WHERE session = ?", (session,))}
        if {str(b.get("bidder")) for b in bids} != set(known):
            raise OpeningError("bad_bids", f"the record must list the session's bidders {sorted(known)}")
        rows = []
        for b in bids:
            bidder = str(b["bidder"])
            attendance, decryption = b.get("attendance", "onsite"), b.get("decryption", "decrypted")
            if attendance not in ATTENDANCE or decryption not in DECRYPTION:
                raise OpeningError("bad_value", f"{bidder}: attendance one of {ATTENDANCE}, decryption one of {DECRYPTION}")
            # The template's columns as name/value pairs (canonical JSON keys are ASCII; labels are not).
            # Typed by staff: ID and bank card numbers masked (the signals below compare the values as typed).
            fields = [{"name": redact_personal_data(str(k)), "value": redact_personal_data(str(v))}
                      for k, v in (b.get("fields") or {}).items()]
            price = None
            if decryption == "decrypted":
                try:
                    price = str(dec(b.get("price"), f"{bidder}.price"))
                except RuleError as exc:
                    raise OpeningError("bad_value", str(exc)) from exc
            rows.append({"bidder": bidder, "name": known[bidder], "attendance": attendance, "decryption": decryption,
                         "price": price, "fields": fields})
        record = {"session": session, "rows": rows}
        digest = hashlib.sha256(canonical_bytes(record)).hexdigest()
        conn.execute("INSERT INTO openings (session, record, record_sha256, state, opened, opened_by) VALUES (?, ?, ?, 'open', ?, ?)",
                     (session, json.dumps(record, ensure_ascii=False), digest, utc_timestamp(site.clock.now()), by))
        for r in rows:
            conn.execute("INSERT INTO opening_bidders (session, bidder, attendance) VALUES (?, ?, ?)",
                         (session, r["bidder"], r["attendance"]))
        site.journal.append(conn, "opening.recorded", {**record, "sha256": digest, "by": by})
        signals = [{**s, "value": redact_personal_data(str(s["value"]))} for s in collusion_signals(bids)]
        for s in signals:
            entry = site.journal.append(conn, "opening.collusion_signal", {"session": session, **s})
            raise_alarm(site, conn, "collusion_signal", seq=entry.seq, session=session,
                        detail={"field": s["field"], "label": s["label"], "bidders": s["bidders"]})
        return {"sha256": digest, "signals": signals}


def confirm(site: Site, session: str, bidder: str, *, agrees: bool, by: str, reason: str = "", conn: Any = None) -> None:
    """The bidder's representative confirms the record (or declines it, saying why); in the
    caller's transaction when given one (the console enters an objection in its register too)."""
    with site.store.within(conn) as conn:
        row = conn.execute("SELECT o.state, b.attendance, b.answered FROM openings o JOIN opening_bidders b ON b.session = o.session "
                           "WHERE o.session = ? AND b.bidder = ?", (session, bidder)).fetchone()
        if row is None:
            raise OpeningError("unknown", "no such opening or bidder")
        if row[0] != "open":
            raise OpeningError("closed", "the record is signed off")
        if row[1] == "absent":
            raise OpeningError("absent", "an absent bidder cannot confirm (it is deemed to accept the record)")
        reason = redact_personal_data(reason).strip()[:500]
        if not agrees and not reason:
            raise OpeningError("reason_needed", "say why the record is not accepted")
        conn.execute("UPDATE opening_bidders SET answered = ?, agrees = ?, reason = ?, answered_by = ? WHERE session = ? AND bidder = ?",
                     (utc_timestamp(site.clock.now()), int(agrees), reason, by, session, bidder))
        site.journal.append(conn, "opening.confirmed", {"session": session, "bidder": bidder, "agrees": agrees,
                                                        "reason": reason, "by": by})


def sign_off(site: Site, session: str, *, supervisor: str) -> str:
    with site.store.transaction() as conn:
        row = conn.execute("SELECT state, record_sha256 FROM openings WHERE session = ?", (session,)).fetchone()
        if row is None or row[0] != "open":
            raise OpeningError("not_open", "no open record to sign off")
        waiting = [r[0] for r in conn.execute("SELECT bidder FROM opening_bidders WHERE session = ? AND attendance != 'absent' "
                                              "AND answered IS NULL", (session,))]
        if waiting:
            raise OpeningError("waiting", f"bidders who have not answered: {', '.join(waiting)}")
        conn.execute("UPDATE openings SET state = 'signed_off', signed_off_by = ?, signed_off = ? WHERE session = ?",
                     (supervisor, utc_timestamp(site.clock.now()), session))
        site.journal.append(conn, "opening.signed_off", {"session": session, "record_sha256": row[1], "supervisor": supervisor})
        return str(row[1])


def bids_for_evaluation(site: Site, section_code: str) -> list[dict[str, Any]]:
    """The signed-off opening record of a tender section as the evaluation's bids: a bid whose
    decryption failed or that was withdrawn is not valid."""
    row = site.store.reader().execute(
        """SELECT o.record FROM openings o JOIN sessions s ON s.id = o.session
           WHERE s.section_code = ? AND o.state = 'signed_off' ORDER BY o.signed_off DESC LIMIT 1""", (section_code,)).fetchone()
    if row is None:
        raise OpeningError("no_record", f"no signed-off opening record for section {section_code}")
    out = []
    for r in json.loads(row[0])["rows"]:
        ok = r["decryption"] == "decrypted"
        out.append({"bidder": r["bidder"], "price": r["price"] if ok else "1", "valid": ok,
                    **({} if ok else {"invalid_reason": f"bid {r['decryption']} at opening"})})
    return out
