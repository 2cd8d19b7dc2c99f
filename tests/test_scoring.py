"""The scoring engine against published worked examples (demo/scoring/, sources in each rule and
in docs/scoring.md), the ranking rules of 财政部令第87号 第五十七条, experts' aggregation and
deviation alerts, properties over random bids, and `appliance eval score` as a newcomer runs it."""

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.evaluation.scoring import RuleError, aggregate, deviation_alerts, parse_json, score
from tests.helpers import run_appliance
from tests.venue import ROOT

EXAMPLES = ROOT / "demo" / "scoring"


def run(name):
    rule = parse_json((EXAMPLES / f"{name}.rule.json").read_text(encoding="utf-8"))
    bids = parse_json((EXAMPLES / f"{name}.bids.json").read_text(encoding="utf-8"))
    return {r.bidder: r for r in score(rule, bids)}


def test_ratio_to_the_lowest_price_reproduces_the_zhuhai_2016_award():
    r = run("ratio-zhuhai-2016")
    assert {k: str(v.price_score) for k, v in r.items()} == {"广东博思": "20.00", "珠海鼎日": "19.93", "珠海昭阳": "19.80", "网同联": "19.90"}
    assert {k: str(v.total) for k, v in r.items()} == {"广东博思": "95.00", "珠海鼎日": "75.93", "珠海昭阳": "69.30", "网同联": "68.90"}
    assert [r[k].rank for k in ("广东博思", "珠海鼎日", "珠海昭阳", "网同联")] == [1, 2, 3, 4]


def test_whole_steps_deduction_reproduces_the_published_case():
    r = run("deduction-whole-steps")
    assert not r["B"].valid and "5 % above" in r["B"].invalid_reason  # 3832.51 > 3650 × 1.05
    assert r["A"].baseline == Decimal("3462.00")
    assert (str(r["A"].deviation_pct), str(r["A"].price_score)) == ("2.66", "61.00")
    assert (str(r["C"].deviation_pct), str(r["C"].price_score)) == ("-1.44", "66.00")
    # The published answer gives E 68.00 (the below-baseline rate); E is 0.70 % above: 70 − 3.
    assert (str(r["E"].deviation_pct), str(r["E"].price_score)) == ("0.70", "67.00")


def test_proportional_deduction_rounds_the_percentage_first():
    r = run("deduction-proportional")
    assert {k: str(v.price_score) for k, v in r.items()} == {"甲": "33.59", "乙": "29.36", "丙": "32.18", "丁": "32.18"}
    # Equal totals: the lower price ranks first (87号令 第五十七条), no tie.
    assert (r["丁"].rank, r["丙"].rank, r["丁"].tied) == (2, 3, False)


def test_reference_price_baseline_and_weighted_composite():
    r = run("reference-price-weighted")
    assert {k: str(v.price_score) for k, v in r.items()} == {"甲": "99.76", "乙": "99.52", "丙": "99.52"}
    assert {k: str(v.total) for k, v in r.items()} == {"甲": "99.34", "乙": "99.25", "丙": "99.23"}


def test_lowest_evaluated_price_adds_the_adjustments():
    r = run("lowest-evaluated-price")
    assert r["甲"].evaluated_price == Decimal("30300000")  # 3000万 + 30万 for a month late
    assert [r[k].rank for k in ("乙", "甲", "丙")] == [1, 2, 3]


def test_deviation_rate_formula_of_the_standard_construction_documents():
    rule = {"format": "site-appliance/scoring-rule/v1", "method": "comprehensive", "factors": [],
            "price": {"kind": "deduction", "points": 100, "above_per_pct": 1, "below_per_pct": 1, "pct_round": 2,
                      "baseline": {"from": "reference", "reference_price": 420}}}
    r = {x.bidder: x for x in score(rule, {"bids": [{"bidder": "a", "price": 500}, {"bidder": "b", "price": 480},
                                                    {"bidder": "c", "price": 350}]})}
    assert [str(r[k].deviation_pct) for k in "abc"] == ["19.05", "14.29", "-16.67"]


def test_equal_totals_and_prices_are_tied():
    rule = {"format": "site-appliance/scoring-rule/v1", "method": "comprehensive", "factors": ["technical"],
            "price": {"kind": "ratio_to_lowest", "points": 30}}
    bids = {"bids": [{"bidder": "x", "price": 100, "scores": {"technical": 60}},
                     {"bidder": "y", "price": 100, "scores": {"technical": 60}},
                     {"bidder": "z", "price": 120, "scores": {"technical": 50}}]}
    r = {x.bidder: x for x in score(rule, bids)}
    assert (r["x"].rank, r["y"].rank, r["z"].rank) == (1, 1, 3) and r["x"].tied and r["y"].tied and not r["z"].tied


def test_baselines_trimmed_and_discounted():
    rule = {"format": "site-appliance/scoring-rule/v1", "method": "comprehensive", "factors": [],
            "price": {"kind": "deduction", "points": 100, "above_per_pct": "1.2", "below_per_pct": "0.8", "steps": "proportional",
                      "pct_round": 2, "baseline": {"from": "mean_valid", "trim": {"highest": 1, "lowest": 1, "when_at_least": 7},
                                                   "factor": "0.95"}}}
    prices = [100, 102, 98, 105, 95, 110, 90]
    r = score(rule, {"bids": [{"bidder": str(p), "price": p} for p in prices]})
    # Seven bids: 110 and 90 dropped, mean of the rest 100.00, × 0.95 = 95.00.
    assert {x.baseline for x in r} == {Decimal("95.00")}
    six = score(rule, {"bids": [{"bidder": str(p), "price": p} for p in prices[:6]]})
    assert {x.baseline for x in six} == {round(Decimal(sum(prices[:6])) / 6 * Decimal("0.95"), 2)}


