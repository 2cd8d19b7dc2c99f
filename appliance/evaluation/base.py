"""What the evaluation's modules share: the error every refusal raises, the committee's roles
and step kinds, and reading an evaluation's template, state and members."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from appliance.clock import utc_timestamp
from appliance.site import Site

MEMBER_ROLES = ("expert", "tenderer_representative")
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


def _need(conn: Any, session: str, *states: str) -> None:
    state, _ = _state(conn, session)
    if state not in states:
        raise EvaluationError("wrong_state", f"the evaluation is {state}, not {' or '.join(states)}")
    # A suspended session (中止) pauses the committee's work; a terminated one ends it.
    held = conn.execute("SELECT state FROM sessions WHERE id = ? AND state IN ('suspended', 'terminated')", (session,)).fetchone()
    if held:
        raise EvaluationError(f"session_{held[0]}", f"the session is {held[0]}")


def _member(conn: Any, session: str, person_id: int) -> Any:
    row = conn.execute("SELECT role, signed_in, read_confirmed, agreed FROM eval_members WHERE session = ? AND person_id = ?",
                       (session, person_id)).fetchone()
    if row is None:
        raise EvaluationError("not_member", "not a member of this committee")
    return row


def _chair(conn: Any, session: str, person_id: int) -> None:
    _, chair = _state(conn, session)
    if chair != person_id:
        raise EvaluationError("not_chair", "only the chair may do this")


def _members(conn: Any, session: str) -> list[int]:
    return [r[0] for r in conn.execute("SELECT person_id FROM eval_members WHERE session = ? ORDER BY person_id", (session,))]


def _now(site: Site) -> str:
    return utc_timestamp(site.clock.now())

def _step(template: dict[str, Any], step_id: str) -> dict[str, Any]:
    for s in template["steps"]:
        if s["id"] == step_id:
            return s
    raise EvaluationError("no_step", f"no step {step_id!r}")
