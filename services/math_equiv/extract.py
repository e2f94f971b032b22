"""Plain-text steps of math_equiv: find the final answer, classify it, match multiple-choice options.

Nothing here imports sympy or math-verify: these run in the service process, on model output,
and must stay cheap and unable to hang: each pattern is linear or only ever sees short text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from services.common.tags import last_loose_block

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")

# A number as people write a final answer: thousands separators, a sign, a currency, a unit or
# percent or degree after it. math-verify reads these correctly as written; anything else is
# LaTeX or an expression and is read inside $...$ (see worker.parse_answer).
# A lone comma may be a decimal comma (`1,22`); words.with_decimal_point reads it.
_NUMBER = r"[-+]?(?:\d{1,3}(?:[ ,]\d{3})+(?:\.\d+)?|\d+,\d+|\d+(?:\.\d+)?|\.\d+)"
_UNIT = r"(?:%|°|(?:\s*[A-Za-z]{2,}|\s+[A-Za-z])(?:\s+[A-Za-z]+)*(?:\s*/\s*[A-Za-z]+)?(?:\^?[23]|[²³])?)"
_CURRENCY = r"[$€£¥]"
_PLAIN = re.compile(rf"{_CURRENCY}?\s*{_NUMBER}\s*(?:{_UNIT}|{_CURRENCY})?\.?")
_PLAIN_MAX_CHARS = 64
# Delimiters math-verify finds by itself; wrapping such text in $...$ again would break it.
_DELIMITED = re.compile(r"\$|\\\(|\\\[|\\boxed|\\fbox")

# Matched against stripped text; no two adjacent quantifiers can trade characters.
_LETTER = re.compile(r"\(?([A-Za-z])\)?[.:]?")
_LETTER_THEN_TEXT = re.compile(r"\(?([A-Za-z])[).:]\s*(.+)", re.DOTALL)


def extract_answer(completion: str, tag: str) -> str | None:
    r"""The final answer: the last `<tag>…</tag>`, else the last `\boxed{…}`; None when neither.

    Args:
        completion: the model's text.
        tag: the answer tag's name, matched case-insensitively (`answer`, `SOLUTION`).

    Returns:
        The answer's text, stripped, or None when there is no non-empty answer.

    Example:
        >>> extract_answer("<answer>1</answer> so <answer> 2 </answer>", "answer")
        '2'
        >>> extract_answer(r"so $\boxed{\frac{1}{2}}$", "answer")
        '\\frac{1}{2}'
    """
    answer = _last_tag(completion, tag)
    if answer is None:
        answer = last_boxed(completion)
    if answer is None or not answer.strip():
        return None
    return answer.strip()


def _last_tag(text: str, tag: str) -> str | None:
    # The opening tag nearest before the last closing one: `<a>x <a>y</a>` answers "y". A scanner,
    # not `re`: `< answer >` and `</ANSWER>` count, and no input can make it backtrack.
    content = last_loose_block(text, tag)
    return content if content is not None and content.strip() else None


def last_boxed(text: str) -> str | None:
    r"""The content of the last `\boxed{…}` (or `\fbox{…}`) with balanced braces; None if none."""
    starts = [m.end() - 1 for m in _BOXED.finditer(text)]
    if not starts:
        return None
    # One pass pairing every brace, so that many unbalanced \boxed{ cost O(n), not O(n²).
    closing: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch in "{}" and i > 0 and text[i - 1] == "\\":
            continue  # \{ and \} are literal braces (set notation)
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            closing[stack.pop()] = i
    for start in reversed(starts):
        if start in closing:
            return text[start + 1 : closing[start]]
    return None


def is_plain_number(answer: str) -> bool:
    """Whether `answer` is one number with at most a currency, separators and a unit after it."""
    # A plain number is short; the cap also bounds the regex's work on long model output.
    answer = answer.strip()
    return len(answer) <= _PLAIN_MAX_CHARS and _PLAIN.fullmatch(answer) is not None


def is_delimited(answer: str) -> bool:
    r"""Whether `answer` already holds math delimiters ($, \(, \[) or a \boxed."""
    return _DELIMITED.search(answer) is not None


def _norm(text: str) -> str:
    return " ".join(text.split()).rstrip(".").strip().casefold()


def choice_indices(reference: str | Sequence[str], choices: Sequence[str]) -> set[int]:
    """Indices of the options whose text is the reference (case- and space-insensitive)."""
    refs = [reference] if isinstance(reference, str) else list(reference)
    wanted = {_norm(r) for r in refs}
    return {i for i, c in enumerate(choices) if _norm(c) in wanted}


def chosen_index(answer: str, choices: Sequence[str]) -> int | None:
    """The option an answer picks: by its text, by its letter (`B`, `(B)`, `B.`), or by both.

    Text is tried first so that options which are themselves letters keep their meaning. An
    answer naming a letter and a different option's text picks nothing.

    Example:
        >>> chosen_index("(B)", ["3", "4"]), chosen_index("four", ["three", "Four"])
        (1, 1)
    """
    texts = [_norm(c) for c in choices]
    if _norm(answer) in texts:
        return texts.index(_norm(answer))
    answer = answer.strip()
    if m := _LETTER.fullmatch(answer):
        return _letter_index(m.group(1), len(choices))
    if m := _LETTER_THEN_TEXT.fullmatch(answer):
        index = _letter_index(m.group(1), len(choices))
        if index is not None and texts[index] == _norm(m.group(2)):
            return index
    return None


def _letter_index(letter: str, n: int) -> int | None:
    index = ord(letter.upper()) - ord("A")
    return index if 0 <= index < n else None
