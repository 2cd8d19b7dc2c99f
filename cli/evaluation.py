"""`appliance eval`: the scoring engine, reports, templates (docs/scoring.md, docs/evaluation.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cli.common import config_option, data_option, emit, read_text_file


@click.group("eval")
def eval_() -> None:
    """Bid evaluation: the scoring engine (docs/scoring.md)."""


@eval_.command("score")
@click.argument("rule_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("bids_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def eval_score(rule_file: Path, bids_file: Path) -> None:
    """Score BIDS.json under RULE.json; prints one JSON array, a row per bidder (bidder, valid,
    baseline, deviation_pct, price_score, total, rank …). Exit 2 with the field named when the
    rule or the bids cannot be scored."""
    from appliance.evaluation.scoring import RuleError, parse_json, score

    try:
        results = score(parse_json(read_text_file(rule_file)), parse_json(read_text_file(bids_file)))
    except RuleError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps([r.as_json() for r in results], ensure_ascii=False))


@eval_.command("report")
@data_option
@config_option
@click.argument("session")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Where to write the PDF (or .html).")
def eval_report(data_dir: Path, config_path: Path | None, session: str, out: Path) -> None:
    """Write the issued evaluation report of SESSION (opened and checked against its journaled hash)."""
    from appliance.evaluation.committee import EvaluationError
    from appliance.evaluation.report import read
    from appliance.site import open_site

    try:
        with open_site(data_dir, config_path=config_path) as site:
            data = read(site, session, "html" if out.suffix == ".html" else "pdf")
    except EvaluationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    out.write_bytes(data)
    emit({"ok": True, "session": session, "out": str(out), "bytes": len(data)})


@eval_.command("template")
@data_option
@config_option
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def eval_template(data_dir: Path, config_path: Path | None, file: Path) -> None:
    """Load an evaluation template from FILE.json (when the center cannot send it): checked, kept
    beside the center's templates, journaled with its hash. Exit 2 naming the field at fault."""
    from decimal import Decimal

    from appliance.evaluation.committee import EvaluationError, load_template
    from appliance.site import open_site

    try:
        template = json.loads(read_text_file(file), parse_float=Decimal)
        with open_site(data_dir, config_path=config_path) as site:
            template_id = load_template(site, template, by="cli")
    except (EvaluationError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    emit({"ok": True, "template": template_id})
