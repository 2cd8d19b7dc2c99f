"""A whole evaluation by a committee of five (four experts and the tenderer's representative)
on the demo plan: sign-in and reading, a tied chair vote and its re-vote, pass/fail steps that
put a bidder out, a score far from the others refused until explained, a reopened step (chair
and supervisor), a clarification with its broadcast call, opinions with a revision, and the
results from the scoring engine — every act journaled."""

import hashlib
import json
from decimal import Decimal

import pytest

from appliance.clock import FixedClock
from appliance.evaluation import committee as ev
from appliance.evaluation import opening, report
from appliance.site import open_site
from appliance.siteops.plan import load_plan, parse_plan
from appliance.siteops.sessions import change_state
from tests.helpers import make_id_number, png_bytes
from tests.test_site_operations import NOW, PLAN, plan_text
from tests.venue import ROOT

SESSION = "S-0922-02"
# Free text typed on the screens carries personal numbers too: every one must be masked on entry.
ID = make_id_number("220102", "19750607", "031")
FW_ID = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in ID)
CARD = "6222021234567890128"
SPACED_CARD = " ".join(CARD[i:i + 4] for i in range(0, len(CARD), 4))
TEMPLATE = json.loads((ROOT / "demo" / "evaluation" / "template.json").read_text(encoding="utf-8"))
BIDS = [{"bidder": "B1", "price": "1000000"}, {"bidder": "B2", "price": "900000"}, {"bidder": "B3", "price": "950000"}]


@pytest.fixture
def site(data_dir):
    site = open_site(data_dir, clock=FixedClock(NOW))
    plan = json.loads(plan_text())
    for s in plan["sessions"]:  # the opening and the evaluation of the same section
        s["bidders"].append({"id": "B3", "name": "某某路桥有限公司"})
    load_plan(site, parse_plan(json.dumps(plan, ensure_ascii=False)))
    change_state(site, SESSION, "admitting", by="staff1")
    yield site
    site.close()


def people(site, *refs):
    rows = dict(site.store.reader().execute("SELECT ref, person_id FROM person_refs").fetchall())
    return [rows[r] for r in refs]


def refused(code, fn, *args, **kwargs):
    with pytest.raises(ev.EvaluationError) as exc:
        fn(*args, **kwargs)
    assert exc.value.code == code, str(exc.value)


def mark_all(site, members, step, values, explanations=None):
    """values: {bidder: {criterion: [one value per member]}}"""
    for i, person in enumerate(members):
        for bidder, criteria in values.items():
            for criterion, per_member in criteria.items():
                why = (explanations or {}).get((person, bidder, criterion), "")
                ev.mark(site, SESSION, person, step, bidder, criterion, per_member[i], explanation=why)


