"""Experts' fees (评标专家劳务报酬) and the fee sheet per session.

The time paid runs from the expert's sign-in (the commitment signed at the gate kiosk) to the
submission of their evaluation report (their signature on it, appliance.evaluation.report) — for
an expert who signs none, to the end of the session (completed or terminated). Time while a session is suspended is
paid: the experts are held on site.

The rule (``siteops.fees``, amounts in whole yuan, percentages as integers; money is computed in
fen, integers only):

* ``base_fee`` covers up to ``base_hours``; each hour beyond costs ``extra_hour_fee``, counted by
  ``rounding``: ``started_hour`` (a started hour counts whole), ``half_hour`` (a started half hour
  counts half), ``completed_hour`` (only completed hours);
* on a holiday (``holidays``, or weekends when ``weekends_are_holidays``) the fee is
  ``holiday_multiplier_pct`` percent of the normal fee;
* a terminated session pays ``aborted_pct`` percent of the fee for the time worked;
* an expert who declared a conflict and withdrew is paid ``recusal_fee`` (travel), nothing more;
* no sign-in, no fee;
* ``daily_cap``: one expert's fees of one venue day, all sessions together, never exceed it —
  the excess is cut from the sessions signed into last.

Bank card numbers (for paying the fee) are sealed (AES-256-GCM, purpose ``person.bank_card``)
and shown masked (first 6 and last 4 digits, as bank receipts do); only the masked form is
journaled. A fee sheet is finalized by staff: the lines, the total and the rule are journaled
(``fees.sheet``) so the center can check the payment against the journal.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance.canonical import canonical_bytes
from appliance.config import FeeRuleConfig
from appliance.personal import mask_bank_card
from appliance.site import Site

VENUE_TZ = ZoneInfo("Asia/Shanghai")
PAID_ROLES = ("expert",)


class FeeError(ValueError):
    pass


@dataclass(frozen=True)
class FeeInput:
    person_id: int
    session: str
    outcome: str  # completed | terminated | recusal | no_show | pending
    signed_in: datetime | None = None
    ended: datetime | None = None
    holiday: bool = False


@dataclass(frozen=True)
class FeeLine:
    person_id: int
    session: str
    outcome: str
    minutes: int = 0
    extra_half_hours: int = 0  # billed time beyond the base, in half hours
    holiday: bool = False
    fee_fen: int | None = None  # None while the session is still running
    capped_fen: int = 0  # cut by the daily cap


def extra_half_hours(minutes_over: int, rounding: str) -> int:
    if minutes_over <= 0:
        return 0
    if rounding == "started_hour":
        return 2 * -(-minutes_over // 60)
    if rounding == "half_hour":
        return -(-minutes_over // 30)
    return 2 * (minutes_over // 60)


def fee_for(rule: FeeRuleConfig, item: FeeInput) -> FeeLine:
    """One expert, one session, before the daily cap."""
    line = FeeLine(item.person_id, item.session, item.outcome, holiday=item.holiday)
    if item.outcome == "recusal":
        return replace(line, fee_fen=rule.recusal_fee * 100)
    if item.outcome == "pending":
        return line
    if item.outcome == "no_show" or item.signed_in is None:
        return replace(line, outcome="no_show", fee_fen=0)
    if item.ended is None:
        return replace(line, outcome="pending")
    minutes = max(0, int((item.ended - item.signed_in).total_seconds() // 60))
    halves = extra_half_hours(minutes - rule.base_hours * 60, rule.rounding)
    fen = rule.base_fee * 100 + rule.extra_hour_fee * 100 * halves // 2
    if item.holiday:
        fen = fen * rule.holiday_multiplier_pct // 100
    if item.outcome == "terminated":
        fen = fen * rule.aborted_pct // 100
    return replace(line, minutes=minutes, extra_half_hours=halves, fee_fen=fen)


def apply_daily_cap(rule: FeeRuleConfig, lines: list[FeeLine]) -> list[FeeLine]:
    """``lines``: one expert's lines of one day in sign-in order."""
    if rule.daily_cap <= 0:
        return lines
    left = rule.daily_cap * 100
    out = []
    for line in lines:
        if line.fee_fen is None:
            out.append(line)
            continue
        paid = min(line.fee_fen, left)
        left -= paid
        out.append(replace(line, fee_fen=paid, capped_fen=line.fee_fen - paid))
    return out


