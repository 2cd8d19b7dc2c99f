"""What the evaluation's modules share: the error every refusal raises, the committee's roles
and step kinds, and reading an evaluation's template, state and members."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from appliance.clock import utc_timestamp
from appliance.site import Site

MEMBER_ROLES = ("expert", "tenderer_representative")
MIN_COMMITTEE = 5  # 招标投标法 第三十七条: 评标委员会……成员人数为五人以上单数
STEP_KINDS = ("pass_fail", "scoring", "price")


class EvaluationError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _template(conn: Any, session: str) -> dict[str, Any]:
    row = conn.execute("SELECT template FROM evaluations WHERE session = ?", (session,)).fetchone()
    if row is None:
        raise EvaluationError("no_evaluation", f"session {session} has no evaluation")
    return _loads(row[0])


def _state(conn: Any, session: str) -> tuple[str, int | None]:
    row = conn.execute("SELECT state, chair FROM evaluations WHERE session = ?", (session,)).fetchone()
    if row is None:
        raise EvaluationError("no_evaluation", f"session {session} has no evaluation")
    return row[0], row[1]


def _need(conn: Any, session: str, *states: str, seated: bool = True) -> None:
    """The evaluation is in one of ``states``, its session neither suspended nor terminated,
    and (``seated``) its committee complete and, when it sits at several venues, not paused: no
    work goes on with too few members or an even number (a member signing in is the exception:
    ``seated=False``)."""
    state, _ = _state(conn, session)
    if state not in states:
        raise EvaluationError("wrong_state", f"the evaluation is {state}, not {' or '.join(states)}")
    # A suspended session (中止) pauses the committee's work; a terminated one ends it.
    held = conn.execute("SELECT state FROM sessions WHERE id = ? AND state IN ('suspended', 'terminated')", (session,)).fetchone()
    if held:
        raise EvaluationError(f"session_{held[0]}", f"the session is {held[0]}")
    # A remote committee is paused while any of its venues is not connected (remote.py); a
    # member still signs in meanwhile (attendance, not the committee's work).
    if seated:
        not_paused(conn, session)
    if seated and state != "finalized":
        problem = seating_problem(len(_members(conn, session)), _required(conn, session))
        if problem:
            raise EvaluationError("committee_incomplete", problem)


def not_paused(conn: Any, session: str) -> None:
    """Refuse (``committee_paused``) while a venue of a remote committee is not connected."""
    gone = [r[0] for r in conn.execute("SELECT venue FROM remote_links WHERE session = ? AND connected = 0", (session,))]
    if gone:
        raise EvaluationError("committee_paused", f"the committee is paused: {', '.join(gone)} not connected")


def _required(conn: Any, session: str) -> int:
    row = conn.execute("SELECT required_size FROM evaluations WHERE session = ?", (session,)).fetchone()
    return max(MIN_COMMITTEE, row[0] or 0) if row else MIN_COMMITTEE


def seating_problem(members: int, required: int) -> str | None:
    """Why a committee of ``members`` may not work when ``required`` are planned, or None: at
    least the plan's number, at least five, and an odd number (招标投标法 第三十七条)."""
    need = max(required, MIN_COMMITTEE)
    if members < need:
        return (f"the committee has {members} members; the plan requires {need} (at least five, an odd number: "
                "招标投标法 第三十七条): a replacement must be drawn (补抽) and seated")
    if members % 2 == 0:
        return (f"the committee has {members} members, an even number; a committee has an odd number "
                "(招标投标法 第三十七条): a replacement must be drawn (补抽) and seated")
    return None


def _member(conn: Any, session: str, person_id: int) -> Any:
    row = conn.execute("SELECT role, signed_in, read_confirmed, agreed FROM eval_members WHERE session = ? AND person_id = ? "
                       "AND left IS NULL",
                       (session, person_id)).fetchone()
    if row is None:
        raise EvaluationError("not_member", "not a member of this committee")
    return row


def _chair(conn: Any, session: str, person_id: int) -> None:
    _, chair = _state(conn, session)
    if chair != person_id:
        raise EvaluationError("not_chair", "only the chair may do this")


def _members(conn: Any, session: str) -> list[int]:
    """The committee's sitting members (not those who left it)."""
    return [r[0] for r in conn.execute("SELECT person_id FROM eval_members WHERE session = ? AND left IS NULL "
                                       "ORDER BY person_id", (session,))]


def _now(site: Site) -> str:
    return utc_timestamp(site.clock.now())

def _step(template: dict[str, Any], step_id: str) -> dict[str, Any]:
    for s in template["steps"]:
        if s["id"] == step_id:
            return s
    raise EvaluationError("no_step", f"no step {step_id!r}")
