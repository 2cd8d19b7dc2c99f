"""The evaluation report (评标报告): the ten items of 《评标委员会和评标方法暂行规定》第四十二条, signed
by every member (a dissent recorded with its reasons), rendered as HTML and as PDF (Debian's
chromium prints the HTML), hashed and journaled with the structured results (docs/evaluation.md).

The report names the committee's members and carries their signatures, so its files are
personal data: both are stored sealed (AES-256-GCM, like every personal field) and only their
SHA-256 goes into the journal. The structured results journaled with it use the national data
specification's field names where it has them (BID_SECTION_CODE, WIN_CANDIDATE_ORDER,
BID_PRICE, EVALUATION_PRICE); the other fields are ours, in lower case.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tempfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from cryptography.exceptions import InvalidTag

from appliance.clock import utc_timestamp
from appliance.evaluation import venue_signoff
from appliance.evaluation.base import not_paused
from appliance.evaluation.committee import EvaluationError, _member, _need, active_bidders
from appliance.personal import redact_personal_data
from appliance.site import Site

VENUE_TZ = ZoneInfo("Asia/Shanghai")
CHROMIUM = "/usr/bin/chromium"
ROLE_TEXT = {"expert": "评标专家", "tenderer_representative": "招标人代表"}
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                          autoescape=True, undefined=jinja2.StrictUndefined)


def _local(stamp: str | None) -> str:
    if not stamp:
        return ""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(VENUE_TZ).strftime("%Y-%m-%d %H:%M")


def sign(site: Site, session: str, person_id: int, *, agrees: bool, signature_png: bytes, dissent: str = "") -> None:
    """A member signs the report at the room's terminal: agreeing, or dissenting with reasons
    (评标委员会成员对评标结果持有异议的，应当以书面形式说明其不同意见和理由)."""
    if len(signature_png) < 100 or not signature_png.startswith(b"\x89PNG"):
        raise EvaluationError("signature_needed", "a signature is required")
    dissent = redact_personal_data(dissent).strip()[:2000]
    if not agrees and not dissent:
        raise EvaluationError("reason_needed", "a dissent needs its reasons")
    with site.store.transaction() as conn:
        _need(conn, session, "finalized")
        _member(conn, session, person_id)
        if conn.execute("""SELECT 1 FROM venue_signoffs v JOIN remote_sessions r ON r.session = v.session
                           JOIN roster ro ON ro.session = v.session AND ro.person_id = ?
                           WHERE v.session = ? AND v.state = 'signed' AND v.venue = COALESCE(ro.venue, r.main)""",
                        (person_id, session)).fetchone():
            raise EvaluationError("venue_signed_off", "the member's venue has been signed off: the signature is final")
        conn.execute("UPDATE eval_members SET report_signed = ?, report_agrees = ?, report_dissent = ?, report_signature_sealed = ? "
                     "WHERE session = ? AND person_id = ?",
                     (utc_timestamp(site.clock.now()), int(agrees), dissent,
                      site.personal.seal("person.signature", signature_png), session, person_id))
        # Signing the report is the member's report submission: where the paid time ends (fees).
        conn.execute("UPDATE checkins SET report_submitted = ? WHERE session = ? AND person_id = ? AND report_submitted IS NULL",
                     (utc_timestamp(site.clock.now()), session, person_id))
        site.journal.append(conn, "evaluation.report_signed", {"session": session, "person_id": person_id, "agrees": agrees,
                                                               "dissent": dissent,
                                                               "signature_sha256": hashlib.sha256(signature_png).hexdigest()})


def content(site: Site, session: str) -> dict[str, Any]:
    """Everything the report says, gathered from the evaluation, the opening and the plan."""
    conn = site.store.reader()
    ev = conn.execute("SELECT template, chair, results, state FROM evaluations WHERE session = ?", (session,)).fetchone()
    if ev is None or ev["state"] != "finalized":
        raise EvaluationError("not_finalized", "the report follows the finalized results")
    template = json.loads(ev["template"])
    s = conn.execute("SELECT s.section_code, s.section_name, s.start, s.end, s.ended, r.name AS room FROM sessions s "
                     "JOIN rooms r ON r.id = s.room WHERE s.id = ?", (session,)).fetchone()
    names = {r[0]: r[1] for r in conn.execute("SELECT bidder, name FROM eval_bidders WHERE session = ?", (session,))}
    members = []
    signatures = []
    # A remote evaluation (远程异地评标): each member with the venue the plan seated them at.
    remote = conn.execute("SELECT main, venues FROM remote_sessions WHERE session = ?", (session,)).fetchone()
    venues = {v["site"]: v["name"] for v in json.loads(remote["venues"])} if remote else {}
    seated_at = dict(conn.execute("SELECT person_id, venue FROM roster WHERE session = ?", (session,)).fetchall())
    for m in conn.execute("""SELECT m.person_id, m.role, m.report_signed, m.report_agrees, m.report_dissent, m.report_signature_sealed,
                                    p.name_sealed FROM eval_members m JOIN people p ON p.id = m.person_id
                             WHERE m.session = ? AND m.left IS NULL ORDER BY m.person_id""", (session,)):
        name = site.personal.open("person.name", m["name_sealed"]).decode()
        venue_site = seated_at.get(m["person_id"]) or (remote["main"] if remote else "")
        members.append({"name": name, "role_text": ROLE_TEXT.get(m["role"], m["role"]), "chair": m["person_id"] == ev["chair"],
                        "venue": venues.get(venue_site, ""), "venue_site": venue_site})
        png = site.personal.open("person.signature", m["report_signature_sealed"]) if m["report_signature_sealed"] else None
        signatures.append({"name": name, "agrees": bool(m["report_agrees"]), "dissent": m["report_dissent"] or "",
                           "signed": _local(m["report_signed"]), "done": m["report_signed"] is not None,
                           "signature": f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else ""})
    steps = {st["id"]: st for st in template["steps"]}
    still_in = set(active_bidders(conn, session))
    bidders = []
    for bidder, price, valid, invalid_reason in conn.execute(
            "SELECT bidder, price, valid, invalid_reason FROM eval_bidders WHERE session = ? ORDER BY bidder", (session,)):
        failed, reasons = [], []
        if not valid:
            reasons.append(invalid_reason or "开标时无效")
        for (step_id, outcome) in conn.execute("SELECT step, outcome FROM eval_steps WHERE session = ? AND outcome IS NOT NULL "
                                               "ORDER BY position", (session,)):
            for crit in json.loads(outcome).get("failed", {}).get(bidder, []):
                label = next((c["name"] for c in steps[step_id]["criteria"] if c["id"] == crit), crit)
                failed.append(f"{steps[step_id]['name']}：{label}")
                reasons += sorted({r[0] for r in conn.execute(
                    "SELECT explanation FROM eval_marks WHERE session = ? AND step = ? AND bidder = ? AND criterion = ? "
                    "AND value = 'fail' AND explanation != ''", (session, step_id, bidder, crit))})
        bidders.append({"bidder": bidder, "name": names[bidder], "price": price, "passed": bidder in still_in,
                        "failed": failed, "reasons": reasons})
    results = json.loads(ev["results"])
    prices = {b["bidder"]: b["price"] for b in bidders}
    for r in results:  # as the report prints them: exact prices, points to two decimals
        r["name"], r["price"] = names[r["bidder"]], prices[r["bidder"]]
        for key in ("total", "price_score"):
            r[key] = None if r[key] is None else f"{Decimal(str(r[key])):.2f}"
        r["factors"] = {k: f"{Decimal(str(v)):.2f}" for k, v in (r.get("factors") or {}).items()}
    ranking = sorted((r for r in results if r["rank"] is not None), key=lambda r: (r["rank"], r["bidder"]))
    opening = conn.execute("""SELECT o.record, o.record_sha256 FROM openings o JOIN sessions x ON x.id = o.session
                              WHERE x.section_code = ? AND o.state = 'signed_off' ORDER BY o.signed_off DESC LIMIT 1""",
                           (s["section_code"],)).fetchone()
    opening_record = json.loads(opening[0]) if opening else None
    opening_fields: list[str] = []
    if opening_record:
        for row in opening_record["rows"]:
            row["values"] = {f["name"]: f["value"] for f in row["fields"]}
            opening_fields += [f["name"] for f in row["fields"] if f["name"] not in opening_fields]
    rule = template["rule"]
    price = rule.get("price") or {}
    price_rule = (f"低价优先法，满分{price.get('points')}分" if price.get("kind") == "ratio_to_lowest"
                  else f"基准价扣分法，满分{price.get('points')}分" if price.get("kind") == "deduction" else "经评审的最低投标价法")
    return {
        "session": session, "section_code": s["section_code"], "section_name": s["section_name"], "room": s["room"],
        "start": _local(s["start"]), "end": _local(s["ended"] or s["end"]), "issued": _local(utc_timestamp(site.clock.now())),
        "template_name": template.get("name", template.get("id", "")), "members": members, "opening": opening_record,
        "opening_sha256": opening[1] if opening else "", "opening_fields": opening_fields, "bidders": bidders,
        "steps": template["steps"], "price_rule": price_rule, "method": rule.get("method"), "factor_ids": rule.get("factors", []),
        "factors": [steps[f]["name"] for f in rule.get("factors", [])], "results": results, "ranking": ranking,
        "candidates": ranking[:int(template.get("candidates", 3))], "matters": template.get("matters", ""),
        "clarifications": [{"name": names.get(c[0], c[0]), "question": c[1], "answer": c[2]} for c in conn.execute(
            "SELECT bidder, question, answer FROM eval_clarifications WHERE session = ? ORDER BY id", (session,))],
        "signatures": signatures, "dissents": [x for x in signatures if x["done"] and not x["agrees"]],
        "remote": {"main": venues[remote["main"]], "others": [n for v, n in venues.items() if v != remote["main"]]} if remote else None,
        "venue_signoffs": [{**v, "main": v["site"] == remote["main"],
                            "members": [m["name"] for m in members if m["venue_site"] == v["site"]],
                            "signoffs": [{**s, "signed": _local(s["signed"])} for s in v["signoffs"] if s["state"] == "signed"]}
                           for v in venue_signoff.signoffs(conn, session, json.loads(remote["venues"]))] if remote else [],
    }


def render_html(data: dict[str, Any]) -> str:
    return _ENV.get_template("report.html").render(r=data)


def render_pdf(html: str) -> bytes:
    """The HTML printed to PDF by headless chromium (A4, the page's own CSS), without a network."""
    if not shutil.which(CHROMIUM):
        raise EvaluationError("no_chromium", f"{CHROMIUM} is needed to print the report (make installs it)")
    with tempfile.TemporaryDirectory(prefix="report-") as tmp:
        page, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                        f"--user-data-dir={tmp}/profile", f"--print-to-pdf={out}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
        return out.read_bytes()


def structured(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The results as the center takes them: national field names where they exist."""
    return [{"BID_SECTION_CODE": data["section_code"], "WIN_CANDIDATE_ORDER": r["rank"] if r in data["candidates"] else None,
             "BID_PRICE": r["price"], "EVALUATION_PRICE": None if r.get("evaluated_price") is None else str(r["evaluated_price"]),
             "bidder": r["bidder"], "valid": r["valid"], "total": r["total"],
             "rank": r["rank"], "tied": r["tied"]} for r in data["results"]]


def issue(site: Site, session: str) -> dict[str, Any]:
    """Once every member has signed (and, in a remote evaluation, a supervisor of every venue for
    its part): render, seal, store, and journal the hashes and results (not while a remote
    committee is paused: checked before rendering and again as it is stored)."""
    not_paused(site.store.reader(), session)
    data = content(site, session)
    unsigned = [s["name"][0] + "*" for s in data["signatures"] if not s["done"]]
    if unsigned:
        raise EvaluationError("unsigned", f"{len(unsigned)} member(s) have not signed the report")
    waiting = [v["name"] for v in data["venue_signoffs"] if not v["signoffs"]]
    if waiting:  # a remote evaluation: each venue's supervisors sign for their venue's part first
        raise EvaluationError("venues_unsigned", f"no supervisor has signed for {', '.join(waiting)} yet")
    html = render_html(data)
    pdf = render_pdf(html)
    html_sha, pdf_sha = hashlib.sha256(html.encode()).hexdigest(), hashlib.sha256(pdf).hexdigest()
    folder = site.data_dir / "reports"
    folder.mkdir(exist_ok=True)
    (folder / f"{session}.html.sealed").write_bytes(site.personal.seal("evaluation.report", html.encode()))
    (folder / f"{session}.pdf.sealed").write_bytes(site.personal.seal("evaluation.report", pdf))
    rows = structured(data)
    with site.store.transaction() as conn:
        not_paused(conn, session)
        conn.execute("INSERT OR REPLACE INTO eval_reports (session, html_sha256, pdf_sha256, issued) VALUES (?, ?, ?, ?)",
                     (session, html_sha, pdf_sha, utc_timestamp(site.clock.now())))
        site.journal.append(conn, "evaluation.report", {
            "session": session, "html_sha256": html_sha, "pdf_sha256": pdf_sha, "pdf_bytes": len(pdf),
            "dissents": len(data["dissents"]), "results": rows})
    return {"html_sha256": html_sha, "pdf_sha256": pdf_sha, "results": rows}


def read(site: Site, session: str, kind: str = "pdf") -> bytes:
    """The report's file, opened, checked against the journaled hash."""
    row = site.store.reader().execute("SELECT html_sha256, pdf_sha256 FROM eval_reports WHERE session = ?", (session,)).fetchone()
    if row is None:
        raise EvaluationError("no_report", "no report issued for this session")
    try:
        data = site.personal.open("evaluation.report", (site.data_dir / "reports" / f"{session}.{kind}.sealed").read_bytes())
    except (OSError, ValueError, InvalidTag) as exc:
        raise EvaluationError("altered", f"the stored report cannot be opened ({type(exc).__name__}): altered or missing") from exc
    if hashlib.sha256(data).hexdigest() != (row[1] if kind == "pdf" else row[0]):
        raise EvaluationError("altered", "the stored report does not match its journaled hash")
    return data
