"""The scoring rule and bids files, as a schema: every field's type, range and meaning. A file
that breaks it is refused whole, naming each field at fault (``price.baseline.factor: must be
greater than 0``, ``bids[2].bidder: required``); nothing is scored from a rule that does not make
sense. docs/scoring.md publishes this schema (`json_schemas`) and each field's source.

Numbers are exact decimals: JSON numbers are read as decimals (never binary floats), and a
number may also be written as a string (``"0.95"``). Booleans are JSON ``true``/``false`` only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

FORMAT = "site-appliance/scoring-rule/v1"
MAX_AMOUNT = Decimal(10) ** 15  # yuan: far beyond any bid (a thousand trillion)

Places = Annotated[int, Field(ge=0, le=6, strict=True, description="Decimal places to round to (0–6).")]
Amount = Annotated[Decimal, Field(gt=0, lt=MAX_AMOUNT, decimal_places=6, description="An amount in yuan, more than 0.")]
SignedAmount = Annotated[Decimal, Field(gt=-MAX_AMOUNT, lt=MAX_AMOUNT, decimal_places=6)]
Points = Annotated[Decimal, Field(gt=0, le=1000, decimal_places=6)]
NonNegative = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, decimal_places=6)]
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=6)]
Weight = Annotated[Decimal, Field(gt=0, le=1000, decimal_places=6, description="A share of the total, e.g. 0.4 for 40 %.")]
Score = Annotated[Decimal, Field(ge=0, le=10_000, decimal_places=6)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Offered = Annotated[Decimal, Field(gt=-MAX_AMOUNT, lt=MAX_AMOUNT, decimal_places=6)]


class RuleError(ValueError):
    """A rule or bid list that cannot be scored; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Trim(_Strict):
    highest: int = Field(default=0, ge=0, le=10, strict=True, description="Highest bids left out.")
    lowest: int = Field(default=0, ge=0, le=10, strict=True, description="Lowest bids left out.")
    when_at_least: int = Field(default=0, ge=0, le=1000, strict=True, description="Only from this many bids on.")


class Baseline(_Strict):
    source: Literal["mean_valid", "mean_all", "lowest_valid", "reference"] = Field(
        default="mean_valid", alias="from", description="评标基准价 from: the valid bids' mean, all bids' mean, the "
        "lowest valid bid, or a reference price (标底).")
    reference_price: Amount | None = None
    trim: Trim | None = None
    factor: Annotated[Decimal, Field(gt=0, le=10, decimal_places=6)] = Field(
        default=Decimal(1), description="下浮系数 K: the baseline × K (more than 0).")
    round: Places = 2

    @model_validator(mode="after")
    def _reference(self) -> "Baseline":
        if self.source == "reference" and self.reference_price is None:
            raise ValueError("from 'reference' needs reference_price")
        return self


class Price(_Strict):
    kind: Literal["ratio_to_lowest", "deduction"]
    points: Points = Field(description="The price factor's points (its weight folded in).")
    baseline: Baseline = Field(default_factory=Baseline)
    above_per_pct: NonNegative | None = Field(default=None, description="deduction: points off per 1 % above the baseline.")
    below_per_pct: NonNegative | None = Field(default=None, description="deduction: points off per 1 % below the baseline.")
    steps: Literal["whole_started", "truncate", "proportional"] = "proportional"
    pct_round: Places | None = None
    max_deduction_above: NonNegative | None = None
    max_deduction_below: NonNegative | None = None
    floor: NonNegative = Decimal(0)
    round: Places = 2

    @model_validator(mode="after")
    def _deduction(self) -> "Price":
        if self.kind == "deduction" and (self.above_per_pct is None or self.below_per_pct is None):
            raise ValueError("a deduction needs above_per_pct and below_per_pct")
        if self.floor > self.points:
            raise ValueError("floor is above points")
        return self


class Validity(_Strict):
    reference_price: Amount = Field(description="招标控制价 / 标底 the window is around.")
    max_above_pct: Percent | None = None
    max_below_pct: Percent | None = None


class Aggregation(_Strict):
    method: Literal["mean", "trimmed_mean"] = "mean"
    round: Places = 2


class Rate(_Strict):
    """What each unit of difference adds to the evaluated price: a fixed amount, or a percentage
    of the bid's own price (negative: it lowers the evaluated price)."""

    amount: SignedAmount | None = None
    pct_of_price: Annotated[Decimal, Field(ge=-100, le=100, decimal_places=6)] | None = None

    @model_validator(mode="after")
    def _one(self) -> "Rate":
        if (self.amount is None) == (self.pct_of_price is None):
            raise ValueError("give exactly one of amount or pct_of_price")
        return self


