"""Words are not math: find the word in a reference or an answer, and read decimal commas.

LaTeX reads `listen` as the product l·i·s·t·e·n, so any two anagrams (`listen`/`silent`,
`Paris`/`pairs`, `forty two`/`two forty`) would be "equal". math-verify itself does not parse
bare words at all (its `parse("Paris")` is empty, and TRL's accuracy reward then skips the
item); inside `$…$` or `\\boxed{…}` it does read them as products. Here a run of two or more
letters that is not a LaTeX command, not inside `\\text{…}`-like groups (units) and not a
name mathematicians write without a backslash (`sin`, `log`, `pi`) is a word: anywhere in
text without math delimiters, and inside the math of text with them (prose around `$5$` is
what math-verify skips anyway). A product of variables is written with an operator or a space
(`a*b`, `a b`), never `ab`.

Everything here is one left-to-right pass: the tokenizer consumes each run whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A LaTeX command, an escaped character, a math delimiter, a run of letters (any script) or a
# brace: each match consumes its run.
_TOKEN = re.compile(r"\\[A-Za-z]+|\\[^A-Za-z]|\$\$?|[^\W\d_]+|[{}]")
_OPEN_MATH, _CLOSE_MATH = frozenset({"\\(", "\\["}), frozenset({"\\)", "\\]"})
_BOX_COMMANDS = frozenset({"\\boxed", "\\fbox"})

# Commands whose braced argument is prose, a unit or an environment's name, not math
# (`5\text{ cm}`, `\begin{pmatrix}`).
_TEXT_COMMANDS = frozenset({
    "\\text", "\\textrm", "\\textit", "\\textbf", "\\textnormal", "\\mathrm", "\\mbox",
    "\\operatorname", "\\begin", "\\end",
})

# Names written without a backslash in plain-text answers; math-verify reads these as math.
MATH_NAMES = frozenset({
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "log", "ln", "lg", "exp", "sqrt", "pi", "inf", "infty", "infinity", "oo", "lim", "max", "min",
    "gcd", "lcm", "mod", "det",
})

# One comma between two digit runs, alone: `1,22`, `0,5`, `3,14159` (not `1,234,567`). Only
# ever applied to plain numbers, which are at most 64 characters long.
_COMMA_NUMBER = re.compile(r"(?<![\d,.])(\d+),(\d+)(?![\d,.])")


def first_word(text: str, delimited: bool = False) -> str | None:
    """The first word in `text` (see the module docstring), or None when it has none.

    With `delimited`, `text` holds math delimiters, and only what lies inside them ($…$, \\(…\\),
    \\[…\\], \\boxed{…}) is read: math-verify extracts the math and ignores prose around it
    ("The answer is $5$").

    Example:
        >>> first_word("\\\\frac{1}{2}\\\\pi"), first_word("forty two"), first_word("5\\\\text{ cm}")
        (None, 'forty', None)
        >>> first_word("The answer is $5$", delimited=True), first_word("so $listen$", delimited=True)
        (None, 'listen')
    """
    scan = _Scan(delimited)
    for m in _TOKEN.finditer(text):
        token = m.group()
        if scan.structure(token) or not scan.reading_math():
            continue
        if len(token) >= 2 and token.casefold() not in MATH_NAMES:
            return token
    return None


@dataclass
class _Scan:
    """Where a left-to-right pass is: inside math or not, inside a `\\text`-like group or not."""

    delimited: bool
    groups: list[str] = field(default_factory=list)  # kind of each open brace: text, box or ""
    texts: int = 0  # open \\text-like groups
    boxes: int = 0  # open \\boxed groups
    pending: str = ""  # the kind the next "{" opens
    dollar: bool = False
    bracketed: bool = False  # inside \\( \\) or \\[ \\]

    def reading_math(self) -> bool:
        if self.texts:
            return False
        return not self.delimited or self.dollar or self.bracketed or self.boxes > 0

    def structure(self, token: str) -> bool:
        """Take in a token; False when it is a run of letters (a candidate word)."""
        kind, self.pending = self.pending, ""
        if token == "{":
            self.groups.append(kind)
            self.texts += kind == "text"
            self.boxes += kind == "box"
        elif token == "}":
            closed = self.groups.pop() if self.groups else ""
            self.texts -= closed == "text"
            self.boxes -= closed == "box"
        elif token in ("$", "$$"):
            self.dollar = not self.dollar
        elif token in _OPEN_MATH or token in _CLOSE_MATH:
            self.bracketed = token in _OPEN_MATH
        elif token.startswith("\\"):
            self.pending = "text" if token in _TEXT_COMMANDS else "box" if token in _BOX_COMMANDS else ""
        else:
            return False
        return True


def with_decimal_point(number: str) -> str:
    """A plain number with its decimal comma written as a point; other text unchanged.

    A comma before exactly three digits is a thousands separator (`1,234`), as math-verify's
    default reads it, unless the whole part is 0 (`0,125`). Any other lone comma is decimal:
    math-verify's default reads `1,22` as 1.22, as here, but `3,14159` as 3141 (a fragment),
    which this reads as 3.14159.

    Example:
        >>> with_decimal_point("1,22 $"), with_decimal_point("1,234"), with_decimal_point("0,125")
        ('1.22 $', '1,234', '0.125')
    """
    return _COMMA_NUMBER.sub(_decimal, number)


def _decimal(m: re.Match[str]) -> str:
    whole, fraction = m.groups()
    if len(fraction) == 3 and whole != "0":
        return m.group()
    return f"{whole}.{fraction}"
