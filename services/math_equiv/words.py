"""Words are not math: find the word in a reference or an answer, and read decimal commas.

LaTeX reads `listen` as the product l·i·s·t·e·n, so any two anagrams (`listen`/`silent`,
`Paris`/`pairs`, `forty two`/`two forty`) would be "equal". math-verify itself does not parse
bare words at all (its `parse("Paris")` is empty, and TRL's accuracy reward then skips the
item); inside `$…$` or `\\boxed{…}` it does read them as products. Here a run of two or more
letters that is not a LaTeX command, not inside `\\text{…}`-like groups (units) and not a
name mathematicians write without a backslash (`sin`, `log`, `pi`) is a word, wherever it is.
A product of variables is written with an operator or a space (`a*b`, `a b`), never `ab`.

Everything here is one left-to-right pass: the tokenizer consumes each run whole.
"""

from __future__ import annotations

import re

# A LaTeX command, a run of letters (any script), or a brace: each match consumes its run.
_TOKEN = re.compile(r"\\[A-Za-z]+|[^\W\d_]+|[{}]")

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


def first_word(text: str) -> str | None:
    """The first word in `text` (see the module docstring), or None when it has none.

    Example:
        >>> first_word("\\\\frac{1}{2}\\\\pi"), first_word("forty two"), first_word("5\\\\text{ cm}")
        (None, 'forty', None)
    """
    depth = 0  # brace depth inside a \\text-like group; 0 when outside one
    pending_text = False
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token == "{":
            if depth or pending_text:
                depth += 1
            pending_text = False
            continue
        if token == "}":
            depth = max(depth - 1, 0)
            continue
        pending_text = token in _TEXT_COMMANDS
        if depth or token.startswith("\\"):
            continue
        if len(token) >= 2 and token.casefold() not in MATH_NAMES:
            return token
    return None


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
