"""Who sits on the committee while it works. A committee has at least the plan's number of
members, at least five, and an odd number (招标投标法 第三十七条: 评标委员会……成员人数为五人以上
单数; the day plan's ``committee_size`` sets more where the rules require, e.g. seven for large
government procurements, 财政部令第87号 第四十七条). `committee.start` refuses a committee short of
that; here a member who leaves while it works (a conflict found in the bid files, illness) is
recorded, the committee's work stops (every step refuses with ``committee_incomplete``), a
replacement draw is requested (补抽, 001 annex 3 第二十二条), and the replacement — on the
roster through the center's newer plan — is seated and signs in; the work goes on."""

from __future__ import annotations

from typing import Any

from appliance.evaluation.base import MEMBER_ROLES, EvaluationError, _members, _need, _now, _required, seating_problem
from appliance.personal import redact_personal_data
from appliance.site import Site


def eligible_roster(conn: Any, session: str) -> list[tuple[int, str]]:
    """(person, role) of the roster's committee members who may sit: not recused at check-in,
    not a no-show, not revoked, blacklisted or barred by the center."""
    return [tuple(r) for r in conn.execute(
        f"""SELECT r.person_id, r.role FROM roster r JOIN people p ON p.id = r.person_id
            WHERE r.session = ? AND r.role IN ({','.join('?' * len(MEMBER_ROLES))})
              AND p.revoked = 0 AND p.blacklisted = 0
              AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.session = r.session AND c.person_id = r.person_id
                              AND c.conflict_declared = 1)
              AND NOT EXISTS (SELECT 1 FROM no_shows n WHERE n.session = r.session AND n.person_id = r.person_id)
              AND NOT EXISTS (SELECT 1 FROM center_bars b WHERE b.token = p.id_token AND b.lifted IS NULL)
            ORDER BY r.rowid""",
        (session, *MEMBER_ROLES))]


def before_start(conn: Any, session: str) -> dict[str, Any]:
    """Before the evaluation starts: how many may sit, how many are required, what stops it,
    and who is missing and why (no-show, recused at check-in, withdrawn by the center), with
    whether a replacement draw has been requested."""
    planned = conn.execute("SELECT committee_size FROM sessions WHERE id = ?", (session,)).fetchone()
    required = max((planned[0] if planned else 0) or 0, 5)
    eligible = eligible_roster(conn, session)
    seated = {p for p, _ in eligible}
    missing = []
    for row in conn.execute(
            f"""SELECT r.person_id, r.role, p.name_masked, p.revoked OR p.blacklisted AS barred,
                       (SELECT c.conflict_declared FROM checkins c WHERE c.session = r.session AND c.person_id = r.person_id) AS recused,
                       (SELECT n.replacement_requested FROM no_shows n WHERE n.session = r.session AND n.person_id = r.person_id) AS requested,
                       EXISTS (SELECT 1 FROM no_shows n WHERE n.session = r.session AND n.person_id = r.person_id) AS no_show
                FROM roster r JOIN people p ON p.id = r.person_id
                WHERE r.session = ? AND r.role IN ({','.join('?' * len(MEMBER_ROLES))}) ORDER BY r.person_id""",
            (session, *MEMBER_ROLES)):
        r = dict(zip(("person_id", "role", "name_masked", "barred", "recused", "requested", "no_show"), row))
        if r["person_id"] in seated:
            continue
        why = "recused" if r["recused"] else "no_show" if r["no_show"] else "withdrawn"
        missing.append({"person_id": r["person_id"], "role": r["role"], "name_masked": r["name_masked"], "why": why,
                        "replacement_requested": bool(r["requested"]) or why == "recused"})
    return {"sitting": len(eligible), "required": required, "problem": seating_problem(len(eligible), required),
            "missing": missing}


def seating(conn: Any, session: str) -> dict[str, Any]:
    """The committee's seats for the console: sitting members, those who left, the required
    number, what stops it (None when it may work) and the roster's candidates to seat."""
    sitting = _members(conn, session)
    required = _required(conn, session)
    left = [dict(zip(("person_id", "role", "left", "left_reason", "name_masked"), r)) for r in conn.execute(
        """SELECT m.person_id, m.role, m.left, m.left_reason, p.name_masked FROM eval_members m JOIN people p ON p.id = m.person_id
           WHERE m.session = ? AND m.left IS NOT NULL ORDER BY m.left""", (session,))]
    return {"sitting": len(sitting), "required": max(required, 5), "problem": seating_problem(len(sitting), required),
            "left": left, "candidates": candidates(conn, session)}


def candidates(conn: Any, session: str) -> list[dict[str, Any]]:
    """Committee members on the roster not seated: replacements the center's newer plan added."""
    return [dict(zip(("person_id", "role", "name_masked"), r)) for r in conn.execute(
        f"""SELECT r.person_id, r.role, p.name_masked FROM roster r JOIN people p ON p.id = r.person_id
            WHERE r.session = ? AND r.role IN ({','.join('?' * len(MEMBER_ROLES))}) AND p.revoked = 0 AND p.blacklisted = 0
              AND NOT EXISTS (SELECT 1 FROM eval_members m WHERE m.session = r.session AND m.person_id = r.person_id)
              AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.session = r.session AND c.person_id = r.person_id
                              AND c.conflict_declared = 1)
              AND NOT EXISTS (SELECT 1 FROM no_shows n WHERE n.session = r.session AND n.person_id = r.person_id)
            ORDER BY r.person_id""", (session, *MEMBER_ROLES))]


def withdraw(site: Site, session: str, person_id: int, *, reason: str, by: str) -> None:
    """A member leaves the committee (``reason``: what happened, e.g. a conflict found in the bid
    files); a replacement draw is requested at once. The committee's work stops until one is
    seated."""
    reason = redact_personal_data(reason).strip()[:500]  # as typed, any ID or card number masked
    if not reason:
        raise EvaluationError("reason_required", "say why the member leaves the committee")
    with site.store.transaction() as conn:
        _need(conn, session, "signing_in", "electing", "evaluating", "submitted", "opinions", seated=False)
        changed = conn.execute("UPDATE eval_members SET left = ?, left_reason = ? WHERE session = ? AND person_id = ? "
                               "AND left IS NULL", (_now(site), reason, session, person_id)).rowcount
        if changed != 1:
            raise EvaluationError("not_member", "not a sitting member of this committee")
        conn.execute("DELETE FROM eval_votes WHERE session = ? AND voter = ?", (session, person_id))
        site.journal.append(conn, "evaluation.member_left", {"session": session, "person_id": person_id, "reason": reason,
                                                             "by": by, "sitting": len(_members(conn, session))})
        site.journal.append(conn, "replacement_draw.requested", {"session": session, "replaces_person_id": person_id,
                                                                 "reason": "left_committee", "requested_by": by})


def seat(site: Site, session: str, person_id: int, *, by: str) -> None:
    """Seat a replacement from the roster; they sign in at a terminal like the others."""
    with site.store.transaction() as conn:
        _need(conn, session, "signing_in", "electing", "evaluating", "submitted", "opinions", seated=False)
        role = next((c["role"] for c in candidates(conn, session) if c["person_id"] == person_id), None)
        if role is None:
            raise EvaluationError("not_candidate", "not on the session's roster as a committee member, or already seated")
        conn.execute("INSERT INTO eval_members (session, person_id, role) VALUES (?, ?, ?)", (session, person_id, role))
        site.journal.append(conn, "evaluation.member_seated", {"session": session, "person_id": person_id, "role": role,
                                                               "by": by, "sitting": len(_members(conn, session))})
