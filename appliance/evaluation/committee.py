"""The evaluation committee's work on the appliance (000 §三(六)–(八); docs/evaluation.md).

One evaluation per evaluation session, driven by a **template** (from the center's feed or a
file): its steps in order — ``pass_fail`` (资格审查, 符合性审查: each member marks each bidder
pass or fail per criterion, a fail with a reason), ``scoring`` (详细评审: points per criterion
within its maximum) and ``price`` (the scoring engine) — and the scoring rule that combines them.

The states, each change journaled in the transaction that makes it::

    signing_in → electing → evaluating → submitted → opinions → finalized

* **signing in**: every member (experts, and the tenderer's representative when the roster has
  one) signs in at the room's terminal and confirms having read the project information;
* **electing**: the chair by vote; a candidate with more than half of the members' votes is
  elected; otherwise (a tie or a split) the round is journaled and a new round begins. Whether
  the tenderer's representative may chair is a rule of the template;
* **evaluating**: steps in order; each member marks and submits the open step; a score beyond
  the template's deviation thresholds needs a written explanation before it can be submitted
  (财政部令第87号 第六十四条: 评分畸高、畸低); the chair confirms the step (pass/fail by majority
  of members), and the next step opens. Reopening a confirmed step needs the chair's request and
  a supervisor's approval;
* **submitted** → **opinions**: the chair asks the members for their opinions; each may revise a
  score (with a reason, journaled with the old and new value) and then agrees;
* **finalized**: the chair confirms; the engine aggregates and ranks; the results are journaled.

Clarifications: the chair sends a question to a bidder; a broadcast call asks the bidder's
representative to the clarification room; the answer is recorded. All functions take the acting
person and check their role; a refusal raises `EvaluationError` with a reason a screen can show.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from appliance.evaluation import scoring
from appliance.evaluation.base import (  # noqa: F401  (shared with darkbid, report and terminal)
    MEMBER_ROLES,
    MIN_COMMITTEE,
    STEP_KINDS,
    EvaluationError,
    _chair,
    _loads,
    _member,
    _members,
    _need,
    _now,
    _state,
    _step,
    _template,
    seating_problem,
)
from appliance.evaluation.clarifications import ask_clarification, clarification_visit, record_answer  # noqa: F401
from appliance.evaluation.seating import eligible_roster
from appliance.evaluation.templates import TEMPLATE_FORMAT, check_template, load_template, template_by_id, templates  # noqa: F401
from appliance.personal import redact_personal_data
from appliance.site import Site

# -- start, sign-in, chair --------------------------------------------------------------------

def start(site: Site, session: str, template: dict[str, Any], bids: list[dict[str, Any]], *, by: str) -> None:
    """Open the evaluation of an evaluation session: members from its roster, bidders with
    their prices from the opening record (``bids``: bidder, price, valid, invalid_reason)."""
    check_template(template)
    with site.store.transaction() as conn:
        row = conn.execute("SELECT kind FROM sessions WHERE id = ?", (session,)).fetchone()
        if row is None or row[0] != "evaluation":
            raise EvaluationError("not_evaluation", f"{session} is not an evaluation session of the plan")
        if conn.execute("SELECT 1 FROM evaluations WHERE session = ?", (session,)).fetchone():
            raise EvaluationError("exists", f"the evaluation of {session} has begun already")
        # The committee: the roster's experts and tenderer's representative, less those who
        # declared a conflict (recused) and those flagged as no-shows (their replacements come
        # through a newer plan), revoked or blacklisted; no fewer than the plan requires, at
        # least five and an odd number (seating.py).
        roster = eligible_roster(conn, session)
        required = conn.execute("SELECT committee_size FROM sessions WHERE id = ?", (session,)).fetchone()[0]
        need = max(required or 0, MIN_COMMITTEE)
        if len(roster) > need:
            # More present than the plan's number (a reserve, 候补): the plan's number sit — the
            # tenderer's representatives, then the experts in the roster's order — and the rest
            # stay candidates whom staff can seat when a member leaves.
            reps = [r for r in roster if r[1] == "tenderer_representative"]
            roster = reps + [r for r in roster if r[1] != "tenderer_representative"][:max(0, need - len(reps))]
        problem = seating_problem(len(roster), required or 0)
        if problem:
            raise EvaluationError("committee_incomplete", problem)
        known = {r[0]: r[1] for r in conn.execute("SELECT bidder, name FROM session_bidders WHERE session = ?", (session,))}
        given = {str(b.get("bidder")) for b in bids}
        if given != set(known):
            raise EvaluationError("bad_bids", f"bids: the opening record must list the session's bidders {sorted(known)}")
        text = json.dumps(template, default=str, sort_keys=True, ensure_ascii=False)  # decimals as JSON numbers or strings
        conn.execute("INSERT INTO evaluations (session, template, template_sha256, state, vote_round, started, required_size) "
                     "VALUES (?, ?, ?, 'signing_in', 1, ?, ?)", (session, text, hashlib.sha256(text.encode()).hexdigest(), _now(site),
                                                                 max(required or 0, len(roster))))
        for person_id, role in roster:
            conn.execute("INSERT INTO eval_members (session, person_id, role) VALUES (?, ?, ?)", (session, person_id, role))
        for b in bids:
            price = scoring.dec(b.get("price"), f"bids.{b.get('bidder')}.price")
            conn.execute("INSERT INTO eval_bidders (session, bidder, name, price, valid, invalid_reason) VALUES (?, ?, ?, ?, ?, ?)",
                         (session, str(b["bidder"]), known[str(b["bidder"])], str(price), int(b.get("valid", True) is not False),
                          b.get("invalid_reason")))
        for position, step in enumerate(template["steps"]):
            conn.execute("INSERT INTO eval_steps (session, step, position, state) VALUES (?, ?, ?, 'pending')",
                         (session, step["id"], position))
        site.journal.append(conn, "evaluation.started", {
            "session": session, "template": str(template.get("id", "")), "template_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "members": [r[0] for r in roster], "bids": [{"bidder": str(b["bidder"]), "price": str(scoring.dec(b["price"], "price")),
                                                       "valid": b.get("valid", True) is not False} for b in bids], "by": by})


def sign_in(site: Site, session: str, person_id: int, conn: Any = None, *, terminal: str | None = None) -> None:
    """At the room's terminal, by card tap (appliance.evaluation.terminal resolves the card to
    the person and passes its transaction). The first sign-in is journaled."""
    with site.store.within(conn) as conn:
        _need(conn, session, "signing_in", "electing", "evaluating", "submitted", "opinions", "finalized", seated=False)
        if _member(conn, session, person_id)[1]:
            return
        conn.execute("UPDATE eval_members SET signed_in = ? WHERE session = ? AND person_id = ?", (_now(site), session, person_id))
        site.journal.append(conn, "evaluation.signed_in", {"session": session, "person_id": person_id,
                                                           **({"terminal": terminal} if terminal else {})})


def confirm_read(site: Site, session: str, person_id: int) -> None:
    """"I have read the project information" (项目信息确认); the vote opens once all have."""
    with site.store.transaction() as conn:
        _need(conn, session, "signing_in")
        member = _member(conn, session, person_id)
        if not member[1]:
            raise EvaluationError("not_signed_in", "sign in first")
        if member[2]:
            return
        conn.execute("UPDATE eval_members SET read_confirmed = ? WHERE session = ? AND person_id = ?", (_now(site), session, person_id))
        site.journal.append(conn, "evaluation.read_confirmed", {"session": session, "person_id": person_id})
        left = conn.execute("SELECT COUNT(*) FROM eval_members WHERE session = ? AND read_confirmed IS NULL AND left IS NULL",
                            (session,)).fetchone()[0]
        if left == 0:
            conn.execute("UPDATE evaluations SET state = 'electing' WHERE session = ?", (session,))
            site.journal.append(conn, "evaluation.state", {"session": session, "to": "electing"})


def vote(site: Site, session: str, voter: int, candidate: int) -> dict[str, Any]:
    """One vote in the current round. When every member has voted: a candidate with more than
    half of the members' votes is the chair; otherwise a new round (re-vote)."""
    with site.store.transaction() as conn:
        _need(conn, session, "electing")
        _member(conn, session, voter)
        role = _member(conn, session, candidate)[0]
        if role == "tenderer_representative" and not _template(conn, session).get("tenderer_representative_may_chair", False):
            raise EvaluationError("not_eligible", "under this template the tenderer's representative may not chair")
        round_ = conn.execute("SELECT vote_round FROM evaluations WHERE session = ?", (session,)).fetchone()[0]
        if conn.execute("SELECT 1 FROM eval_votes WHERE session = ? AND round = ? AND voter = ?", (session, round_, voter)).fetchone():
            raise EvaluationError("voted", "already voted in this round")
        conn.execute("INSERT INTO eval_votes (session, round, voter, candidate, cast) VALUES (?, ?, ?, ?, ?)",
                     (session, round_, voter, candidate, _now(site)))
        site.journal.append(conn, "evaluation.vote", {"session": session, "round": round_, "voter": voter, "candidate": candidate})
        members = _members(conn, session)
        tally = dict(conn.execute("SELECT candidate, COUNT(*) FROM eval_votes WHERE session = ? AND round = ? GROUP BY candidate",
                                  (session, round_)).fetchall())
        if sum(tally.values()) < len(members):
            return {"round": round_, "complete": False}
        winner = next((c for c, n in tally.items() if n * 2 > len(members)), None)
        site.journal.append(conn, "evaluation.vote_round", {"session": session, "round": round_,
                                                            "tally": {str(c): n for c, n in sorted(tally.items())},
                                                            "chair": winner})
        if winner is None:
            conn.execute("UPDATE evaluations SET vote_round = vote_round + 1 WHERE session = ?", (session,))
            return {"round": round_, "complete": True, "chair": None, "next_round": round_ + 1}
        conn.execute("UPDATE evaluations SET chair = ?, state = 'evaluating' WHERE session = ?", (winner, session))
        first = conn.execute("SELECT step FROM eval_steps WHERE session = ? ORDER BY position LIMIT 1", (session,)).fetchone()[0]
        _open_step(site, conn, session, first)
        site.journal.append(conn, "evaluation.state", {"session": session, "to": "evaluating", "chair": winner})
        return {"round": round_, "complete": True, "chair": winner}


