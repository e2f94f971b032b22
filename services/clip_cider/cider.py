"""CIDEr-D as pycocoevalcap defines it, with document frequencies from a fixed corpus, not the batch."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Ngram = tuple[str, ...]
Tokens = Sequence[str]


def ngram_counts(tokens: Tokens, n: int = 4) -> Counter[Ngram]:
    """Counts of every 1..n-gram of `tokens` (pycocoevalcap's `precook`)."""
    counts: Counter[Ngram] = Counter()
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            counts[tuple(tokens[i : i + k])] += 1
    return counts


def document_frequencies(reference_sets: Iterable[Sequence[Tokens]], n: int = 4) -> Counter[Ngram]:
    """In how many reference sets (one per image) each n-gram occurs at least once."""
    df: Counter[Ngram] = Counter()
    for refs in reference_sets:
        df.update({g for ref in refs for g in ngram_counts(ref, n)})
    return df


@dataclass(frozen=True)
class _Vector:
    weights: list[dict[Ngram, float]]  # tf-idf per n-gram order
    norms: list[float]
    length: int


class CiderD:
    """CIDEr-D (Vedantam et al., 2015) exactly as pycocoevalcap's `Cider` computes it per item.

    pycocoevalcap takes document frequencies and the log reference count from the batch it is
    given, so a score depends on its batch-mates. Here both are fixed when the object is built:
    from a reference corpus (`from_reference_sets`) for rewards, or from one evaluation set to
    reproduce pycocoevalcap on it. Scoring is then a pure function of one item.

    Args:
        df: document frequency of each n-gram.
        documents: number of reference sets `df` was counted over (its log is the max idf).
        n: largest n-gram order; sigma: std of the Gaussian length penalty.

    Example:
        >>> refs = [[["a", "dog", "runs"]], [["a", "cat", "sleeps"]]]
        >>> cider = CiderD.from_reference_sets(refs)
        >>> round(cider.score(["a", "dog", "runs"], refs[0]), 4)
        7.5

    References:
        Vedantam, Zitnick, Parikh. CIDEr: Consensus-based Image Description Evaluation. CVPR 2015.
        https://github.com/salaniz/pycocoevalcap/blob/master/cider/cider_scorer.py
    """

    def __init__(self, df: Mapping[Ngram, float], documents: int, n: int = 4, sigma: float = 6.0):
        if documents < 1:
            raise ValueError("CIDEr-D needs at least one reference set to count document frequencies")
        self.n, self.sigma, self.documents = n, sigma, documents
        self.log_documents = math.log(float(documents))
        # An n-gram absent from the corpus counts as seen once (idf = log N), as in pycocoevalcap.
        self._idf = {g: self.log_documents - math.log(max(1.0, c)) for g, c in df.items()}
        # The K completions of a GRPO group share their references (and later steps see them again):
        # each reference's vector is built once, not once per candidate.
        self._reference_vector = functools.lru_cache(maxsize=16384)(self._vector)

    @classmethod
    def from_reference_sets(
        cls, reference_sets: Iterable[Sequence[Tokens]], n: int = 4, sigma: float = 6.0
    ) -> CiderD:
        sets = list(reference_sets)
        return cls(document_frequencies(sets, n), len(sets), n, sigma)

    def score(self, candidate: Tokens, references: Sequence[Tokens]) -> float:
        """CIDEr-D of one tokenized candidate against its tokenized references (x10 scale)."""
        if not references:
            raise ValueError("CIDEr-D needs at least one reference")
        hyp = self._vector(candidate)
        per_order = [0.0] * self.n
        for ref in references:
            for k, sim in enumerate(self._similarity(hyp, self._reference_vector(tuple(ref)))):
                per_order[k] += sim
        return 10.0 * (sum(per_order) / self.n) / len(references)

    def _vector(self, tokens: Tokens) -> _Vector:
        weights: list[dict[Ngram, float]] = [{} for _ in range(self.n)]
        squares = [0.0] * self.n
        for gram, tf in ngram_counts(tokens, self.n).items():
            w = float(tf) * self._idf.get(gram, self.log_documents)
            weights[len(gram) - 1][gram] = w
            squares[len(gram) - 1] += w * w
        # pycocoevalcap's "length" is the number of bigrams, not of words; kept for equal scores.
        length = max(len(tokens) - 1, 0) if self.n >= 2 else 0
        return _Vector(weights, [math.sqrt(s) for s in squares], length)

    def _similarity(self, hyp: _Vector, ref: _Vector) -> list[float]:
        delta = float(hyp.length - ref.length)
        penalty = math.exp(-(delta**2) / (2 * self.sigma**2))
        sims = []
        for k in range(self.n):
            ref_w = ref.weights[k]
            # The "-D" clipping: a candidate n-gram earns at most the reference's own weight.
            val = sum(min(w, ref_w.get(g, 0.0)) * ref_w.get(g, 0.0) for g, w in hyp.weights[k].items())
            if hyp.norms[k] != 0 and ref.norms[k] != 0:
                val /= hyp.norms[k] * ref.norms[k]
            sims.append(val * penalty)
        return sims


@dataclass(frozen=True)
class Corpus:
    """A reference corpus file: one reference set per line, and the hash that identifies it."""

    path: Path
    sha256: str
    reference_sets: list[list[str]]


def load_corpus(path: Path) -> Corpus:
    """Read a JSONL corpus whose lines are objects with a non-empty `references` list of strings."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"CIDEr corpus {path} cannot be read ({exc.strerror}); fix CLIP_CIDER_CORPUS_PATH"
        ) from exc
    sets: list[list[str]] = []
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if line.strip():
            sets.append(_references_of(line, f"{path}:{lineno}"))
    if not sets:
        raise ValueError(f"CIDEr corpus {path} has no lines; it needs one references list per line")
    return Corpus(path, hashlib.sha256(raw).hexdigest(), sets)


def _references_of(line: str, where: str) -> list[str]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON ({exc.msg})") from exc
    refs = row.get("references") if isinstance(row, dict) else None
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise ValueError(f"{where}: expected an object with a non-empty 'references' list of strings")
    return refs
