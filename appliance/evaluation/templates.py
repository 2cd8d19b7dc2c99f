"""Evaluation templates: the steps, criteria and scoring rule of an evaluation, sent by the
center's feed or loaded from a file when the link is down (`appliance eval template`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from appliance.evaluation import scoring
from appliance.evaluation.base import STEP_KINDS, EvaluationError, _loads, _now
from appliance.personal import refuse_personal_numbers
from appliance.site import Site

TEMPLATE_FORMAT = "site-appliance/evaluation-template/v1"


def check_template(template: Any) -> dict[str, Any]:
    """The template, once its steps and rule make sense; raises EvaluationError naming the field."""
    if not isinstance(template, dict) or template.get("format") != TEMPLATE_FORMAT:
        raise EvaluationError("bad_template", f"format: a template says \"format\": \"{TEMPLATE_FORMAT}\"")
    steps = template.get("steps")
    if not isinstance(steps, list) or not steps:
        raise EvaluationError("bad_template", "steps: a non-empty list")
    ids = [s.get("id") for s in steps if isinstance(s, dict)]
    if len(ids) != len(steps) or len(set(ids)) != len(ids) or not all(isinstance(i, str) and i for i in ids):
        raise EvaluationError("bad_template", "steps: each step has a unique id")
    for s in steps:
        if s.get("kind") not in STEP_KINDS:
            raise EvaluationError("bad_template", f"steps.{s['id']}.kind: one of {', '.join(STEP_KINDS)}")
        if s["kind"] != "price":
            criteria = s.get("criteria")
            if not isinstance(criteria, list) or not criteria or len({c.get("id") for c in criteria}) != len(criteria):
                raise EvaluationError("bad_template", f"steps.{s['id']}.criteria: a non-empty list with unique ids")
            if s["kind"] == "scoring":
                for c in criteria:
                    try:
                        scoring.dec(c.get("max"), f"steps.{s['id']}.criteria.{c.get('id')}.max")
                    except scoring.RuleError as exc:
                        raise EvaluationError("bad_template", str(exc)) from exc
    try:
        rule = scoring.parse_rule(template.get("rule"))
    except scoring.RuleError as exc:
        raise EvaluationError("bad_template", f"rule: {exc}") from exc
    for factor in rule.factors:
        if factor not in ids:
            raise EvaluationError("bad_template", f"rule.factors: {factor!r} is not a scoring step of the template")
    return template


def templates(site: Site) -> list[dict[str, Any]]:
    """The evaluation templates the site holds (from the center's feed, or loaded from a file),
    each checked: {"id", "name", "sha256", "problem"} (problem: why it cannot be used)."""
    out = []
    for name, body, sha in site.store.reader().execute(
            "SELECT name, body, sha256 FROM center_documents WHERE kind = 'evaluation_template' ORDER BY name"):
        template = _loads(body)
        try:
            check_template(template)
            problem = None
        except EvaluationError as exc:
            problem = str(exc)
        out.append({"id": name, "name": template.get("name", name) if isinstance(template, dict) else name, "sha256": sha,
                    "problem": problem})
    return out


def template_by_id(site: Site, template_id: str) -> dict[str, Any]:
    row = site.store.reader().execute("SELECT body FROM center_documents WHERE kind = 'evaluation_template' AND name = ?",
                                      (template_id,)).fetchone()
    if row is None:
        raise EvaluationError("no_template", f"no evaluation template {template_id!r}")
    return check_template(_loads(row[0]))


def load_template(site: Site, template: Any, *, by: str) -> str:
    """A template from a file (when the center cannot send it): checked, kept like the center's
    and journaled with its hash. A later one from the center with the same id replaces it."""
    from appliance.canonical import canonical_bytes

    check_template(template)
    template_id = str(template.get("id") or "")
    if not template_id:
        raise EvaluationError("bad_template", "id: a template names itself")
    refuse_personal_numbers(template_id, "id")
    body = json.loads(json.dumps(template, default=str))
    sha = hashlib.sha256(canonical_bytes(body)).hexdigest()
    with site.store.transaction() as conn:
        conn.execute("""INSERT INTO center_documents (kind, name, body, sha256, received) VALUES ('evaluation_template', ?, ?, ?, ?)
                        ON CONFLICT(kind, name) DO UPDATE SET body = excluded.body, sha256 = excluded.sha256,
                        received = excluded.received""", (template_id, json.dumps(body, ensure_ascii=False), sha, _now(site)))
        site.journal.append(conn, "evaluation.template_loaded", {"template": template_id, "sha256": sha, "by": by})
    return template_id