# -- steps --------------------------------------------------------------------------------------



def _open_step(site: Site, conn: Any, session: str, step_id: str) -> None:
    conn.execute("UPDATE eval_steps SET state = 'open', confirmed_by = NULL, confirmed_at = NULL, outcome = NULL "
                 "WHERE session = ? AND step = ?", (session, step_id))
    conn.execute("DELETE FROM eval_step_submissions WHERE session = ? AND step = ?", (session, step_id))
    site.journal.append(conn, "evaluation.step_opened", {"session": session, "step": step_id})


def active_bidders(conn: Any, session: str) -> list[str]:
    """Bidders still in: valid at opening and not failed by a confirmed pass/fail step."""
    out = [r[0] for r in conn.execute("SELECT bidder FROM eval_bidders WHERE session = ? AND valid = 1 ORDER BY bidder", (session,))]
    for (outcome,) in conn.execute("SELECT outcome FROM eval_steps WHERE session = ? AND state = 'confirmed' AND outcome IS NOT NULL "
                                   "ORDER BY position", (session,)):
        failed = {b for b, o in json.loads(outcome).get("failed", {}).items() if o}
        out = [b for b in out if b not in failed]
    return out


def _open(conn: Any, session: str, step_id: str) -> dict[str, Any]:
    template = _template(conn, session)
    step = _step(template, step_id)
    state = conn.execute("SELECT state FROM eval_steps WHERE session = ? AND step = ?", (session, step_id)).fetchone()[0]
    if state != "open":
        raise EvaluationError("step_not_open", f"step {step_id} is {state}")
    return step


