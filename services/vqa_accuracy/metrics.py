"""Answer metrics other than the official VQA accuracy: ANLS, exact, partial credit, fuzzy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from services.vqa_accuracy.normalize import lower_collapse, normalize_text

# "paper": a similarity equal to the threshold scores 0; "docvqa": it is kept.
AnlsBoundary = Literal["paper", "docvqa"]


def anls(
    prediction: str, references: Sequence[str], threshold: float = 0.5, boundary: AnlsBoundary = "paper"
) -> float:
    """Average Normalized Levenshtein Similarity of one answer: the best over `references`.

    Per reference, NL = Levenshtein(p, r) / max(|p|, |r|) after lower-casing and collapsing
    white space; the score is 1 - NL when NL < 1 - `threshold`, else 0. `threshold` is the
    similarity cut, so the published tau = 0.5 is threshold = 0.5 (a similarity of exactly 0.5
    scores 0, as in the paper). With `boundary="docvqa"` a similarity equal to the threshold is
    kept, as the DocVQA / RRC leaderboard evaluation script does (`if question_result <
    threshold: question_result = 0`). Two empty strings are identical (1.0).

    Example:
        >>> anls("a zero", ["zero"])
        0.6666666666666667

    References:
        Biten et al., "Scene Text Visual Question Answering", ICCV 2019; the Robust Reading
        Competition's DocVQA evaluation script (rrc.cvc.uab.es, task 1), for `boundary="docvqa"`.
    """
    tau = 1.0 - threshold
    pred = lower_collapse(prediction)
    best = 0.0
    for ref in map(lower_collapse, references):
        longest = max(len(pred), len(ref))
        nl = Levenshtein.distance(pred, ref) / longest if longest else 0.0
        kept = nl < tau if boundary == "paper" else 1.0 - nl >= threshold
        if kept:
            best = max(best, 1.0 - nl)
    return best


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference, else 0.0."""
    pred = normalize_text(prediction)
    return float(any(pred == normalize_text(r) for r in references))


def _partial_one(pred: str, pred_words: set[str], ref: str) -> tuple[float, float]:
    ref_words = ref.split()
    if pred == ref:
        return 1.0, 1.0
    if not ref_words:
        return 0.0, 0.0
    overlap = sum(w in pred_words for w in ref_words) / len(ref_words)
    return (0.5 if overlap >= 0.5 else 0.0), overlap


def partial_credit(prediction: str, references: Sequence[str]) -> tuple[float, float]:
    """The ViVQA-X rule on [0, 1]: best over references of 1.0 / 0.5 / 0.0.

    1.0 for an exact match after `normalize_text`; 0.5 when at least half of the reference's
    words (counted with repeats) occur in the prediction; else 0.0.

    Returns:
        (score, overlap): the score and the best share of reference words found.

    Example:
        >>> partial_credit("con mèo màu đen", ["con mèo"])
        (0.5, 1.0)
    """
    pred = normalize_text(prediction)
    pred_words = set(pred.split())
    results = [_partial_one(pred, pred_words, normalize_text(r)) for r in references]
    return max(s for s, _ in results), max(o for _, o in results)


def fuzzy_similarity(prediction: str, references: Sequence[str]) -> float:
    """rapidfuzz `fuzz.ratio` (normalised Indel similarity) / 100 to the closest reference,
    both sides passed through `normalize_text` first."""
    pred = normalize_text(prediction)
    return max(fuzz.ratio(pred, normalize_text(r)) for r in references) / 100.0


def fuzzy_score(prediction: str, references: Sequence[str], threshold: float) -> tuple[float, float]:
    """(score, similarity): the similarity, or 0.0 when it falls below `threshold`."""
    sim = fuzzy_similarity(prediction, references)
    return (sim if sim >= threshold else 0.0), sim