def test_a_whole_evaluation(site):
    p01, p02, p03, p04, p06 = members = people(site, "P01", "P02", "P03", "P04", "P06")

    # The opening: attendance, decryption, the record table, collusion signals, confirmations.
    lock = {"lock_number": "JSJ-2026-88817", "ip": "10.2.3.4"}
    opened = opening.open_bids(site, "S-0922-01", [
        {"bidder": "B1", "price": "1000000", "fields": {"工期（日历天）": "300", "项目经理": "王某"}, "metadata": lock},
        {"bidder": "B2", "price": "900000", "attendance": "remote", "fields": {"工期（日历天）": "280", "项目经理": "李某"},
         "metadata": {"lock_number": "jsj-2026-00001", "ip": "10.2.3.4"}},
        {"bidder": "B3", "price": "950000", "fields": {"工期（日历天）": "310", "项目经理": "赵某"},
         "metadata": {**lock, "ip": "192.0.2.7"}}], by="staff1")
    assert [(s["field"], s["bidders"]) for s in opened["signals"]] == [("lock_number", ["B1", "B3"]), ("ip", ["B1", "B2"])]
    assert [a["kind"] for a in site.store.reader().execute("SELECT kind FROM alarms")] == ["collusion_signal"] * 2
    opening.confirm(site, "S-0922-01", "B1", agrees=True, by="B1 代表")
    with pytest.raises(opening.OpeningError, match="not answered: B2, B3"):
        opening.sign_off(site, "S-0922-01", supervisor="li.na")
    opening.confirm(site, "S-0922-01", "B2", agrees=True, by="B2 代表（远程）")
    with pytest.raises(opening.OpeningError, match="say why"):
        opening.confirm(site, "S-0922-01", "B3", agrees=False, by="B3 代表")
    opening.confirm(site, "S-0922-01", "B3", agrees=False, by="B3 代表", reason=f"工期应为300日历天（联系人身份证 {FW_ID}）")
    opening.sign_off(site, "S-0922-01", supervisor="li.na")
    bids = opening.bids_for_evaluation(site, "JL2026-GC-0117-01")
    assert [(b["bidder"], b["price"]) for b in bids] == [(b["bidder"], b["price"]) for b in BIDS]

    ev.start(site, SESSION, TEMPLATE, bids, by="staff1")
    refused("exists", ev.start, site, SESSION, TEMPLATE, BIDS, by="staff1")

    # Sign-in at the room's terminal and the reading confirmation; the vote waits for all.
    for person in members:
        ev.sign_in(site, SESSION, person)
    for person in members[:-1]:
        ev.confirm_read(site, SESSION, person)
    refused("wrong_state", ev.vote, site, SESSION, p01, p01)
    ev.confirm_read(site, SESSION, p06)

    # The chair: the tenderer's representative may not chair under this template; a 2–2–1
    # round elects nobody; the re-vote elects P02 with 3 of 5.
    refused("not_eligible", ev.vote, site, SESSION, p01, p06)
    for voter, candidate in ((p01, p01), (p02, p01), (p03, p02), (p04, p02), (p06, p03)):
        last = ev.vote(site, SESSION, voter, candidate)
    assert last == {"round": 1, "complete": True, "chair": None, "next_round": 2}
    for voter, candidate in ((p01, p02), (p02, p02), (p03, p02), (p04, p01), (p06, p01)):
        last = ev.vote(site, SESSION, voter, candidate)
        if voter == p01:
            refused("voted", ev.vote, site, SESSION, p01, p03)  # one vote a round
    assert last["chair"] == p02
    chair = p02

    # Qualification: three of five fail B3's licence (with reasons) — B3 is out.
    ok = {"license": ["pass"] * 5, "manager": ["pass"] * 5, "credit": ["pass"] * 5}
    mark_all(site, members, "qualification", {"B1": ok, "B2": ok,
                                              "B3": {**ok, "license": ["fail", "fail", "fail", "pass", "pass"]}})
    refused("reason_needed", ev.submit_step, site, SESSION, p01, "qualification")
    for person in (p01, p02, p03):
        ev.mark(site, SESSION, person, "qualification", "B3", "license", "fail", explanation="资质证书已过有效期")
    for person in members[:-1]:
        ev.submit_step(site, SESSION, person, "qualification")
    refused("not_chair", ev.confirm_step, site, SESSION, p01, "qualification")
    refused("waiting", ev.confirm_step, site, SESSION, chair, "qualification")
    ev.submit_step(site, SESSION, p06, "qualification")
    outcome = ev.confirm_step(site, SESSION, chair, "qualification")
    assert outcome == {"failed": {"B1": [], "B2": [], "B3": ["license"]}}

    # Compliance: all pass; B3 can no longer be marked.
    ok = {"signature": ["pass"] * 5, "duration": ["pass"] * 5, "price_limit": ["pass"] * 5}
    mark_all(site, members, "compliance", {"B1": ok, "B2": ok})
    refused("bidder_out", ev.mark, site, SESSION, p01, "compliance", "B3", "signature", "pass")
    for person in members:
        ev.submit_step(site, SESSION, person, "compliance")
    ev.confirm_step(site, SESSION, chair, "compliance")

    # Technical scores. P06's 12 for B2's plan is far below the others: refused until explained.
    refused("bad_value", ev.mark, site, SESSION, p01, "technical", "B1", "plan", "41")
    mark_all(site, members, "technical", {
        "B1": {"plan": ["36", "38", "35", "37", "36"], "schedule": ["25", "26", "24", "25", "25"]},
        "B2": {"plan": ["30", "32", "31", "33", "12"], "schedule": ["27", "28", "27", "26", "27"]}})
    for person in members[:-1]:
        ev.submit_step(site, SESSION, person, "technical")
    refused("explanation_needed", ev.submit_step, site, SESSION, p06, "technical")
    ev.mark(site, SESSION, p06, "technical", "B2", "plan", "12", explanation=f"施工方案未针对本工程深基坑编制专项措施 {CARD}")
    ev.submit_step(site, SESSION, p06, "technical")
    ev.confirm_step(site, SESSION, chair, "technical")

    # Reopening the confirmed technical step: the chair asks, a supervisor approves; the price
    # step (opened meanwhile) goes back to pending, submissions are cleared, marks kept.
    refused("not_chair", ev.request_reopen, site, SESSION, p01, "technical", "复核")
    request = ev.request_reopen(site, SESSION, chair, "technical", f"B1 工期保证措施评分需复核 {SPACED_CARD}")
    ev.approve_reopen(site, request, supervisor="li.na")
    state = dict(site.store.reader().execute("SELECT step, state FROM eval_steps WHERE session = ?", (SESSION,)).fetchall())
    assert state == {"qualification": "confirmed", "compliance": "confirmed", "technical": "open", "price": "pending"}
    refused("waiting", ev.confirm_step, site, SESSION, chair, "technical")
    for person in members:
        ev.submit_step(site, SESSION, person, "technical")
    ev.confirm_step(site, SESSION, chair, "technical")

    # A clarification to B2: a broadcast call where bidders wait (the open zones: the hall and the
    # clarification room's corridor, never the evaluation area), then the answer.
    question = ev.ask_clarification(site, SESSION, chair, "B2", f"请澄清深基坑支护方案的监测频率。{FW_ID}", room="DY1")
    call = site.store.reader().execute("SELECT kind, target, args FROM device_commands ORDER BY id DESC LIMIT 1").fetchone()
    assert (call[0], call[1], json.loads(call[2])["text"]) == ("announce", "public,corridor", "请某某工程有限公司代表到答疑室。")
    ev.record_answer(site, question, f"每日监测一次，变形超限时加密至每4小时一次。{SPACED_CARD}", by="zhang.wei")

    price = ev.confirm_step(site, SESSION, chair, "price")
    assert price == {"price_scores": {"B1": "27.00", "B2": "30.00"}}

    # Opinions: P01 revises B1's plan 36 → 39 (with a reason); everyone agrees; the chair confirms.
    refused("wrong_state", ev.revise, site, SESSION, p01, "technical", "B1", "plan", "39", "复核")
    ev.ask_opinions(site, SESSION, chair)
    refused("reason_needed", ev.revise, site, SESSION, p01, "technical", "B1", "plan", "39", "")
    ev.revise(site, SESSION, p01, "technical", "B1", "plan", "39", f"复核后认为方案针对性强 {ID}")
    for person in members[:-1]:
        ev.agree(site, SESSION, person)
    refused("waiting", ev.finalize, site, SESSION, chair)
    ev.agree(site, SESSION, p06)
    results = {r["bidder"]: r for r in ev.finalize(site, SESSION, chair)}

    # Trimmed means (5 members: highest and lowest dropped) per criterion:
    # B1 plan 39 38 35 37 36 → 37.00, schedule 25 26 24 25 25 → 25.00: technical 62.00, price 27.00
    # B2 plan 30 32 31 33 12 → 31.00, schedule 27 28 27 26 27 → 27.00: technical 58.00, price 30.00
    assert (results["B1"]["total"], results["B1"]["rank"]) == ("89.00", 1)  # exact decimals, as strings
    assert (results["B2"]["total"], results["B2"]["rank"]) == ("88.00", 2)
    assert results["B3"]["valid"] is False and results["B3"]["rank"] is None

    kinds = [r.kind for r in site.journal.records() if r.kind.startswith("evaluation.")]
    for kind in ("evaluation.started", "evaluation.signed_in", "evaluation.read_confirmed", "evaluation.vote_round",
                 "evaluation.step_confirmed", "evaluation.reopen_requested", "evaluation.reopen_approved",
                 "evaluation.clarification_asked", "evaluation.clarification_answered", "evaluation.revised",
                 "evaluation.agreed", "evaluation.results"):
        assert kind in kinds, kind
    rounds = [r.payload for r in site.journal.records(kind="evaluation.vote_round")]
    assert [r["chair"] for r in rounds] == [None, p02]
    final = site.journal.records(kind="evaluation.results")[-1].payload
    assert [(r["bidder"], r["total"], r["rank"]) for r in final["results"]] == [("B1", "89.00", 1), ("B2", "88.00", 2),
                                                                              ("B3", None, None)]
    revised = site.journal.records(kind="evaluation.revised")[-1].payload
    assert (revised["from"], revised["to"]) == ("36.00", "39.00")

    # The report: every member signs (P04 dissents, with reasons); then HTML and PDF, sealed.
    refused("wrong_state", ev.revise, site, SESSION, p01, "technical", "B1", "plan", "38", "再议")
    refused("reason_needed", report.sign, site, SESSION, p04, agrees=False, signature_png=png_bytes())
    for person in members:
        report.sign(site, SESSION, person, agrees=person != p04, signature_png=png_bytes(),
                    dissent=f"B2技术方案评分偏低 {CARD}" if person == p04 else "")
        if person == p01:
            refused("unsigned", report.issue, site, SESSION)
    issued = report.issue(site, SESSION)
    pdf = report.read(site, SESSION, "pdf")
    assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == issued["pdf_sha256"]
    html = report.read(site, SESSION, "html").decode()
    for heading in ("一、基本情况和数据表", "二、评标委员会成员名单", "三、开标记录", "四、符合要求的投标一览表",
                    "五、否决投标的情况说明", "六、评标标准、评标方法或者评标因素一览表", "七、经评审的价格或者评分比较一览表",
                    "八、经评审的投标人排序", "九、推荐的中标候选人名单与签订合同前要处理的事宜", "十、澄清、说明、补正事项纪要"):
        assert heading in html, heading
    assert "资质证书已过有效期" in html and "不同意：B2技术方案评分偏低" in html and "每日监测一次" in html
    assert CARD not in html and ID not in html and FW_ID not in html and "622202*********0128" in html
    from appliance.personal import personal_numbers

    bodies = [row[0] for row in site.store.reader().execute("SELECT body FROM journal")]
    # Every typed number masked on entry: none left as the journal's guard counts them (a card's
    # digits standing alone; hashes may hold long digit runs glued to letters).
    assert [b for b in bodies if personal_numbers(b, standalone_cards=True)] == []
    assert not any(CARD in b or ID in b or FW_ID in b or SPACED_CARD in b for b in bodies)
    assert sum("622202*********0128" in b for b in bodies) == 3  # the reopening, the answer, the dissent
    explanations = [r[0] for r in site.store.reader().execute("SELECT explanation FROM eval_marks WHERE explanation != ''")]
    assert any("622202*********0128" in e for e in explanations) and not any(CARD in e for e in explanations)
    name = next(p["name"] for p in PLAN["people"] if p["id"] == "P01")
    assert name in html  # the report names the committee …
    on_disk = b"".join(f.read_bytes() for f in (site.data_dir / "reports").iterdir())
    assert name.encode() not in on_disk and b"%PDF" not in on_disk  # … so its files are sealed
    journaled = site.journal.records(kind="evaluation.report")[-1].payload
    assert journaled["pdf_sha256"] == issued["pdf_sha256"] and journaled["dissents"] == 1
    assert [(r["BID_SECTION_CODE"], r["bidder"], r["WIN_CANDIDATE_ORDER"], r["BID_PRICE"]) for r in journaled["results"]] == [
        ("JL2026-GC-0117-01", "B1", 1, "1000000"), ("JL2026-GC-0117-01", "B2", 2, "900000"),
        ("JL2026-GC-0117-01", "B3", None, "950000")]
    # A changed byte in the stored report is detected.
    sealed = site.data_dir / "reports" / f"{SESSION}.pdf.sealed"
    data = bytearray(sealed.read_bytes())
    data[-5] ^= 1
    sealed.write_bytes(bytes(data))
    with pytest.raises(ev.EvaluationError, match="altered"):
        report.read(site, SESSION, "pdf")