def _value(step: dict[str, Any], criterion: str, value: Any) -> str:
    crit = next((c for c in step["criteria"] if c["id"] == criterion), None)
    if crit is None:
        raise EvaluationError("no_criterion", f"step {step['id']} has no criterion {criterion!r}")
    if step["kind"] == "pass_fail":
        if value not in ("pass", "fail"):
            raise EvaluationError("bad_value", "pass or fail")
        return str(value)
    try:
        points = scoring.dec(value, criterion)
    except scoring.RuleError as exc:
        raise EvaluationError("bad_value", str(exc)) from exc
    top = scoring.dec(crit["max"], "max")
    if not Decimal(0) <= points <= top or points != points.quantize(Decimal("0.01")):
        raise EvaluationError("bad_value", f"{crit.get('name', criterion)}: 0 to {top}, at most two decimals")
    return str(points.quantize(Decimal("0.01")))


def mark(site: Site, session: str, person_id: int, step_id: str, bidder: str, criterion: str, value: Any,
         explanation: str = "") -> None:
    """One member's mark for one bidder and criterion of the open step (changeable until the
    member submits the step)."""
    with site.store.transaction() as conn:
        _need(conn, session, "evaluating")
        _member(conn, session, person_id)
        step = _open(conn, session, step_id)
        if step["kind"] == "price":
            raise EvaluationError("no_marks", "the price step is computed, not marked")
        if bidder not in active_bidders(conn, session):
            raise EvaluationError("bidder_out", f"bidder {bidder} is not (or no longer) under evaluation")
        if conn.execute("SELECT 1 FROM eval_step_submissions WHERE session = ? AND step = ? AND person_id = ?",
                        (session, step_id, person_id)).fetchone():
            raise EvaluationError("submitted", "this step is submitted; ask the chair to reopen it")
        text = _value(step, criterion, value)
        conn.execute("""INSERT INTO eval_marks (session, step, person_id, bidder, criterion, value, explanation, updated)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session, step, person_id, bidder, criterion)
                        DO UPDATE SET value = excluded.value, explanation = excluded.explanation, updated = excluded.updated""",
                     (session, step_id, person_id, bidder, criterion, text, redact_personal_data(explanation).strip()[:1000], _now(site)))


