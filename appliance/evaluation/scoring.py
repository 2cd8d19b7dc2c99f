"""The scoring engine: pure functions from a rule and the bids to scores and a ranking.

Rules are JSON (docs/scoring.md documents every field with its source and a worked example);
amounts and points are exact decimals (``decimal.Decimal``; JSON numbers are read as decimals,
never as binary floats), rounded half up (四舍五入) where the rule says. Nothing here reads
the clock, the database or the journal: the same rule and bids always give the same result,
which is what lets a supervisor, an auditor or the provincial center recompute it.

Methods:

* ``comprehensive`` (综合评分法 / 综合评估法): a price score plus factor scores (technical,
  commercial …) from the experts, summed or weighted;
  - price ``ratio_to_lowest``: (lowest valid price / price) × points (财政部令第87号 第五十五条);
  - price ``deduction``: points at a baseline, minus points per 1 % above and per 1 % below,
    the percentage counted whole once started, truncated, or proportionally after rounding to
    N decimals; the baseline the mean of valid bids, the mean of all bids, the lowest valid bid
    or a reference price, optionally trimmed and multiplied by a factor (下浮系数);
* ``lowest_evaluated_price`` (经评审的最低投标价法): each bid plus its price adjustments
  (评标委员会和评标方法暂行规定 第三十二条), lowest first: adjustments from the tender documents'
  rules (so much per month of schedule beyond the required one, per deviation item, per
  percentage point of a warranty or payment term) against the bid's offered values, each with
  its working, and any the committee worked out by hand.

The rule and bids are checked against their schema first (`scoring_rules`): a file that breaks it
is refused naming the field. Results carry amounts and points as exact decimal strings.

Ranking (87号令 第五十七条): by total, high to low; equal totals by price, low to high; equal
totals and prices are tied (并列) and share a rank.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_HALF_UP,
    Decimal,
    DecimalException,
    InvalidOperation,
    localcontext,
)
from typing import Any

from appliance.evaluation.scoring_rules import (  # noqa: F401  (RuleError and FORMAT are this module's API too)
    FORMAT,
    AdjustmentRule,
    Bid,
    Price,
    RuleError,
    parse_bids,
    parse_rule,
)

HUNDRED = Decimal(100)
# Working precision: amounts are below 10^15 with at most 6 places (21 digits), so products and
# quotients keep every digit that rounding to a rule's places can see, with room to spare.
PRECISION = 60


def parse_json(text: str) -> Any:
    """JSON with every number read as an exact decimal."""
    try:
        return json.loads(text, parse_float=Decimal)  # integers stay int: exact, and "round" must be one
    except ValueError as exc:
        raise RuleError(f"not JSON: {exc}") from exc


def dec(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise RuleError(f"{where}: a number is required")
    try:
        out = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise RuleError(f"{where}: {value!r} is not a number") from exc
    if not out.is_finite() or abs(out) >= Decimal(10) ** 15:
        raise RuleError(f"{where}: {value!r} is not a finite number below 10^15")
    return out


def round_half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def text(value: Decimal | None) -> str | None:
    """An exact decimal as a string (never through a binary float): ``2288231.72``, ``95.00``."""
    return None if value is None else format(value, "f")


@dataclass
class Result:
    bidder: str
    price: Decimal
    valid: bool
    invalid_reason: str | None = None
    baseline: Decimal | None = None
    deviation_pct: Decimal | None = None
    price_score: Decimal | None = None
    factors: dict[str, Decimal] = field(default_factory=dict)
    evaluated_price: Decimal | None = None
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    total: Decimal | None = None
    rank: int | None = None
    tied: bool = False

    def as_json(self) -> dict[str, Any]:
        out = {"bidder": self.bidder, "valid": self.valid, "baseline": text(self.baseline),
               "deviation_pct": text(self.deviation_pct), "price_score": text(self.price_score), "total": text(self.total),
               "rank": self.rank, "tied": self.tied, "price": text(self.price)}
        if self.invalid_reason:
            out["invalid_reason"] = self.invalid_reason
        if self.factors:
            out["factors"] = {k: text(v) for k, v in self.factors.items()}
        if self.evaluated_price is not None:
            out["evaluated_price"] = text(self.evaluated_price)
            out["adjustments"] = self.adjustments
        return out


# -- validity and baseline ----------------------------------------------------------------------

def _validity(rule: Any, bids: list[Result]) -> None:
    """Bids outside the window around the reference price (招标控制价/标底) are invalid."""
    window = rule.validity
    if window is None:
        return
    reference, above, below = window.reference_price, window.max_above_pct, window.max_below_pct
    for bid in bids:
        if not bid.valid:
            continue
        if above is not None and bid.price > reference * (1 + above / HUNDRED):
            bid.valid, bid.invalid_reason = False, f"more than {above} % above the reference price {reference}"
        elif below is not None and bid.price < reference * (1 - below / HUNDRED):
            bid.valid, bid.invalid_reason = False, f"more than {below} % below the reference price {reference}"


def baseline(spec: Any, bids: list[Result]) -> Decimal:
    """评标基准价 from the valid bids (or all bids, or a reference price), trimmed, × factor,
    rounded to ``round`` places (default 2)."""
    if spec.source == "reference":
        value = spec.reference_price
    else:
        prices = sorted(b.price for b in bids) if spec.source == "mean_all" else sorted(b.price for b in bids if b.valid)
        if not prices:
            raise RuleError("price.baseline: no valid bid to take a baseline from")
        trim = spec.trim
        if trim and len(prices) >= trim.when_at_least and len(prices) > trim.highest + trim.lowest:
            prices = prices[trim.lowest:len(prices) - trim.highest]
        value = prices[0] if spec.source == "lowest_valid" else sum(prices, Decimal(0)) / len(prices)
    out = round_half_up(value * spec.factor, spec.round)
    if out <= 0:
        raise RuleError(f"price.baseline: {text(value * spec.factor)} rounds to {text(out)} at {spec.round} places; "
                        "a baseline must be above 0 (check factor and round)")
    return out


# -- price scores -------------------------------------------------------------------------------

def _ratio_to_lowest(spec: Price, bids: list[Result]) -> None:
    """财政部令第87号 第五十五条: the lowest valid price is the baseline and scores full points;
    the others (baseline / price) × points."""
    valid = [b for b in bids if b.valid]
    if not valid:
        return
    low = min(b.price for b in valid)
    for bid in valid:
        bid.baseline = low
        bid.deviation_pct = round_half_up((bid.price - low) / low * HUNDRED, spec.pct_round if spec.pct_round is not None else 2)
        bid.price_score = round_half_up(low / bid.price * spec.points, spec.round)


def _steps(deviation: Decimal, mode: str, pct_places: int | None) -> Decimal:
    """How many 1 % steps a deviation (in %, absolute) counts for."""
    if pct_places is not None:
        deviation = round_half_up(deviation, pct_places)
    return _count(deviation, mode)


def _count(units: Decimal, mode: str) -> Decimal:
    if mode == "whole_started":  # 不足1个的按1个计
        return units.to_integral_value(rounding=ROUND_CEILING)
    if mode == "truncate":  # 不足1个的不计
        return units.to_integral_value(rounding=ROUND_DOWN)
    return units  # proportional: 按插入法（线性）计算


def _deduction(spec: Price, bids: list[Result]) -> None:
    """Points at the baseline, minus points per 1 % above and per 1 % below it
    (偏差率 = 100 % × (报价 − 评标基准价) / 评标基准价, 《标准施工招标文件》评标办法)."""
    base = baseline(spec.baseline, bids)
    assert spec.above_per_pct is not None and spec.below_per_pct is not None  # the schema requires them
    for bid in bids:
        if not bid.valid:
            continue
        deviation = (bid.price - base) / base * HUNDRED
        steps = _steps(abs(deviation), spec.steps, spec.pct_round)
        per, cap = (spec.above_per_pct, spec.max_deduction_above) if deviation > 0 else (spec.below_per_pct, spec.max_deduction_below)
        deduction = steps * per if cap is None else min(steps * per, cap)
        bid.baseline = base
        bid.deviation_pct = round_half_up(deviation, spec.pct_round if spec.pct_round is not None else 2)
        bid.price_score = round_half_up(max(spec.floor, spec.points - deduction), spec.round)


PRICE_METHODS = {"ratio_to_lowest": _ratio_to_lowest, "deduction": _deduction}


# -- the lowest evaluated price: adjustments ----------------------------------------------------

def _adjustment(rule: AdjustmentRule, bid: Bid, places: int) -> dict[str, Any]:
    """One rule applied to one bid, with its working: the offered value against the required one,
    the units of difference as the rule counts them, so much per unit."""
    if rule.offered not in bid.offered:
        raise RuleError(f"bids[{bid.bidder}].offered: no value for {rule.offered!r} (adjustment {rule.id})")
    offered = bid.offered[rule.offered]
    difference = offered - rule.required
    rate = rule.above if difference > 0 else rule.below if difference < 0 else None
    units = _count(abs(difference) / rule.unit, rule.count)
    out: dict[str, Any] = {"id": rule.id, "name": rule.name, "offered": text(offered), "required": text(rule.required),
                           "units": text(units), "amount": "0"}
    if rate is None or units == 0:
        out["working"] = f"{rule.name}：{text(offered)}{rule.unit_name}，要求{text(rule.required)}{rule.unit_name}，不调整"
        return out
    per_unit = rate.amount if rate.amount is not None else bid.price * rate.pct_of_price / HUNDRED  # type: ignore[operator]
    per_unit = round_half_up(per_unit, places)  # money to the rule's places (分)
    amount = round_half_up(units * per_unit, places)
    capped = rule.cap is not None and abs(amount) > rule.cap
    if capped:
        amount = round_half_up(rule.cap if amount > 0 else -rule.cap, places)  # type: ignore[operator]
    side = "多" if difference > 0 else "少"
    basis = f"{text(per_unit)}元" if rate.amount is not None else f"投标报价的{text(rate.pct_of_price)}%（{text(per_unit)}元）"
    out.update({"per_unit": text(per_unit), "amount": text(amount), "capped": capped,
                "working": f"{rule.name}：{text(offered)}{rule.unit_name}，比要求{side}{text(abs(difference))}{rule.unit_name}，"
                           f"计{text(units)}个单位 × {basis} = {text(amount)}元" + ("（封顶）" if capped else "")})
    return out


def _lowest_evaluated_price(rule: Any, bids: list[Bid], results: list[Result]) -> None:
    for r, b in zip(results, bids, strict=True):
        if not r.valid:
            continue
        r.adjustments = [_adjustment(a, b, rule.round) for a in rule.adjustments]
        r.adjustments += [{"reason": a.reason, "amount": text(a.amount), "working": f"{a.reason}：{text(a.amount)}元"}
                          for a in b.adjustments]
        r.evaluated_price = round_half_up(r.price + sum((Decimal(a["amount"]) for a in r.adjustments), Decimal(0)), rule.round)
        if r.evaluated_price <= 0:
            raise RuleError(f"bids[{r.bidder}].adjustments: the evaluated price would be {text(r.evaluated_price)}, not above 0")
        r.total = round_half_up(r.evaluated_price, rule.round)
    rank(results, higher_is_better=False)


# -- experts' scores ----------------------------------------------------------------------------

def aggregate(values: list[Decimal], method: str, places: int) -> Decimal:
    """The experts' scores of one (sub-)item: their mean, or the mean without the highest and
    the lowest (去掉一个最高分和一个最低分, from 5 experts on; with fewer, the plain mean)."""
    if not values:
        raise RuleError("an item has no experts' scores")
    ordered = sorted(values)
    if method == "trimmed_mean" and len(ordered) >= 5:
        ordered = ordered[1:-1]
    elif method not in ("mean", "trimmed_mean"):
        raise RuleError(f"aggregation.method: {method!r} is not one of mean, trimmed_mean")
    return round_half_up(sum(ordered, Decimal(0)) / len(ordered), places)


def factor_score(value: Any, method: str, places: int, where: str) -> Decimal:
    """A factor's score: a number, a list of experts' scores, or sub-items of either (summed)."""
    if isinstance(value, dict):
        return sum((factor_score(v, method, places, f"{where}.{k}") for k, v in value.items()), Decimal(0))
    if isinstance(value, list):
        return aggregate([dec(v, where) for v in value], method, places)
    return dec(value, where)


def deviation_alerts(scores: dict[str, Any], *, factor_max: Any, beyond_pct_of_mean: Any = None,
                     below_pct_of_max: Any = None) -> list[dict[str, Any]]:
    """Experts' scores of one item that need a written explanation before submission: beyond
    ±X % of the experts' mean, or below Y % of the item's maximum (评分畸高、畸低, 财政部令第87号
    第六十四条; the thresholds are the project's). ``scores``: expert → score."""
    values = {expert: dec(v, f"scores.{expert}") for expert, v in scores.items()}
    if not values:
        return []
    mean = sum(values.values(), Decimal(0)) / len(values)
    top = dec(factor_max, "factor_max")
    out = []
    for expert, v in values.items():
        if beyond_pct_of_mean is not None and mean and abs(v - mean) / mean * HUNDRED > dec(beyond_pct_of_mean, "beyond_pct_of_mean"):
            out.append({"expert": expert, "score": text(v), "reason": "beyond_mean",
                        "deviation_pct": text(round_half_up((v - mean) / mean * HUNDRED, 2))})
        elif below_pct_of_max is not None and v < top * dec(below_pct_of_max, "below_pct_of_max") / HUNDRED:
            out.append({"expert": expert, "score": text(v), "reason": "below_share_of_max"})
    return out


# -- ranking ------------------------------------------------------------------------------------

def rank(results: list[Result], *, higher_is_better: bool) -> None:
    """87号令 第五十七条: by total (high to low, or low to high for evaluated prices), then by
    price low to high; the same total and price share a rank (并列)."""
    ranked = [r for r in results if r.valid and r.total is not None]
    ranked.sort(key=lambda r: (-r.total if higher_is_better else r.total, r.price))  # type: ignore[operator]
    position = 0
    previous: tuple[Decimal, Decimal] | None = None
    for i, r in enumerate(ranked, start=1):
        key = (r.total, r.price)
        if key != previous:
            position = i
        else:
            r.tied = True
            ranked[i - 2].tied = True
        r.rank = position
        previous = key  # type: ignore[assignment]


# -- the whole ----------------------------------------------------------------------------------

def score(rule_data: Any, bid_data: Any) -> list[Result]:
    """Score the bids under the rule; both are checked against their schema first. Arithmetic
    runs at a fixed precision; anything it cannot compute is a `RuleError`, never a crash."""
    rule = parse_rule(rule_data)
    bids = parse_bids(bid_data).bids
    with localcontext() as ctx:
        ctx.prec = PRECISION
        try:
            return _score(rule, bids)
        except DecimalException as exc:
            raise RuleError(f"the rule cannot be computed for these bids ({type(exc).__name__}): "
                            "check the rule's factors, units and places") from exc


def _score(rule: Any, bids: list[Bid]) -> list[Result]:
    results = [Result(bidder=b.bidder, price=b.price, valid=b.valid,
                      invalid_reason=None if b.valid else (b.invalid_reason or "not valid")) for b in bids]
    _validity(rule, results)
    if rule.method == "lowest_evaluated_price":
        _lowest_evaluated_price(rule, bids, results)
        return results
    assert rule.price is not None  # the schema requires it for a comprehensive rule
    PRICE_METHODS[rule.price.kind](rule.price, results)
    agg_method, agg_places = rule.aggregation.method, rule.aggregation.round
    for r, b in zip(results, bids, strict=True):
        if not r.valid:
            continue
        for name in rule.factors:
            if name not in b.scores:
                raise RuleError(f"bids[{r.bidder}].scores: no score for factor {name!r}")
            r.factors[name] = factor_score(b.scores[name], agg_method, agg_places, f"bids[{r.bidder}].scores.{name}")
        parts = {"price": r.price_score or Decimal(0), **r.factors}
        if rule.weights:
            total = sum((w * parts[k] for k, w in rule.weights.items()), Decimal(0))
        else:
            total = sum(parts.values(), Decimal(0))
        r.total = round_half_up(total, rule.round)
    rank(results, higher_is_better=True)
    return results
