"""Text handling shared by the answer metrics: answer extraction and the two normalisations."""

from __future__ import annotations

import unicodedata

from services.common.tags import last_block

_ARTICLES = frozenset({"a", "an", "the"})


def extract_answer(completion: str, tag: str) -> tuple[str, bool]:
    """The content of the last `<tag>...</tag>` in `completion`, else the whole completion.

    Returns the stripped answer and whether a tag was found. The last tag wins because a model
    that drafts and then corrects itself means its final answer.

    Example:
        >>> extract_answer("<think>maybe 3</think><answer> 4 </answer>", "answer")
        ('4', True)
    """
    found = last_block(completion, tag)  # linear: no regex backtracking on model output
    if found is not None:
        return found.strip(), True
    return completion.strip(), False


def lower_collapse(text: str) -> str:
    """Lower-case and collapse white space: the only normalisation ANLS applies."""
    return " ".join(text.lower().split())


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def normalize_text(text: str) -> str:
    """NFC, case-fold, drop punctuation and English articles, collapse white space.

    Diacritics survive (NFC composes them, case-folding keeps them), so Vietnamese "màu đỏ"
    and "mau do" stay different answers. Punctuation is deleted, not blanked, as SQuAD does:
    "1,000" is "1000" and "don't" is "dont".

    Example:
        >>> normalize_text("  The  Màu ĐỎ! ")
        'màu đỏ'
    """
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    no_punct = "".join(ch for ch in folded if not _is_punctuation(ch))
    return " ".join(w for w in no_punct.split() if w not in _ARTICLES)