def _alerts(conn: Any, template: dict[str, Any], session: str, step: dict[str, Any], person_id: int) -> list[str]:
    """The member's scores that need an explanation: beyond ±X % of the members' mean, or below
    Y % of the criterion's maximum (template ``deviation_alert``)."""
    limits = template.get("deviation_alert") or {}
    if step["kind"] != "scoring" or not limits:
        return []
    out = []
    for c in step["criteria"]:
        for bidder in active_bidders(conn, session):
            rows = dict(conn.execute("SELECT person_id, value FROM eval_marks WHERE session = ? AND step = ? AND bidder = ? "
                                     "AND criterion = ?", (session, step["id"], bidder, c["id"])).fetchall())
            if person_id not in rows:
                continue
            flagged = scoring.deviation_alerts({str(k): v for k, v in rows.items()}, factor_max=c["max"],
                                               beyond_pct_of_mean=limits.get("beyond_pct_of_mean"),
                                               below_pct_of_max=limits.get("below_pct_of_max"))
            if any(a["expert"] == str(person_id) for a in flagged):
                explained = conn.execute("SELECT explanation FROM eval_marks WHERE session = ? AND step = ? AND person_id = ? "
                                         "AND bidder = ? AND criterion = ?", (session, step["id"], person_id, bidder, c["id"])).fetchone()[0]
                if not explained:
                    out.append(f"{bidder}/{c['id']}")
    return out


def submit_step(site: Site, session: str, person_id: int, step_id: str) -> None:
    with site.store.transaction() as conn:
        _need(conn, session, "evaluating")
        _member(conn, session, person_id)
        template = _template(conn, session)
        step = _open(conn, session, step_id)
        if step["kind"] != "price":
            have = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
                "SELECT bidder, criterion, value, explanation FROM eval_marks WHERE session = ? AND step = ? AND person_id = ?",
                (session, step_id, person_id))}
            missing = [f"{b}/{c['id']}" for b in active_bidders(conn, session) for c in step["criteria"] if (b, c["id"]) not in have]
            if missing:
                raise EvaluationError("incomplete", f"not yet marked: {', '.join(missing)}")
            unexplained = [f"{b}/{c}" for (b, c), (v, why) in have.items() if v == "fail" and not why]
            if unexplained:
                raise EvaluationError("reason_needed", f"a fail needs its reason: {', '.join(unexplained)}")
            deviating = _alerts(conn, template, session, step, person_id)
            if deviating:
                raise EvaluationError("explanation_needed", f"scores far from the others' need a written explanation: "
                                      f"{', '.join(deviating)}")
        conn.execute("INSERT OR IGNORE INTO eval_step_submissions (session, step, person_id, submitted) VALUES (?, ?, ?, ?)",
                     (session, step_id, person_id, _now(site)))
        marks = [{"bidder": r[0], "criterion": r[1], "value": r[2]} for r in conn.execute(
            "SELECT bidder, criterion, value FROM eval_marks WHERE session = ? AND step = ? AND person_id = ? ORDER BY bidder, criterion",
            (session, step_id, person_id))]
        site.journal.append(conn, "evaluation.step_submitted", {"session": session, "step": step_id, "person_id": person_id,
                                                                "marks": marks})


