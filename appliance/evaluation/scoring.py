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
  (评标委员会和评标方法暂行规定 第三十二条), lowest first.

Ranking (87号令 第五十七条): by total, high to low; equal totals by price, low to high; equal
totals and prices are tied (并列) and share a rank.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

FORMAT = "site-appliance/scoring-rule/v1"
HUNDRED = Decimal(100)


class RuleError(ValueError):
    """A rule or bid list that cannot be scored; the message names the field."""


def parse_json(text: str) -> Any:
    """JSON with every number read as an exact decimal."""
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        raise RuleError(f"not JSON: {exc}") from exc


def dec(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise RuleError(f"{where}: a number is required")
    try:
        out = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise RuleError(f"{where}: {value!r} is not a number") from exc
    if not out.is_finite():
        raise RuleError(f"{where}: {value!r} is not a finite number")
    return out


def round_half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


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
    total: Decimal | None = None
    rank: int | None = None
    tied: bool = False

    def as_json(self) -> dict[str, Any]:
        def num(v: Decimal | None) -> Any:
            return None if v is None else float(v) if v != v.to_integral_value() or v.as_tuple().exponent < 0 else int(v)
        out = {"bidder": self.bidder, "valid": self.valid, "baseline": num(self.baseline),
               "deviation_pct": num(self.deviation_pct), "price_score": num(self.price_score), "total": num(self.total),
               "rank": self.rank, "tied": self.tied, "price": num(self.price)}
        if self.invalid_reason:
            out["invalid_reason"] = self.invalid_reason
        if self.factors:
            out["factors"] = {k: num(v) for k, v in self.factors.items()}
        if self.evaluated_price is not None:
            out["evaluated_price"] = num(self.evaluated_price)
        return out


# -- validity and baseline ----------------------------------------------------------------------

def _validity(rule: dict[str, Any], bids: list[Result]) -> None:
    """Bids outside the window around the reference price (招标控制价/标底) are invalid."""
    window = rule.get("validity")
    if not window:
        return
    reference = dec(window.get("reference_price"), "validity.reference_price")
    above, below = window.get("max_above_pct"), window.get("max_below_pct")
    for bid in bids:
        if not bid.valid:
            continue
        if above is not None and bid.price > reference * (1 + dec(above, "validity.max_above_pct") / HUNDRED):
            bid.valid, bid.invalid_reason = False, f"more than {above} % above the reference price {reference}"
        elif below is not None and bid.price < reference * (1 - dec(below, "validity.max_below_pct") / HUNDRED):
            bid.valid, bid.invalid_reason = False, f"more than {below} % below the reference price {reference}"


def baseline(spec: dict[str, Any], bids: list[Result]) -> Decimal:
    """评标基准价 from the valid bids (or all bids, or a reference price), trimmed, × factor,
    rounded to ``round`` places (default 2)."""
    source = spec.get("from", "mean_valid")
    valid = sorted(b.price for b in bids if b.valid)
    if source == "reference":
        value = dec(spec.get("reference_price"), "price.baseline.reference_price")
    else:
        prices = sorted(b.price for b in bids) if source == "mean_all" else valid
        if not prices:
            raise RuleError("no valid bid to take a baseline from")
        trim = spec.get("trim") or {}
        if trim and len(prices) >= int(trim.get("when_at_least", 0)):
            high, low = int(trim.get("highest", 0)), int(trim.get("lowest", 0))
            if len(prices) > high + low:
                prices = prices[low:len(prices) - high]
        if source == "lowest_valid":
            value = prices[0]
        elif source in ("mean_valid", "mean_all"):
            value = sum(prices, Decimal(0)) / len(prices)
        else:
            raise RuleError(f"price.baseline.from: {source!r} is not one of mean_valid, mean_all, lowest_valid, reference")
    value *= dec(spec.get("factor", 1), "price.baseline.factor")
    return round_half_up(value, int(spec.get("round", 2)))


# -- price scores -------------------------------------------------------------------------------

def _ratio_to_lowest(spec: dict[str, Any], bids: list[Result]) -> None:
    """财政部令第87号 第五十五条: the lowest valid price is the baseline and scores full points;
    the others (baseline / price) × points."""
    points = dec(spec.get("points"), "price.points")
    places = int(spec.get("round", 2))
    valid = [b for b in bids if b.valid]
    if not valid:
        return
    low = min(b.price for b in valid)
    for bid in valid:
        bid.baseline = low
        bid.deviation_pct = round_half_up((bid.price - low) / low * HUNDRED, int(spec.get("pct_round", 2)))
        bid.price_score = round_half_up(low / bid.price * points, places)


def _steps(deviation: Decimal, mode: str, pct_places: int | None) -> Decimal:
    """How many 1 % steps a deviation (in %, absolute) counts for."""
    if pct_places is not None:
        deviation = round_half_up(deviation, pct_places)
    if mode == "whole_started":  # 不足1%的按1%计
        return deviation.to_integral_value(rounding=ROUND_CEILING)
    if mode == "truncate":  # 不足1%的不计
        return deviation.to_integral_value(rounding=ROUND_DOWN)
    if mode == "proportional":  # 按插入法（线性）计算
        return deviation
    raise RuleError(f"price.steps: {mode!r} is not one of whole_started, truncate, proportional")


def _deduction(spec: dict[str, Any], bids: list[Result]) -> None:
    """Points at the baseline, minus points per 1 % above and per 1 % below it
    (偏差率 = 100 % × (报价 − 评标基准价) / 评标基准价, 《标准施工招标文件》评标办法)."""
    points = dec(spec.get("points"), "price.points")
    above = dec(spec.get("above_per_pct"), "price.above_per_pct")
    below = dec(spec.get("below_per_pct"), "price.below_per_pct")
    mode = spec.get("steps", "proportional")
    pct_places = spec.get("pct_round")
    pct_places = int(pct_places) if pct_places is not None else None
    places = int(spec.get("round", 2))
    floor = dec(spec.get("floor", 0), "price.floor")
    max_deduction = spec.get("max_deduction_above"), spec.get("max_deduction_below")
    base = baseline(spec.get("baseline") or {}, bids)
    for bid in bids:
        if not bid.valid:
            continue
        deviation = (bid.price - base) / base * HUNDRED
        steps = _steps(abs(deviation), mode, pct_places)
        per, cap = (above, max_deduction[0]) if deviation > 0 else (below, max_deduction[1])
        deduction = steps * per
        if cap is not None:
            deduction = min(deduction, dec(cap, "price.max_deduction"))
        bid.baseline = base
        bid.deviation_pct = round_half_up(deviation, pct_places if pct_places is not None else 2)
        bid.price_score = round_half_up(max(floor, points - deduction), places)


PRICE_METHODS = {"ratio_to_lowest": _ratio_to_lowest, "deduction": _deduction}


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
            out.append({"expert": expert, "score": float(v), "reason": "beyond_mean",
                        "deviation_pct": float(round_half_up((v - mean) / mean * HUNDRED, 2))})
        elif below_pct_of_max is not None and v < top * dec(below_pct_of_max, "below_pct_of_max") / HUNDRED:
            out.append({"expert": expert, "score": float(v), "reason": "below_share_of_max"})
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

def _bids(data: Any) -> list[dict[str, Any]]:
    bids = data.get("bids") if isinstance(data, dict) else data
    if not isinstance(bids, list) or not bids:
        raise RuleError("bids: a non-empty list of {bidder, price, …}")
    names = [str(b.get("bidder")) for b in bids if isinstance(b, dict)]
    if len(names) != len(bids) or len(set(names)) != len(names):
        raise RuleError("bids: each bid is an object with a unique bidder")
    return bids


def score(rule: dict[str, Any], bid_data: Any) -> list[Result]:
    if not isinstance(rule, dict) or rule.get("format") != FORMAT:
        raise RuleError(f"format: a rule must say \"format\": \"{FORMAT}\"")
    bids = _bids(bid_data)
    results = [Result(bidder=str(b["bidder"]), price=dec(b.get("price"), f"bids[{b['bidder']}].price"),
                      valid=b.get("valid", True) is not False,
                      invalid_reason=None if b.get("valid", True) is not False else str(b.get("invalid_reason", "not valid")))
               for b in bids]
    for r in results:
        if r.price <= 0:
            raise RuleError(f"bids[{r.bidder}].price: must be positive")
    _validity(rule, results)
    method = rule.get("method")
    places = int(rule.get("round", 2))
    if method == "lowest_evaluated_price":
        for r, b in zip(results, bids):
            if r.valid:
                adjustments = b.get("adjustments") or []
                r.evaluated_price = r.price + sum((dec(a.get("amount"), f"bids[{r.bidder}].adjustments") for a in adjustments),
                                                  Decimal(0))
                r.total = round_half_up(r.evaluated_price, places)
        rank(results, higher_is_better=False)
        return results
    if method != "comprehensive":
        raise RuleError(f"method: {method!r} is not one of comprehensive, lowest_evaluated_price")
    price = rule.get("price") or {}
    if price.get("kind") not in PRICE_METHODS:
        raise RuleError(f"price.kind: {price.get('kind')!r} is not one of {', '.join(PRICE_METHODS)}")
    PRICE_METHODS[price["kind"]](price, results)
    agg = rule.get("aggregation") or {}
    agg_method, agg_places = agg.get("method", "mean"), int(agg.get("round", 2))
    weights = rule.get("weights")
    for r, b in zip(results, bids):
        if not r.valid:
            continue
        for name in rule.get("factors", []):
            if name not in (b.get("scores") or {}):
                raise RuleError(f"bids[{r.bidder}].scores: no score for factor {name!r}")
            r.factors[name] = factor_score(b["scores"][name], agg_method, agg_places, f"bids[{r.bidder}].scores.{name}")
        parts = {"price": r.price_score or Decimal(0), **r.factors}
        if weights:
            unknown = set(weights) - set(parts)
            if unknown:
                raise RuleError(f"weights: no factor named {', '.join(sorted(unknown))} (factors: {', '.join(parts)})")
            total = sum((dec(w, f"weights.{k}") * parts[k] for k, w in weights.items()), Decimal(0))
        else:
            total = sum(parts.values(), Decimal(0))
        r.total = round_half_up(total, places)
    rank(results, higher_is_better=True)
    return results
