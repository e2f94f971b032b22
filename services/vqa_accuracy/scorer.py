"""The vqa_accuracy scorer: one short answer against its reference answers, by the metric a request picks.

What a list reference is (`params.references`):
    accepted    (default) a set of accepted answers: any of them is right, so every mode scores
                the best match over the list ("Paris" against ["Paris", "Paris", "Paris"] is 1.0;
                "Ha Noi" against ["Hà Nội", "Ha Noi"] is 1.0). This is what VLM-R1, EasyR1 and TRL
                examples mean by a list of answers, and what a single answer already meant.
    annotators  the answers of several human annotators, as in VQA v2 (ten per question): `vqa`
                then applies the official VQA accuracy (min(1, matches/3) averaged over the
                leave-one-out subsets), so lists shorter than four cap below 1.0 (two answers:
                1/3; three: 2/3), exactly as the official code would. The other modes' published
                metrics already take the best match over annotators' answers (ANLS does), so for
                them the two readings score alike.
    The parameter names the data, not the formula, so a recipe reads as what its references are
    (`params: {mode: vqa, references: annotators}`) and a list never changes meaning because of
    its length; each result's parts say which reading scored it (`accepted` or `annotators`: the
    number of reference answers), next to `matches` in `vqa` mode.

Modes (`params.mode`, default VQA_ACCURACY_DEFAULT_MODE):
    vqa      the official VQA answer processing (services/vqa_accuracy/official.py): 1.0 iff the
             processed prediction equals a processed accepted answer; over annotators' answers
             (two or more), the official VQA accuracy. A single answer (a string, or a
             one-element list, as in Path-VQA) scores 1.0 iff the processed prediction equals it.
    anls     ANLS with the threshold as similarity cut (0.5 = the published tau); a similarity
             equal to it scores 0 as in the paper, or is kept with anls_boundary="docvqa".
    exact    exact match after NFC, case-folding, punctuation and article removal.
    partial  the ViVQA-X rule: 1.0 exact, 0.5 when half the reference's words appear, else 0.
    fuzzy    rapidfuzz ratio to the closest reference, 0 below the threshold.

The answer is the last `<answer_tag>` content when there is one, else the whole completion.
An item without a reference is unscorable (reward null), never 0.0.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field

from proto.models import ScoreItem
from services.common.params import FiniteFloat
from services.common.scoring import Batch, Scored, score_each
from services.vqa_accuracy import metrics
from services.vqa_accuracy.normalize import extract_answer
from services.vqa_accuracy.official import single_answer_accuracy, vqa_accuracy
from services.vqa_accuracy.settings import Mode, VqaAccuracySettings

_TAG_PATTERN = r"^[A-Za-z][A-Za-z0-9_:-]{0,31}$"
# What a list reference holds: answers any of which is right, or annotators' answers (VQA v2).
References = Literal["accepted", "annotators"]
NO_REFERENCE = ("no reference: send the accepted answers in `reference` (a string or a list; a "
                "list of annotators' answers with params.references: annotators)")


class VqaAccuracyParams(BaseModel):
    """Per-request options; a field left out takes the service's VQA_ACCURACY_DEFAULT_* value."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode | None = Field(
        default=None, description="vqa | anls | exact | partial | fuzzy (default: the service's)."
    )
    answer_tag: str | None = Field(
        default=None, pattern=_TAG_PATTERN,
        description="Tag whose last occurrence holds the answer, e.g. 'answer' for <answer>..</answer>.",
    )
    threshold: FiniteFloat | None = Field(
        default=None, ge=0.0, le=1.0,
        description="anls/fuzzy: similarity below which the score is 0 (anls: at or below).",
    )
    references: References = Field(
        default="accepted",
        description="What a list reference is: 'accepted' answers (any one is right: every mode "
        "scores the best match) or 'annotators' answers (VQA v2's ten: mode vqa applies the "
        "official VQA accuracy, min(1, matches/3) over the leave-one-out subsets).",
    )
    anls_boundary: metrics.AnlsBoundary = Field(
        default="paper",
        description="anls at a similarity exactly equal to the threshold: 'paper' scores it 0 "
        "(Biten et al. 2019, NL < tau), 'docvqa' keeps it, as the DocVQA leaderboard's "
        "evaluation script does (similarity >= threshold).",
    )


@dataclass(frozen=True, slots=True)
class _Options:
    mode: Mode
    answer_tag: str
    threshold: float
    anls_boundary: metrics.AnlsBoundary = "paper"
    references: References = "accepted"