def test_a_template_that_cannot_work_is_refused_with_the_field_named():
    bad = json.loads(json.dumps(TEMPLATE))
    bad["rule"]["factors"] = ["commercial"]
    with pytest.raises(ev.EvaluationError, match="rule.factors"):
        ev.check_template(bad)
    bad = json.loads(json.dumps(TEMPLATE))
    bad["steps"][2]["criteria"][0].pop("max")
    with pytest.raises(ev.EvaluationError, match="max"):
        ev.check_template(bad)
    assert Decimal(str(TEMPLATE["rule"]["price"]["points"])) == 30


LEP_TEMPLATE = {
    "format": "site-appliance/evaluation-template/v1", "id": "lep-demo", "name": "经评审的最低投标价法（工期调整）",
    "steps": [{"id": "price", "name": "评标价计算", "kind": "price"}],
    "rule": {"format": "site-appliance/scoring-rule/v1", "method": "lowest_evaluated_price", "round": 2,
             "adjustments": [{"id": "schedule", "name": "工期", "offered": "工期（日历天）", "required": 300, "unit_name": "日历天",
                              "above": {"amount": 1000}, "below": {"amount": -500}}]},
}


def test_the_lowest_evaluated_price_reads_the_offers_of_the_opening_record_and_shows_its_working(site):
    """The adjustment rules of the template read each bid's offered schedule from the signed-off
    opening record; the price step, the results and the report show each adjustment's working."""
    p01, p02, p03, p04, p06 = members = people(site, "P01", "P02", "P03", "P04", "P06")
    opening.open_bids(site, "S-0922-01", [
        {"bidder": "B1", "price": "1000000", "fields": {"工期（日历天）": "300"}},
        {"bidder": "B2", "price": "900000", "fields": {"工期（日历天）": "280"}},
        {"bidder": "B3", "price": "950000", "fields": {"工期（日历天）": "310"}}], by="staff1")
    for bidder in ("B1", "B2", "B3"):
        opening.confirm(site, "S-0922-01", bidder, agrees=True, by=f"{bidder} 代表")
    opening.sign_off(site, "S-0922-01", supervisor="li.na")
    ev.start(site, SESSION, LEP_TEMPLATE, opening.bids_for_evaluation(site, "JL2026-GC-0117-01"), by="staff1")
    for person in members:
        ev.sign_in(site, SESSION, person)
        ev.confirm_read(site, SESSION, person)
    for voter in members:
        ev.vote(site, SESSION, voter, p02)
    for person in members:
        ev.submit_step(site, SESSION, person, "price")
    outcome = ev.confirm_step(site, SESSION, p02, "price")
    ev.ask_opinions(site, SESSION, p02)
    for person in members:
        ev.agree(site, SESSION, person)
    results = {r["bidder"]: r for r in ev.finalize(site, SESSION, p02)}
    assert {b: (r["evaluated_price"], r["rank"]) for b, r in results.items()} == {
        "B1": ("1000000.00", 3), "B2": ("890000.00", 1), "B3": ("960000.00", 2)}
    assert results["B2"]["adjustments"][0]["working"] == "工期：280日历天，比要求少20日历天，计20个单位 × -500.00元 = -10000.00元"
    assert outcome["evaluated_prices"] == {"B1": "1000000.00", "B2": "890000.00", "B3": "960000.00"}
    html = report.render_html(report.content(site, SESSION))
    assert "价格调整及计算过程" in html and "比要求多10日历天，计10个单位 × 1000.00元 = 10000.00元" in html
    assert "890000.00" in html
