"""What a committee member does at a terminal, by name: one registry that the terminal's screen
(kiosk_ui/evaluation.py) and the remote committee (appliance.evaluation.remote: an action a
member made at a secondary venue, applied at the main venue) both call, so a member's action
means the same wherever the member sits.

Each action takes the session, the acting member (the venue's person id) and plain JSON
arguments, and raises `EvaluationError` with a code when the committee's rules refuse it.
``marks`` returns the refusals of single fields (one per field, so nothing typed is lost
silently) instead of raising for them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from appliance.evaluation import committee, darkbid, report
from appliance.evaluation.base import EvaluationError
from appliance.site import Site

# Refusals of a field that stop the whole form (the step is no longer open to this member).
FORM_STOPPERS = ("step_not_open", "submitted", "wrong_state", "session_suspended", "session_terminated", "committee_paused")
MAX_SIGNATURE_PNG = 256 << 10


def _text(args: dict[str, Any], key: str) -> str:
    value = args.get(key, "")
    if not isinstance(value, str):
        raise EvaluationError("bad_value", f"{key}: text expected")
    return value


def save_marks(site: Site, session: str, me: int, step: str, fields: dict[str, Any]) -> list[dict[str, str]]:
    """Every mark of a terminal's form (``m|bidder|criterion`` with ``x|bidder|criterion`` its
    reason or explanation; in a dark review ``d|criterion|label`` and ``dx|…``). Each valid one is
    kept; the refusals come back as ``{"field", "code", "message"}``, one per field; a refusal
    that stops the whole form comes back alone with field ``""``."""
    problems = []
    for key, value in fields.items():
        value = value.strip() if isinstance(value, str) else ""
        parts = key.split("|")
        if not value or parts[0] not in ("m", "d") or len(parts) != 3:
            continue
        why = fields.get(f"{'x' if parts[0] == 'm' else 'dx'}|{parts[1]}|{parts[2]}", "")
        why = why if isinstance(why, str) else ""
        try:
            if parts[0] == "m":
                committee.mark(site, session, me, step, parts[1], parts[2], value, explanation=why)
            else:
                darkbid.mark(site, session, me, step, parts[1], parts[2], value, explanation=why)
        except EvaluationError as exc:
            if exc.code in FORM_STOPPERS:
                return [{"field": "", "code": exc.code, "message": str(exc)}]
            problems.append({"field": f"{parts[1]} · {parts[2]}", "code": exc.code, "message": str(exc)})
    return problems


def dark_under_way(site: Site, session: str, step: str) -> bool:
    return site.store.reader().execute("SELECT 1 FROM dark_reviews WHERE session = ? AND step = ? AND revealed IS NULL",
                                       (session, step)).fetchone() is not None


def _marks(site: Site, session: str, me: int, a: dict[str, Any]) -> dict[str, Any]:
    step, fields = _text(a, "step"), a.get("fields")
    if not isinstance(fields, dict):
        raise EvaluationError("bad_value", "fields: the form's marks expected")
    problems = save_marks(site, session, me, step, fields)
    submitted = False
    if not problems and a.get("submit") is True:
        committee.submit_step(site, session, me, step)
        submitted = True
    return {"problems": problems, "submitted": submitted}


def _confirm(site: Site, session: str, me: int, a: dict[str, Any]) -> None:
    step = _text(a, "step")
    dark = dark_under_way(site, session, step)
    with site.store.transaction() as conn:  # one write: never a confirmed dark step left unrevealed
        committee.confirm_step(site, session, me, step, conn)
        if dark:  # a dark review is revealed once its step is confirmed (004 §九: 评审结束后解密)
            darkbid.reveal(site, session, step, conn)


def _vote(site: Site, session: str, me: int, a: dict[str, Any]) -> Any:
    candidate = a.get("candidate")
    if not isinstance(candidate, int) or isinstance(candidate, bool):
        raise EvaluationError("bad_value", "candidate: a member expected")
    return committee.vote(site, session, me, candidate)


def signature_bytes(text: Any) -> bytes:
    """A report signature as the screen sends it (base64 PNG): its bytes, or none when it is not
    base64 or larger than any signature pad draws (report.sign refuses what is not a PNG)."""
    if not isinstance(text, str) or len(text) > MAX_SIGNATURE_PNG * 4 // 3 + 4:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return b""


def _sign(site: Site, session: str, me: int, a: dict[str, Any]) -> None:
    report.sign(site, session, me, agrees=a.get("agrees") is not False, signature_png=signature_bytes(a.get("signature_png")),
                dissent=_text(a, "dissent"))


def _issue(site: Site, session: str, me: int, a: dict[str, Any]) -> None:
    committee._chair(site.store.reader(), session, me)
    report.issue(site, session)


ACTIONS: dict[str, Callable[[Site, str, int, dict[str, Any]], Any]] = {
    "sign_in": lambda site, session, me, a: committee.sign_in(site, session, me, terminal=_text(a, "terminal") or None),
    "read": lambda site, session, me, a: committee.confirm_read(site, session, me),
    "vote": _vote,
    "marks": _marks,
    "confirm": _confirm,
    "reopen": lambda site, session, me, a: committee.request_reopen(site, session, me, _text(a, "step"), _text(a, "reason")),
    "clarify": lambda site, session, me, a: committee.ask_clarification(site, session, me, _text(a, "bidder"), _text(a, "question"),
                                                                        room=_text(a, "room")),
    "opinions": lambda site, session, me, a: committee.ask_opinions(site, session, me),
    "revise": lambda site, session, me, a: committee.revise(site, session, me, _text(a, "step"), _text(a, "bidder"),
                                                            _text(a, "criterion"), _text(a, "value"), _text(a, "reason")),
    "agree": lambda site, session, me, a: committee.agree(site, session, me),
    "finalize": lambda site, session, me, a: committee.finalize(site, session, me),
    "sign": _sign,
    "issue": _issue,
}


def perform(site: Site, session: str, me: int, action: str, args: dict[str, Any]) -> Any:
    """Do ``action`` for member ``me``; raises `EvaluationError` when refused."""
    fn = ACTIONS.get(action)
    if fn is None:
        raise EvaluationError("unknown_action", f"no committee action {action!r}")
    return fn(site, session, me, args)