ModeFn = Callable[[str, Sequence[str], _Options], tuple[float, dict[str, float]]]


def _vqa(answer: str, refs: Sequence[str], opts: _Options) -> tuple[float, dict[str, float]]:
    if opts.references == "annotators" and len(refs) > 1:
        acc, matches = vqa_accuracy(answer, refs)
        return acc, {"matches": float(matches)}
    hits = [single_answer_accuracy(answer, ref) for ref in refs]
    return max(hits), {"matches": sum(hits)}


def _anls(answer: str, refs: Sequence[str], opts: _Options) -> tuple[float, dict[str, float]]:
    return metrics.anls(answer, refs, opts.threshold, opts.anls_boundary), {}


def _exact(answer: str, refs: Sequence[str], _opts: _Options) -> tuple[float, dict[str, float]]:
    return metrics.exact_match(answer, refs), {}


def _partial(answer: str, refs: Sequence[str], _opts: _Options) -> tuple[float, dict[str, float]]:
    score, overlap = metrics.partial_credit(answer, refs)
    return score, {"word_overlap": overlap}


def _fuzzy(answer: str, refs: Sequence[str], opts: _Options) -> tuple[float, dict[str, float]]:
    score, similarity = metrics.fuzzy_score(answer, refs, opts.threshold)
    return score, {"similarity": similarity}


MODES: dict[str, ModeFn] = {
    "vqa": _vqa, "anls": _anls, "exact": _exact, "partial": _partial, "fuzzy": _fuzzy,
}


def _references(reference: str | list[str] | None) -> list[str]:
    if reference is None:
        return []
    return [reference] if isinstance(reference, str) else list(reference)


class VqaAccuracyScorer:
    """Scores short answers; pure CPU work, so `score` is a plain function run in a thread."""

    name = "vqa_accuracy"
    # 1.2: a list reference is a set of accepted answers by default (annotators only when asked).
    version = "1.2.0"
    score_range = (0.0, 1.0)
    params_model = VqaAccuracyParams

    def __init__(self, settings: VqaAccuracySettings | None = None):
        self.settings = settings or VqaAccuracySettings()
        self._items: Counter | None = None
        self._untagged: Counter | None = None

    def load(self) -> None:
        # Nothing to load; one call per mode proves rapidfuzz imports and every path runs.
        for fn in MODES.values():
            for references in ("accepted", "annotators"):
                fn("warm up", ["warm up", "warm-up"],
                   _Options("vqa", "answer", self.settings.default_threshold, references=references))

    def close(self) -> None:
        """Nothing to release."""

    def config(self) -> dict[str, Any]:
        s = self.settings
        return {
            "default_mode": s.default_mode,
            "default_answer_tag": s.default_answer_tag,
            "default_threshold": s.default_threshold,
            "default_references": VqaAccuracyParams.model_fields["references"].default,
            "vqa_processing": "official vqaEval (EvalAI form)",
            "rapidfuzz": importlib.metadata.version("rapidfuzz"),
        }

    def register_metrics(self, registry: CollectorRegistry) -> None:
        self._items = Counter(
            "vqa_accuracy_items_by_mode", "Items scored, by metric.", ["mode"], registry=registry
        )
        self._untagged = Counter(
            "vqa_accuracy_untagged_answers",
            "Completions without the answer tag, scored as a whole (a format problem upstream).",
            registry=registry,
        )

    def options(self, params: VqaAccuracyParams) -> _Options:
        s = self.settings
        return _Options(
            mode=params.mode or s.default_mode,
            answer_tag=params.answer_tag or s.default_answer_tag,
            threshold=s.default_threshold if params.threshold is None else params.threshold,
            anls_boundary=params.anls_boundary,
            references=params.references,
        )

    def score(self, batch: Batch) -> list[Scored]:
        opts = self.options(batch.params or VqaAccuracyParams())
        if self._items is not None:
            self._items.labels(opts.mode).inc(len(batch.items))
        return score_each(batch.items, functools.partial(self.score_item, opts))

    def score_item(self, opts: _Options, item: ScoreItem) -> Scored:
        refs = _references(item.reference)
        if not refs:
            return Scored.unscorable(NO_REFERENCE)
        answer, tagged = extract_answer(item.completion, opts.answer_tag)
        if not tagged and self._untagged is not None:
            self._untagged.inc()
        reward, parts = MODES[opts.mode](answer, refs, opts)
        # Which reading of the references scored it, with how many there were.
        parts[opts.references] = float(len(refs))
        return Scored.ok(reward, tagged=float(tagged), **parts)