def _scores(conn: Any, session: str, step_id: str) -> dict[str, dict[str, dict[int, str]]]:
    out: dict[str, dict[str, dict[int, str]]] = {}
    for bidder, criterion, person_id, value in conn.execute(
            "SELECT bidder, criterion, person_id, value FROM eval_marks WHERE session = ? AND step = ?", (session, step_id)):
        out.setdefault(bidder, {}).setdefault(criterion, {})[person_id] = value
    return out


def _outcome(conn: Any, template: dict[str, Any], session: str, step: dict[str, Any]) -> dict[str, Any]:
    members = _members(conn, session)
    bidders = active_bidders(conn, session)
    marks = _scores(conn, session, step["id"]) if step["kind"] != "price" else {}
    if step["kind"] == "pass_fail":  # a criterion fails by the majority of the members (少数服从多数)
        failed = {b: sorted(c for c, votes in marks.get(b, {}).items() if sum(v == "fail" for v in votes.values()) * 2 > len(members))
                  for b in bidders}
        return {"failed": {b: f for b, f in failed.items()}}
    if step["kind"] == "scoring":
        agg = template["rule"].get("aggregation") or {}
        return {"scores": {b: str(sum((scoring.aggregate([Decimal(v) for v in marks.get(b, {}).get(c["id"], {}).values()],
                                                         agg.get("method", "mean"), int(agg.get("round", 2)))
                                       for c in step["criteria"]), Decimal(0))) for b in bidders}}
    results = _engine(conn, template, session, bidders)
    if template["rule"].get("method") == "lowest_evaluated_price":  # 标价比较: each adjustment with its working
        return {"evaluated_prices": {r.bidder: scoring.text(r.evaluated_price) for r in results if r.valid},
                "adjustments": {r.bidder: [a["working"] for a in r.adjustments] for r in results if r.valid}}
    return {"price_scores": {r.bidder: str(r.price_score) for r in results if r.valid}}


def _engine(conn: Any, template: dict[str, Any], session: str, bidders: list[str]) -> list[scoring.Result]:
    """The scoring engine over the bidders still in, each factor with the members' scores of
    its step (per criterion, so the rule's aggregation applies per sub-item)."""
    rule = dict(template["rule"])
    offered = _offered_values(conn, session) if rule.get("adjustments") else {}
    bids = []
    for bidder, price in conn.execute("SELECT bidder, price FROM eval_bidders WHERE session = ? ORDER BY bidder", (session,)):
        entry: dict[str, Any] = {"bidder": bidder, "price": Decimal(price), "valid": bidder in bidders, "scores": {}}
        if bidder in bidders:
            for factor in rule.get("factors", []):
                marks = _scores(conn, session, factor).get(bidder, {})
                entry["scores"][factor] = {c: [Decimal(v) for v in per.values()] for c, per in marks.items()}
            names = {a.get("offered") for a in rule.get("adjustments", [])}
            entry["offered"] = {k: v for k, v in offered.get(bidder, {}).items() if k in names}
        bids.append(entry)
    try:
        return scoring.score(rule, {"bids": bids})
    except scoring.RuleError as exc:
        raise EvaluationError("cannot_score", f"the scoring rule cannot be applied: {exc}") from exc


def _offered_values(conn: Any, session: str) -> dict[str, dict[str, str]]:
    """The bids' offered values (工期, 质保期 …) as the signed-off opening record of the section
    states them in its columns: what the adjustment rules of the lowest evaluated price read."""
    row = conn.execute("""SELECT o.record FROM openings o JOIN sessions x ON x.id = o.session JOIN sessions e ON e.id = ?
                          WHERE x.section_code = e.section_code AND o.state = 'signed_off' ORDER BY o.signed_off DESC LIMIT 1""",
                       (session,)).fetchone()
    if row is None:
        return {}
    return {r["bidder"]: {f["name"]: f["value"] for f in r["fields"]} for r in json.loads(row[0])["rows"]}


