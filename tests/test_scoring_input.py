"""`appliance eval score` with what independent testing fed it: every bad rule or bids file is
exit 2 with the field named (never a traceback, never a silent wrong number), amounts are exact
decimal strings, and the lowest evaluated price applies the tender documents' adjustment rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.evaluation.scoring import parse_json, score
from tests.helpers import run_appliance
from tests.venue import ROOT

EXAMPLES = ROOT / "demo" / "scoring"
WEIGHTED = {"format": "site-appliance/scoring-rule/v1", "method": "comprehensive", "factors": ["technical", "commercial"],
            "price": {"kind": "ratio_to_lowest", "points": 100}, "weights": {"price": 0.6, "technical": 0.3, "commercial": 0.1}}
BIDS = [{"bidder": "甲", "price": 100, "scores": {"technical": 90, "commercial": 80}},
        {"bidder": "乙", "price": 120, "scores": {"technical": 95, "commercial": 85}}]


def run(tmp_path: Path, rule, bids, *, rule_bytes: bytes | None = None, bids_bytes: bytes | None = None):
    r, b = tmp_path / "rule.json", tmp_path / "bids.json"
    r.write_bytes(rule_bytes if rule_bytes is not None else json.dumps(rule, ensure_ascii=False).encode())
    b.write_bytes(bids_bytes if bids_bytes is not None else json.dumps({"bids": bids}, ensure_ascii=False).encode())
    return run_appliance("eval", "score", str(r), str(b))


def refused(out, *words):
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert out.stdout == "" and "Traceback" not in out.stderr and out.stderr.startswith("error: ")
    for word in words:
        assert word in out.stderr, (word, out.stderr)


def test_a_correct_weighted_rule_scores(tmp_path):
    out = run(tmp_path, WEIGHTED, BIDS)
    assert out.returncode == 0, out.stderr
    rows = {r["bidder"]: r for r in json.loads(out.stdout)}
    # 甲: price 100.00 × 0.6 + 90 × 0.3 + 80 × 0.1 = 95.00; 乙: 83.33 × 0.6 + 28.5 + 8.5 = 87.00 (86.998)
    assert (rows["甲"]["total"], rows["乙"]["total"]) == ("95.00", "87.00")


@pytest.mark.parametrize("what, change, words", [
    ("weights as percentages", {"weights": {"price": 60, "technical": 30, "commercial": 10}}, ["weights", "100", "0.4"]),
    ("weights over 1", {"weights": {"price": 0.5, "technical": 0.6, "commercial": 0.1}}, ["weights", "1.2"]),
    ("a factor left out of the weights", {"weights": {"price": 0.6, "technical": 0.4}}, ["weights", "commercial"]),
    ("a weight for no factor", {"weights": {"price": 0.6, "technical": 0.3, "commercial": 0.05, "service": 0.05}},
     ["weights", "service"]),
    ("round not an integer", {"round": 2.7}, ["round"]),
    ("round a string", {"round": "2"}, ["round"]),
    ("points as a list", {"price": {"kind": "ratio_to_lowest", "points": [100]}}, ["price.points"]),
    ("zero baseline factor", {"price": {"kind": "deduction", "points": 100, "above_per_pct": 1, "below_per_pct": 1,
                                        "baseline": {"factor": 0}}}, ["price.baseline.factor"]),
    ("zero reference price", {"price": {"kind": "deduction", "points": 100, "above_per_pct": 1, "below_per_pct": 1,
                                        "baseline": {"from": "reference", "reference_price": 0}}},
     ["price.baseline.reference_price"]),
    ("negative reference price", {"validity": {"reference_price": -5, "max_above_pct": 5}}, ["validity.reference_price"]),
    ("a typing error", {"wieghts": {}}, ["wieghts"]),
    ("a deduction without its rates", {"price": {"kind": "deduction", "points": 100}}, ["above_per_pct"]),
])
def test_a_rule_that_makes_no_sense_is_refused_naming_the_field(tmp_path, what, change, words):
    refused(run(tmp_path, {**WEIGHTED, **change}, BIDS), *words)


@pytest.mark.parametrize("what, bid, words", [
    ("no bidder", {"price": 100, "scores": {"technical": 1, "commercial": 1}}, ["bids[1].bidder", "required"]),
    ("valid as a string", {"bidder": "丙", "price": 100, "valid": "false", "scores": {"technical": 1, "commercial": 1}},
     ["bids[1].valid"]),
    ("valid as 0", {"bidder": "丙", "price": 100, "valid": 0, "scores": {"technical": 1, "commercial": 1}}, ["bids[1].valid"]),
    ("an absurd price", {"bidder": "丙", "price": 1e300, "scores": {"technical": 1, "commercial": 1}}, ["bids[1].price"]),
    ("a price as a list", {"bidder": "丙", "price": [100], "scores": {"technical": 1, "commercial": 1}}, ["bids[1].price"]),
    ("a negative price", {"bidder": "丙", "price": -1, "scores": {"technical": 1, "commercial": 1}}, ["bids[1].price"]),
    ("a zero price", {"bidder": "丙", "price": 0, "scores": {"technical": 1, "commercial": 1}}, ["bids[1].price"]),
    ("a price in a tenth of a fen", {"bidder": "丙", "price": "100.1234567", "scores": {"technical": 1, "commercial": 1}},
     ["bids[1].price", "decimal places"]),
    ("a score as text", {"bidder": "丙", "price": 100, "scores": {"technical": "good", "commercial": 1}},
     ["bids[1].scores.technical"]),
])
def test_a_bid_that_makes_no_sense_is_refused_naming_the_field(tmp_path, what, bid, words):
    refused(run(tmp_path, WEIGHTED, [BIDS[0], bid]), *words)


@pytest.mark.parametrize("encoding", ["gbk", "latin-1"])
def test_a_file_not_in_utf8_is_refused_naming_the_file(tmp_path, encoding):
    text = json.dumps({"bids": [{"bidder": "甲" if encoding == "gbk" else "Müller", "price": 1}]}, ensure_ascii=False)
    out = run(tmp_path, WEIGHTED, None, bids_bytes=text.encode(encoding))
    refused(out, "bids.json", "UTF-8")


def test_a_file_that_is_not_json_is_refused(tmp_path):
    refused(run(tmp_path, None, None, rule_bytes=b"{\"format\": ", bids_bytes=b"[]"), "not JSON")


def test_a_negative_evaluated_price_is_refused(tmp_path):
    rule = {"format": "site-appliance/scoring-rule/v1", "method": "lowest_evaluated_price"}
    refused(run(tmp_path, rule, [{"bidder": "甲", "price": 100, "adjustments": [{"reason": "提前", "amount": -150}]}]),
            "bids[甲].adjustments", "-50")


def test_amounts_are_exact_decimal_strings(tmp_path):
    rule = {"format": "site-appliance/scoring-rule/v1", "method": "lowest_evaluated_price"}
    # As binary floats both are 1e15 (doubles near it are 0.125 apart): equal, and tied.
    low, high = "999999999999999.98", "999999999999999.99"
    assert float(low) == float(high)
    out = run(tmp_path, rule, [{"bidder": "甲", "price": low}, {"bidder": "乙", "price": high}])
    rows = {r["bidder"]: r for r in json.loads(out.stdout)}
    assert (rows["甲"]["price"], rows["乙"]["price"]) == (low, high)
    assert (rows["甲"]["evaluated_price"], rows["乙"]["evaluated_price"]) == (low, high)
    assert (rows["甲"]["rank"], rows["乙"]["rank"], rows["甲"]["tied"]) == (1, 2, False)


def test_a_baseline_that_rounds_to_nothing_is_refused_naming_it(tmp_path):
    rule = {**WEIGHTED, "price": {"kind": "deduction", "points": 100, "above_per_pct": 1, "below_per_pct": 1,
                                  "baseline": {"factor": "0.000001", "round": 2}}}
    tiny = [{**BIDS[0], "price": "0.01"}, {**BIDS[1], "price": "0.02"}]
    refused(run(tmp_path, rule, tiny), "price.baseline", "0.00")


def test_adjustment_rules_reproduce_the_published_schedule_example():
    rule = parse_json((EXAMPLES / "lowest-evaluated-price.rule.json").read_text(encoding="utf-8"))
    bids = parse_json((EXAMPLES / "lowest-evaluated-price.bids.json").read_text(encoding="utf-8"))
    r = {x.bidder: x for x in score(rule, bids)}
    # 要求工期15个月，每提前1个月折价20万元，每延后1个月加价30万元：报价3000万元、工期16个月 → 评标价3030万元
    assert str(r["甲"].evaluated_price) == "30300000.00"
    assert r["甲"].adjustments[0]["working"] == "工期：16个月，比要求多1个月，计1个单位 × 300000.00元 = 300000.00元"
    assert [r[k].rank for k in ("乙", "甲", "丙")] == [1, 2, 3]


def test_adjustment_rules_per_deviation_item_and_percentage_point():
    rule = parse_json((EXAMPLES / "lowest-evaluated-price-rules.rule.json").read_text(encoding="utf-8"))
    bids = parse_json((EXAMPLES / "lowest-evaluated-price-rules.bids.json").read_text(encoding="utf-8"))
    r = {x.bidder: x for x in score(rule, bids)}
    # 甲: 1,880,000 + 2 % (one year short) + 1 % (one deviation) = 1,936,400.00
    assert str(r["甲"].evaluated_price) == "1936400.00"
    # 乙: 1,920,000 + 5 points of advance × 0.1 % = 1,929,600.00
    assert str(r["乙"].evaluated_price) == "1929600.00"
    # 丙: 4 deviations × 18,500 capped at 50,000; 2.5 points × 1,850; a hand adjustment of 12,000
    assert str(r["丙"].evaluated_price) == "1916625.00"
    assert [a["amount"] for a in r["丙"].adjustments] == ["0", "50000.00", "4625.00", "12000"]
    assert r["丙"].adjustments[1]["capped"] is True
    assert [r[k].rank for k in ("丙", "乙", "甲")] == [1, 2, 3]


def test_an_offered_value_the_rule_needs_is_named_when_missing(tmp_path):
    rule = json.loads((EXAMPLES / "lowest-evaluated-price.rule.json").read_text(encoding="utf-8"))
    refused(run(tmp_path, rule, [{"bidder": "甲", "price": 100}]), "bids[甲].offered", "工期（月）")


def test_fees_quote_prints_what_the_rule_pays(cli, data_dir):
    code, out, _ = cli("fees", "quote", "--hours", "5.5", "--data", str(data_dir))
    quote = json.loads(out)
    # The default rule: 500 for 4 hours, 100 for each started hour beyond: 5.5 h → 2 extra hours → 700
    assert code == 0 and (quote["fee_yuan"], quote["extra_hours_billed"]) == ("700.00", "2")
    code, out, _ = cli("fees", "quote", "--hours", "3", "--terminated", "--data", str(data_dir))
    assert json.loads(out)["fee_yuan"] == "250.00"  # half of the base fee
    for absurd in ("-1", "nan", "inf", "25"):
        code, _, err = cli("fees", "quote", "--hours", absurd, "--data", str(data_dir))
        assert code == 2 and "--hours" in err and "Traceback" not in err


def test_the_published_schema_is_current():
    from appliance.evaluation.scoring_rules import json_schemas

    assert json.loads((ROOT / "docs" / "scoring.schema.json").read_text(encoding="utf-8")) == json.loads(
        json.dumps(json_schemas()))


def test_scores_are_shown_as_the_engine_rounded_them(app):
    shown = app.jinja_env.filters["points"]
    # A rule rounding to 3 places shows 3 (never rounded again); fewer places are padded to 2.
    assert [shown(v) for v in ("86.998", "95", "87.5", "0.125", "1E+2")] == ["86.998", "95.00", "87.50", "0.125", "100.00"]
