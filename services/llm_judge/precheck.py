"""Checks that score a completion without asking the judge: they cost nothing and cannot be fooled.

Some strings make LLM judges answer "correct" although they say nothing: bare punctuation and
reasoning openers such as "Thought process:" or "Let's solve this problem step by step." (the
"master keys" of Zhao et al., 2025, "One Token to Fool LLM-as-a-Judge", arXiv:2507.08794). A
completion that is only such a string, or whose answer is, gets 0.0 here and never reaches the judge.
"""

from __future__ import annotations

import string
import unicodedata

from services.common.scoring import Scored
from services.llm_judge.rubrics import Rubric

# Normalised: lower case, single spaces, no punctuation at either end.
MASTER_KEYS = frozenset(
    {
        "thought process",
        "let's solve this problem step by step",
        "let's think step by step",
        "let us solve this problem step by step",
        "solution",
        "answer",
        "the answer is",
        "final answer",
        "解",
        "解答",
        "答案",
        "かいせつ",
        "respuesta",
    }
)

_EDGE = string.punctuation + string.whitespace + "：。，、…“”‘’「」"


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").lower()
    return " ".join(text.split()).strip(_EDGE)


def is_vacuous(text: str) -> bool:
    """True for text that says nothing: empty, punctuation only, or a known judge-fooling opener."""
    norm = _normalise(text)
    return not norm or norm in MASTER_KEYS


def precheck(completion: str, rubric: Rubric) -> Scored | None:
    """A 0.0 score when the judge need not (or must not) be asked; None to ask it."""
    if not completion.strip():
        return Scored.ok(0.0, reason="empty completion")
    answer = rubric.answer(completion)
    if answer is None:
        if rubric.requires_answer:
            return Scored.ok(0.0, reason="no answer: the rubric requires an answer block")
        if is_vacuous(completion):
            return Scored.ok(0.0, reason="no answer: only a string known to fool judges")
        return None
    if not answer:
        return Scored.ok(0.0, reason="no answer: the answer block is empty")
    if is_vacuous(answer):
        return Scored.ok(0.0, reason="no answer: the answer is only a string known to fool judges")
    return None