def confirm_step(site: Site, session: str, chair: int, step_id: str, conn: Any = None) -> dict[str, Any]:
    """The chair confirms the open step once every member has submitted it; the next opens (in
    the caller's transaction when given one: a dark review is revealed in the same)."""
    with site.store.within(conn) as conn:
        _need(conn, session, "evaluating")
        _chair(conn, session, chair)
        template = _template(conn, session)
        step = _open(conn, session, step_id)
        if step["kind"] != "price":
            done = {r[0] for r in conn.execute("SELECT person_id FROM eval_step_submissions WHERE session = ? AND step = ?",
                                               (session, step_id))}
            waiting = [m for m in _members(conn, session) if m not in done]
            if waiting:
                raise EvaluationError("waiting", f"members not yet submitted: {waiting}")
        outcome = _outcome(conn, template, session, step)
        conn.execute("UPDATE eval_steps SET state = 'confirmed', confirmed_by = ?, confirmed_at = ?, outcome = ? "
                     "WHERE session = ? AND step = ?", (chair, _now(site), json.dumps(outcome, ensure_ascii=False), session, step_id))
        site.journal.append(conn, "evaluation.step_confirmed", {"session": session, "step": step_id, "chair": chair, "outcome": outcome})
        following = conn.execute("SELECT step FROM eval_steps WHERE session = ? AND state = 'pending' ORDER BY position LIMIT 1",
                                 (session,)).fetchone()
        if following:
            _open_step(site, conn, session, following[0])
        else:
            conn.execute("UPDATE evaluations SET state = 'submitted' WHERE session = ?", (session,))
            site.journal.append(conn, "evaluation.state", {"session": session, "to": "submitted"})
        return outcome


def request_reopen(site: Site, session: str, chair: int, step_id: str, reason: str) -> int:
    with site.store.transaction() as conn:
        _need(conn, session, "evaluating", "submitted")
        _chair(conn, session, chair)
        state = conn.execute("SELECT state FROM eval_steps WHERE session = ? AND step = ?", (session, step_id)).fetchone()
        if state is None or state[0] != "confirmed":
            raise EvaluationError("not_confirmed", "only a confirmed step can be reopened")
        reason = redact_personal_data(reason).strip()[:500]
        if not reason:
            raise EvaluationError("reason_needed", "say why the step must be reopened")
        cur = conn.execute("INSERT INTO eval_reopens (session, step, requested_by, reason, requested) VALUES (?, ?, ?, ?, ?)",
                           (session, step_id, chair, reason, _now(site)))
        site.journal.append(conn, "evaluation.reopen_requested", {"session": session, "step": step_id, "chair": chair,
                                                                  "reason": reason, "request": cur.lastrowid})
        return int(cur.lastrowid or 0)


def approve_reopen(site: Site, request_id: int, *, supervisor: str) -> None:
    """A supervisor's approval: the step opens again and every later step goes back to pending
    (members' marks are kept; their submissions are not)."""
    with site.store.transaction() as conn:
        row = conn.execute("SELECT session, step, approved FROM eval_reopens WHERE id = ?", (request_id,)).fetchone()
        if row is None or row[2]:
            raise EvaluationError("no_request", "no such open reopening request")
        session, step_id = row[0], row[1]
        _need(conn, session, "evaluating", "submitted")
        position = conn.execute("SELECT position FROM eval_steps WHERE session = ? AND step = ?", (session, step_id)).fetchone()[0]
        conn.execute("UPDATE eval_reopens SET approved_by = ?, approved = ? WHERE id = ?", (supervisor, _now(site), request_id))
        later = [r[0] for r in conn.execute("SELECT step FROM eval_steps WHERE session = ? AND position > ?", (session, position))]
        for s in later:
            conn.execute("UPDATE eval_steps SET state = 'pending', outcome = NULL, confirmed_by = NULL, confirmed_at = NULL "
                         "WHERE session = ? AND step = ?", (session, s))
            conn.execute("DELETE FROM eval_step_submissions WHERE session = ? AND step = ?", (session, s))
        conn.execute("UPDATE evaluations SET state = 'evaluating' WHERE session = ?", (session,))
        site.journal.append(conn, "evaluation.reopen_approved", {"session": session, "step": step_id, "request": request_id,
                                                                 "supervisor": supervisor, "reset": later})
        _open_step(site, conn, session, step_id)


