"""The format rules themselves: pure functions from a completion to a score and what was found."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import re2

Mode = Literal[
    "think_answer", "reasoning_solution", "think_answer_explain", "tags", "pattern",
    # Other trainers' rewards, reproduced exactly (services.regex_format.presets).
    "trl_think_format", "openr1_format", "openr1_tag_count",
]

PRESET_TAGS: dict[str, tuple[str, ...]] = {
    "think_answer": ("think", "answer"),
    "think_answer_explain": ("think", "answer", "explain"),
}
TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Verdict:
    score: float
    parts: dict[str, float]


def block_found(text: str, tag: str) -> bool:
    """Exactly one `<tag>` and one `</tag>`, in that order, with non-blank content between."""
    opening, closing = f"<{tag}>", f"</{tag}>"
    if text.count(opening) != 1 or text.count(closing) != 1:
        return False
    start, end = text.index(opening), text.index(closing)
    return start < end and bool(text[start + len(opening):end].strip())


def _in_sequence(text: str, tags: tuple[str, ...]) -> bool:
    """Whether `text` is the blocks of `tags` in order with only white space between them.

    Each tag's opening and closing appear exactly once (the caller checked), so a plain scan
    decides what `\\s*`.join(`<t>(.*?)</t>`) fullmatch would, in linear time and without `re`.
    Uniqueness also means no block can hold another tracked tag: each one's only occurrence
    is its own place in the sequence.
    """
    pos = 0
    for i, tag in enumerate(tags):
        opening, closing = f"<{tag}>", f"</{tag}>"
        start = text.index(opening)
        gap = text[pos:start]
        if start < pos or (gap and (i == 0 or not gap.isspace())):
            return False
        # Content is non-blank (block_found), so each closing comes after its own opening.
        pos = text.index(closing) + len(closing)
    return pos == len(text)


def strict_tags(completion: str, tags: tuple[str, ...], partial: bool = False) -> Verdict:
    """1.0 iff the stripped completion is exactly the tag blocks in order, white space between.

    Each block appears once with non-blank content; none contains a tracked tag (nesting or
    repetition); nothing stands before, after or between the blocks but white space. With
    `partial`, a completion that fails the rule earns up to 0.5 for the blocks it did get right.
    """
    text = completion.strip()
    parts = {t: float(block_found(text, t)) for t in tags}
    ok = all(parts.values()) and _in_sequence(text, tags)
    if ok:
        return Verdict(1.0, parts)
    return Verdict(0.5 * sum(parts.values()) / len(tags) if partial else 0.0, parts)


def reasoning_solution(completion: str) -> Verdict:
    """The MathVista / Gemma-3 rule: 0.5 per block present exactly once, anywhere."""
    parts = {t: float(block_found(completion, t)) for t in ("REASONING", "SOLUTION")}
    return Verdict(0.5 * sum(parts.values()), parts)


class PatternError(ValueError):
    pass


@lru_cache(maxsize=128)
def compile_pattern(pattern: str) -> re2._Regexp:
    """Compile with RE2: linear-time matching, so no pattern can backtrack catastrophically."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 8 << 20
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        msg = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(
            f"pattern is not supported by RE2 ({msg}); backreferences and lookaround are not available"
        ) from None


def pattern_match(completion: str, pattern: str, how: Literal["full", "search"]) -> Verdict:
    regex = compile_pattern(pattern)
    text = completion.strip()
    hit = regex.fullmatch(text) if how == "full" else regex.search(text)
    return Verdict(float(hit is not None), {"match": float(hit is not None)})
