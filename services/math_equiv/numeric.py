"""MathVista's numeric answers: integer and float references compared after rounding to a precision.

MathVista (evaluation/calculate_score.py) rounds a float answer to the item's `precision`
decimal places and compares it with the reference; an integer answer is truncated with int().
Here an integer answer is rounded to 0 places instead (12.6 is 13, not 12), and both sides are
rounded half-up in decimal arithmetic, so 2.675 at 2 places is 2.68 on
either side (binary `round` would give 2.67 for one and may not for the other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from services.common.scoring import Scored
from services.math_equiv.worker import Reply

_MAX_PLACES = 15
# Enough digits to quantize any value a 30-digit evalf can print (up to ~1e900) without error.
_WORKING_DIGITS = 1000


def rounded(value: Decimal, places: int) -> Decimal | None:
    """`value` rounded half-up to `places` decimals; None when it is not finite or too large."""
    if not value.is_finite():
        return None
    with localcontext() as ctx:
        ctx.prec = _WORKING_DIGITS
        try:
            return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            return None


@dataclass(frozen=True)
class NumericRule:
    """Compare the answer's value with `gold` at `places` decimals."""

    gold: Decimal
    places: int

    def judge(self, reply: Reply) -> Scored:
        """Read a worker's ("ok", decimal string | None) reply for the answer's value."""
        text = reply[1]
        if text is None:
            return Scored.ok(0.0, "answer_not_a_number")
        value = rounded(Decimal(text), self.places)
        if value is not None and value == self.gold:
            return Scored.ok(1.0)
        return Scored.ok(0.0, "not_equal_at_precision")


def numeric_rule(reference: str, meta: dict[str, Any]) -> NumericRule | Scored | None:
    """The rule for an item whose meta.answer_type is integer or float, if it has one.

    Returns None when the item is not numeric (math-verify decides), a NumericRule, or an
    unscorable Scored naming what is wrong with the reference or the precision. An integer
    answer without a precision is compared at 0 places; a float answer without one is left to
    math-verify's own numeric tolerance.
    """
    answer_type = meta.get("answer_type")
    if answer_type not in ("integer", "float"):
        return None
    precision = meta.get("precision")
    if precision is None:
        if answer_type == "float":
            return None
        precision = 0
    places = _places(precision)
    if places is None:
        return Scored.unscorable(
            f"meta.precision must be a whole number of decimal places from 0 to {_MAX_PLACES}, "
            f"got {precision!r}"
        )
    try:
        gold = rounded(Decimal(reference.replace(",", "")), places)
    except InvalidOperation:
        gold = None
    if gold is None:
        return Scored.unscorable(
            f"meta.answer_type is {answer_type} but the reference {reference[:40]!r} is not a number"
        )
    return NumericRule(gold, places)


def _places(precision: Any) -> int | None:
    if isinstance(precision, bool) or not isinstance(precision, int | float):
        return None
    if not math.isfinite(precision) or precision != int(precision):
        return None
    if not 0 <= precision <= _MAX_PLACES:
        return None
    return int(precision)