def is_holiday(rule: FeeRuleConfig, day: date) -> bool:
    return day in rule.holidays or (rule.weekends_are_holidays and day.weekday() >= 5)


def _ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def day_fees(site: Site, day: str) -> list[FeeLine]:
    """Every paid roster entry of the day's sessions, with the daily cap applied per expert."""
    rule = site.config.siteops.fees
    holiday = is_holiday(rule, date.fromisoformat(day))
    rows = site.store.reader().execute(
        f"""SELECT r.person_id, s.id, s.state, s.ended, c.commitment_signed, c.conflict_declared, c.report_submitted
            FROM roster r JOIN sessions s ON s.id = r.session
            LEFT JOIN checkins c ON c.session = r.session AND c.person_id = r.person_id
            WHERE s.day = ? AND r.venue IS NULL AND r.role IN ({",".join("?" * len(PAID_ROLES))})
            ORDER BY r.person_id, COALESCE(c.commitment_signed, s.start), s.id""", (day, *PAID_ROLES)).fetchall()
    by_person: dict[int, list[FeeLine]] = {}
    for person_id, session, state, ended, signed, conflict, submitted in rows:
        if conflict:
            outcome = "recusal"
        elif signed is None:
            outcome = "no_show" if state in ("in_progress", "suspended", "completed", "terminated") else "pending"
        elif submitted is None and state not in ("completed", "terminated"):
            outcome = "pending"
        else:
            outcome = "terminated" if state == "terminated" else "completed"
        item = FeeInput(person_id, session, outcome, _ts(signed), _ts(submitted) or _ts(ended), holiday)
        by_person.setdefault(person_id, []).append(fee_for(rule, item))
    return [line for lines in by_person.values() for line in apply_daily_cap(rule, lines)]


def fee_sheet(site: Site, session: str) -> dict[str, Any]:
    row = site.store.reader().execute("SELECT day, section_code, section_name, state FROM sessions WHERE id = ?",
                                      (session,)).fetchone()
    if row is None:
        raise FeeError(f"no session {session!r}")
    people = {r[0]: (r[1], r[2]) for r in site.store.reader().execute(
        "SELECT p.id, p.name_masked, p.bank_card_masked FROM people p JOIN roster r ON r.person_id = p.id WHERE r.session = ?",
        (session,))}
    lines = [line for line in day_fees(site, row[0]) if line.session == session]
    computed = [line.fee_fen for line in lines if line.fee_fen is not None]
    return {
        "session": session, "day": row[0], "section_code": row[1], "section_name": row[2], "state": row[3],
        "complete": all(line.fee_fen is not None for line in lines),
        "total_fen": sum(computed),
        "lines": [{**asdict(line), "name_masked": people.get(line.person_id, ("", None))[0],
                   "bank_card_masked": people.get(line.person_id, ("", None))[1]} for line in lines],
    }


def confirmed_sheet(site: Site, session: str) -> dict[str, Any] | None:
    """The confirmed (locked) sheet as it was journaled, with the names and who confirmed it
    when; None while it is not confirmed. What a printed or exported sheet shows once confirmed:
    the record, never a recomputation (a card changed later does not change it)."""
    conn = site.store.reader()
    row = conn.execute("SELECT seq, confirmed, by FROM fee_sheets WHERE session = ?", (session,)).fetchone()
    if row is None:
        return None
    record = site.journal.records(since=row[0] - 1, kind="fees.sheet", limit=1)[0].payload
    names = dict(conn.execute("SELECT id, name_masked FROM people WHERE id IN (%s)" % ",".join("?" * len(record["lines"])),
                              [line["person_id"] for line in record["lines"]]).fetchall())
    return {**record, "seq": row[0], "confirmed": row[1], "confirmed_by": row[2],
            "lines": [{**line, "name_masked": names.get(line["person_id"], "")} for line in record["lines"]]}