# -- opinions and results -----------------------------------------------------------------------

def ask_opinions(site: Site, session: str, chair: int) -> None:
    with site.store.transaction() as conn:
        _need(conn, session, "submitted")
        _chair(conn, session, chair)
        conn.execute("UPDATE evaluations SET state = 'opinions' WHERE session = ?", (session,))
        conn.execute("UPDATE eval_members SET agreed = NULL WHERE session = ?", (session,))
        site.journal.append(conn, "evaluation.state", {"session": session, "to": "opinions"})


def revise(site: Site, session: str, person_id: int, step_id: str, bidder: str, criterion: str, value: Any, reason: str) -> None:
    """A member revises a score while the chair asks for opinions (old and new are journaled)."""
    with site.store.transaction() as conn:
        _need(conn, session, "opinions")
        if _member(conn, session, person_id)[3]:
            raise EvaluationError("agreed", "already agreed; the chair must ask again")
        step = _step(_template(conn, session), step_id)
        if step["kind"] != "scoring":
            raise EvaluationError("not_scoring", "only scores can be revised; a pass/fail step is reopened instead")
        reason = redact_personal_data(reason).strip()[:500]
        if not reason:
            raise EvaluationError("reason_needed", "say why the score changes")
        old = conn.execute("SELECT value FROM eval_marks WHERE session = ? AND step = ? AND person_id = ? AND bidder = ? "
                           "AND criterion = ?", (session, step_id, person_id, bidder, criterion)).fetchone()
        if old is None:
            raise EvaluationError("no_mark", "no such score to revise")
        new = _value(step, criterion, value)
        conn.execute("UPDATE eval_marks SET value = ?, updated = ? WHERE session = ? AND step = ? AND person_id = ? AND bidder = ? "
                     "AND criterion = ?", (new, _now(site), session, step_id, person_id, bidder, criterion))
        site.journal.append(conn, "evaluation.revised", {"session": session, "step": step_id, "person_id": person_id,
                                                         "bidder": bidder, "criterion": criterion, "from": old[0], "to": new,
                                                         "reason": reason})


def agree(site: Site, session: str, person_id: int) -> None:
    with site.store.transaction() as conn:
        _need(conn, session, "opinions")
        _member(conn, session, person_id)
        conn.execute("UPDATE eval_members SET agreed = ? WHERE session = ? AND person_id = ?", (_now(site), session, person_id))
        site.journal.append(conn, "evaluation.agreed", {"session": session, "person_id": person_id})


def finalize(site: Site, session: str, chair: int) -> list[dict[str, Any]]:
    """The chair confirms once every member agreed: scoring steps are recomputed with the
    revisions, the engine aggregates and ranks, and the results are journaled."""
    with site.store.transaction() as conn:
        _need(conn, session, "opinions")
        _chair(conn, session, chair)
        pending = [r[0] for r in conn.execute("SELECT person_id FROM eval_members WHERE session = ? AND agreed IS NULL "
                                              "AND left IS NULL", (session,))]
        if pending:
            raise EvaluationError("waiting", f"members who have not agreed: {pending}")
        template = _template(conn, session)
        for step in template["steps"]:
            if step["kind"] == "scoring":
                conn.execute("UPDATE eval_steps SET outcome = ? WHERE session = ? AND step = ?",
                             (json.dumps(_outcome(conn, template, session, step), ensure_ascii=False), session, step["id"]))
        results = [r.as_json() for r in _engine(conn, template, session, active_bidders(conn, session))]
        stored = json.dumps(results, ensure_ascii=False)
        conn.execute("UPDATE evaluations SET state = 'finalized', finalized = ?, results = ? WHERE session = ?",
                     (_now(site), stored, session))
        rule_sha = hashlib.sha256(json.dumps(template["rule"], default=str, sort_keys=True).encode()).hexdigest()
        site.journal.append(conn, "evaluation.results", {
            "session": session, "chair": chair, "rule_sha256": rule_sha,
            "results": [{k: (None if v is None else str(v) if isinstance(v, float) else v) for k, v in r.items()
                         if k in ("bidder", "valid", "baseline", "deviation_pct", "price_score", "total", "rank", "tied")}
                        for r in results]})
        return results