class AdjustmentRule(_Strict):
    """A price-adjustment rule of the tender documents (经评审的最低投标价法): the bid's offered value
    against the required one, so much per unit of difference."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    name: Name = Field(description="As the tender documents say, e.g. 工期.")
    offered: Name = Field(description="The key of the bid's offered value (bids[].offered), e.g. 工期（月）.")
    required: Offered = Field(description="The value the tender documents require or take as the reference.")
    unit: Annotated[Decimal, Field(gt=0, le=MAX_AMOUNT, decimal_places=6)] = Field(
        default=Decimal(1), description="The size of one unit of difference (1 month, 1 percentage point, 1 item).")
    unit_name: Annotated[str, StringConstraints(max_length=20)] = Field(default="", description="e.g. 个月, 项, 个百分点.")
    count: Literal["whole_started", "truncate", "proportional"] = Field(
        default="whole_started", description="A part unit: counted whole (不足1个按1个计), not counted, or in proportion.")
    above: Rate | None = Field(default=None, description="Per unit the offer is above the required value.")
    below: Rate | None = Field(default=None, description="Per unit the offer is below the required value.")
    cap: NonNegative | None = Field(default=None, description="At most this much, added or taken off, by this rule.")

    @model_validator(mode="after")
    def _some(self) -> "AdjustmentRule":
        if self.above is None and self.below is None:
            raise ValueError("give above, below or both")
        return self


class Rule(_Strict):
    format: Literal["site-appliance/scoring-rule/v1"]
    method: Literal["comprehensive", "lowest_evaluated_price"]
    source: str | None = Field(default=None, description="Where the rule comes from (free text).")
    name: str | None = None
    validity: Validity | None = None
    price: Price | None = None
    factors: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=50)
    aggregation: Aggregation = Field(default_factory=Aggregation)
    weights: dict[str, Weight] | None = Field(default=None, description="Shares of the total that add up to exactly 1.")
    adjustments: list[AdjustmentRule] = Field(default_factory=list, max_length=50)
    round: Places = 2

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        if len(set(self.factors)) != len(self.factors) or "price" in self.factors:
            raise ValueError("factors: unique names, and not 'price'")
        if self.method == "comprehensive" and self.price is None:
            raise ValueError("price: a comprehensive rule needs its price rule")
        if self.method == "lowest_evaluated_price" and (self.factors or self.weights):
            raise ValueError("the lowest evaluated price has no factors or weights")
        if self.adjustments and self.method != "lowest_evaluated_price":
            raise ValueError("adjustments belong to the lowest evaluated price")
        ids = [a.id for a in self.adjustments]
        if len(set(ids)) != len(ids):
            raise ValueError("adjustments: unique ids")
        if self.weights is not None:
            parts = {"price", *self.factors}
            if set(self.weights) != parts:
                missing, unknown = parts - set(self.weights), set(self.weights) - parts
                raise ValueError("weights: one for each of price and the factors"
                                 + (f"; none for {', '.join(sorted(missing))}" if missing else "")
                                 + (f"; no factor named {', '.join(sorted(unknown))}" if unknown else ""))
            total = sum(self.weights.values(), Decimal(0))
            if any(w > 1 for w in self.weights.values()):
                raise ValueError(f"weights: shares from 0 to 1 that add up to 1; these add up to {total} "
                                 "(write 40 % as 0.4)")
            if total != 1:
                raise ValueError(f"weights: they add up to {total}, not exactly 1 (write 40 % as 0.4)")
        return self


ScoreValue = Score | list[Score] | dict[str, Score | list[Score]]


class Adjustment(_Strict):
    """An adjustment worked out by hand (the committee's own figure, with its reason)."""

    reason: Name
    amount: SignedAmount


class Bid(_Strict):
    bidder: Name
    price: Amount
    valid: bool = Field(default=True, strict=True, description="false: it failed compliance or qualification.")
    invalid_reason: str | None = None
    scores: dict[str, ScoreValue] = Field(default_factory=dict)
    offered: dict[str, Offered] = Field(default_factory=dict, description="The bid's offered values the adjustment "
                                        "rules read, e.g. {\"工期（月）\": 16}.")
    adjustments: list[Adjustment] = Field(default_factory=list, max_length=100)


class Bids(_Strict):
    bids: list[Bid] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _unique(self) -> "Bids":
        names = [b.bidder for b in self.bids]
        if len(set(names)) != len(names):
            raise ValueError("each bid has a unique bidder")
        return self


def _where(loc: tuple[Any, ...], prefix: str) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("function-after", "function-before") and not str(part).startswith(("decimal", "list[", "dict[",
                                                                                                   "constrained-")):
            out += f".{part}" if out else str(part)
    return out or "(the file)"


def _message(error: dict[str, Any]) -> str:
    kind, msg = error.get("type", ""), str(error.get("msg", ""))
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "not a field of this format (a typing error?)"
    return msg.removeprefix("Value error, ")


def _problems(exc: ValidationError, prefix: str) -> str:
    seen: list[str] = []
    for error in exc.errors():
        line = f"{_where(tuple(error.get('loc', ())), prefix)}: {_message(error)}"
        if line not in seen:
            seen.append(line)
    return "; ".join(seen[:10]) + (f"; and {len(seen) - 10} more" if len(seen) > 10 else "")


def parse_rule(data: Any) -> Rule:
    if isinstance(data, Rule):
        return data
    if not isinstance(data, dict):
        raise RuleError("the rule: a JSON object")
    if data.get("format") != FORMAT:
        raise RuleError(f"format: a rule must say \"format\": \"{FORMAT}\"")
    try:
        return Rule.model_validate(data)
    except ValidationError as exc:
        raise RuleError(_problems(exc, "")) from exc


def parse_bids(data: Any) -> Bids:
    if isinstance(data, list):
        data = {"bids": data}
    if not isinstance(data, dict):
        raise RuleError("bids: a JSON object {\"bids\": [...]} or a list of bids")
    try:
        return Bids.model_validate(data)
    except ValidationError as exc:
        raise RuleError(_problems(exc, "")) from exc


def json_schemas() -> dict[str, Any]:
    """The published schemas of the two files (docs/scoring.schema.json)."""
    return {"rule": Rule.model_json_schema(by_alias=True), "bids": Bids.model_json_schema(by_alias=True)}