def finalize_sheet(site: Site, session: str, *, by: str) -> dict[str, Any]:
    """Journal the sheet (no names, masked cards) with the rule it was computed by; once only:
    a confirmed sheet is locked (``FeeError`` "confirmed already")."""
    if site.store.reader().execute("SELECT 1 FROM fee_sheets WHERE session = ?", (session,)).fetchone():
        raise FeeError("the fee sheet is confirmed already: it is locked")
    sheet = fee_sheet(site, session)
    if not sheet["complete"]:
        raise FeeError("the session is still running: fees are final when it has ended")
    missing = [line["person_id"] for line in sheet["lines"] if line["fee_fen"] and not line["bank_card_masked"]]
    if missing:
        raise FeeError(f"bank card missing for {len(missing)} expert(s)")
    rule = site.config.siteops.fees.model_dump(mode="json")
    record = {"session": session, "day": sheet["day"], "total_fen": sheet["total_fen"], "rule": rule, "by": by,
              "lines": [{k: line[k] for k in ("person_id", "outcome", "minutes", "extra_half_hours", "holiday", "fee_fen",
                                              "capped_fen", "bank_card_masked")} for line in sheet["lines"]]}
    record["sha256"] = hashlib.sha256(canonical_bytes(record)).hexdigest()
    with site.store.transaction() as conn:
        if conn.execute("SELECT 1 FROM fee_sheets WHERE session = ?", (session,)).fetchone():
            raise FeeError("the fee sheet is confirmed already: it is locked")  # confirmed meanwhile
        entry = site.journal.append(conn, "fees.sheet", record)
        conn.execute("INSERT INTO fee_sheets (session, seq, confirmed, by, sha256, total_fen) VALUES (?, ?, ?, ?, ?, ?)",
                     (session, entry.seq, entry.ts, by, record["sha256"], record["total_fen"]))
    return record


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def set_bank_card(site: Site, person_id: int, number: str, *, by: str) -> str:
    """Seal an expert's bank card number; returns the masked form. UnionPay debit cards have
    16–19 digits with a Luhn check digit (ISO/IEC 7812)."""
    digits = "".join(ch for ch in number if not ch.isspace() and ch != "-")
    if not digits.isdigit() or not 16 <= len(digits) <= 19:
        raise FeeError("a bank card number has 16 to 19 digits")
    if not luhn_ok(digits):
        raise FeeError("the bank card number's check digit is wrong: check the digits")
    masked = mask_bank_card(digits)
    with site.store.transaction() as conn:
        changed = conn.execute("UPDATE people SET bank_card_sealed = ?, bank_card_masked = ? WHERE id = ?",
                               (site.personal.seal("person.bank_card", digits), masked, person_id)).rowcount
        if changed != 1:
            raise FeeError("no such person")
        site.journal.append(conn, "person.bank_card_set", {"person_id": person_id, "bank_card_masked": masked, "by": by})
    return masked


def yuan(fen: int | None) -> str:
    return "" if fen is None else f"{fen // 100}.{fen % 100:02d}"


def quote(rule: FeeRuleConfig, minutes: int, *, holiday: bool = False, terminated: bool = False) -> dict[str, Any]:
    """What the rule pays one expert for one session of ``minutes`` (before the daily cap, which
    is shown beside it), so a venue can check its rule against its published fee notice."""
    if not 0 <= minutes <= 24 * 60:
        raise FeeError("--hours: from 0 to 24")
    start = datetime(2026, 1, 5, 8, 0, tzinfo=VENUE_TZ)
    from datetime import timedelta

    line = fee_for(rule, FeeInput(0, "quote", "terminated" if terminated else "completed", start,
                                  start + timedelta(minutes=minutes), holiday))
    assert line.fee_fen is not None
    capped = min(line.fee_fen, rule.daily_cap * 100) if rule.daily_cap > 0 else line.fee_fen
    return {"minutes": minutes, "holiday": holiday, "terminated": terminated,
            "extra_hours_billed": f"{line.extra_half_hours / 2:g}", "fee_yuan": f"{line.fee_fen / 100:.2f}",
            "after_daily_cap_yuan": f"{capped / 100:.2f}", "rule": rule.model_dump(mode="json")}