def test_experts_scores_mean_and_trimmed_mean_per_sub_item():
    assert aggregate([Decimal(x) for x in ("80", "85", "90", "70", "95")], "trimmed_mean", 2) == Decimal("85.00")
    assert aggregate([Decimal(x) for x in ("80", "85", "90", "70", "95")], "mean", 2) == Decimal("84.00")
    assert aggregate([Decimal(x) for x in ("80", "85", "90")], "trimmed_mean", 2) == Decimal("85.00")  # fewer than 5: mean
    rule = {"format": "site-appliance/scoring-rule/v1", "method": "comprehensive", "factors": ["technical"],
            "aggregation": {"method": "trimmed_mean", "round": 2}, "price": {"kind": "ratio_to_lowest", "points": 30}}
    bids = {"bids": [{"bidder": "x", "price": 100, "scores": {"technical": {
        "方案": [20, 22, 18, 25, 21], "工期": [10, 9, 10, 8, 10]}}}]}
    (x,) = score(rule, bids)
    assert x.factors["technical"] == Decimal("21.00") + Decimal("9.67") and x.total == Decimal("60.67")


def test_deviation_alerts_name_the_expert_who_must_explain():
    alerts = deviation_alerts({"e1": 80, "e2": 82, "e3": 78, "e4": 50, "e5": 81}, factor_max=100, beyond_pct_of_mean=20,
                              below_pct_of_max=60)
    assert [(a["expert"], a["reason"]) for a in alerts] == [("e4", "beyond_mean")]
    low = deviation_alerts({"e1": 55, "e2": 56, "e3": 54}, factor_max=100, beyond_pct_of_mean=20, below_pct_of_max=60)
    assert [a["reason"] for a in low] == ["below_share_of_max"] * 3


@pytest.mark.parametrize("rule, bids, field", [
    ({"method": "comprehensive"}, [{"bidder": "a", "price": 1}], "format"),
    ({"format": "site-appliance/scoring-rule/v1", "method": "auction"}, [{"bidder": "a", "price": 1}], "method"),
    ({"format": "site-appliance/scoring-rule/v1", "method": "comprehensive", "price": {"kind": "ratio_to_lowest"}},
     [{"bidder": "a", "price": 1}], "price.points"),
    ({"format": "site-appliance/scoring-rule/v1", "method": "lowest_evaluated_price"}, [{"bidder": "a", "price": "x"}], "price"),
    ({"format": "site-appliance/scoring-rule/v1", "method": "lowest_evaluated_price"},
     [{"bidder": "a", "price": 1}, {"bidder": "a", "price": 2}], "unique bidder"),
    ({"format": "site-appliance/scoring-rule/v1", "method": "comprehensive", "factors": ["technical"],
      "price": {"kind": "ratio_to_lowest", "points": 30}}, [{"bidder": "a", "price": 1}], "technical"),
])
def test_a_rule_that_cannot_be_applied_names_the_field(rule, bids, field):
    with pytest.raises(RuleError, match=field):
        score(rule, {"bids": bids})


prices = st.lists(st.decimals(min_value=1, max_value=10**7, places=2), min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(prices, st.sampled_from(["whole_started", "truncate", "proportional"]))
def test_price_scores_stay_within_floor_and_points_and_rank_every_valid_bid(values, steps):
    rule = {"format": "site-appliance/scoring-rule/v1", "method": "comprehensive", "factors": [],
            "price": {"kind": "deduction", "points": 60, "above_per_pct": 3, "below_per_pct": 2, "steps": steps, "floor": 0,
                      "pct_round": 2, "baseline": {"from": "mean_valid"}}}
    results = score(rule, {"bids": [{"bidder": f"b{i}", "price": str(p)} for i, p in enumerate(values)]})
    assert all(Decimal(0) <= r.price_score <= 60 for r in results)
    assert sorted(r.rank for r in results)[0] == 1 and all(r.rank is not None for r in results)


@settings(max_examples=80, deadline=None)
@given(prices)
def test_under_the_ratio_method_a_lower_price_never_scores_less(values):
    rule = {"format": "site-appliance/scoring-rule/v1", "method": "comprehensive", "factors": [],
            "price": {"kind": "ratio_to_lowest", "points": 30}}
    results = sorted(score(rule, {"bids": [{"bidder": f"b{i}", "price": str(p)} for i, p in enumerate(values)]}),
                     key=lambda r: r.price)
    assert results[0].price_score == Decimal("30.00")
    assert all(a.price_score >= b.price_score for a, b in zip(results, results[1:]))


def test_the_command_prints_one_row_per_bidder():
    out = run_appliance("eval", "score", str(EXAMPLES / "deduction-proportional.rule.json"),
                        str(EXAMPLES / "deduction-proportional.bids.json"))
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["bidder"], r["valid"], r["baseline"], r["deviation_pct"], r["price_score"], r["total"], r["rank"]) for r in rows] == [
        ("甲", True, "7100.00", "-1.41", "33.59", "33.59", 1), ("乙", True, "7100.00", "2.82", "29.36", "29.36", 4),
        ("丙", True, "7100.00", "1.41", "32.18", "32.18", 3), ("丁", True, "7100.00", "-2.82", "32.18", "32.18", 2)]
    bad = run_appliance("eval", "score", str(EXAMPLES / "deduction-proportional.bids.json"),
                        str(EXAMPLES / "deduction-proportional.bids.json"))
    assert bad.returncode == 2 and "format" in bad.stderr
