"""Explanation reward: CLIPScore of the explanation against the image, plus CIDEr-D against references."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from proto.models import ScoreItem
from services.clip_cider.cider import CiderD, Corpus, load_corpus
from services.clip_cider.clip import CLIP_WEIGHT, PROMPT_PREFIX, ClipEmbedder, ClipSpec, clip_score
from services.clip_cider.images import ImageEmbeddings, embed_request_images
from services.clip_cider.metrics import ClipCiderCollector, RequestStages, StageClock
from services.clip_cider.settings import ClipCiderSettings
from services.clip_cider.text import (
    TOKENIZER_VERSIONS,
    Tokenizer,
    check_tag_name,
    extract_explanation,
    tokenizer_for,
)
from services.clip_cider.weights import Download, locate
from services.common.params import FiniteFloat
from services.common.scoring import Batch, NotReadyError, ParamsError, Scored, score_each

log = logging.getLogger(__name__)

TOKENIZER_VERSION = TOKENIZER_VERSIONS["default"]


class ClipCiderParams(BaseModel):
    """Per-request options; unset ones take the service's settings."""

    model_config = ConfigDict(extra="forbid")

    explain_tag: str | None = Field(
        default="explain",
        description="Score the content of the last <tag>...</tag>; null or no such tag: whole completion.",
    )
    corpus: Literal["fixed", "request"] = Field(
        default="fixed",
        description="'fixed': CIDEr document frequencies from the service's corpus (scores independent of "
        "batch-mates); 'request': from this request's references, as pycocoevalcap on this batch.",
    )
    w_clip: FiniteFloat | None = Field(default=None, ge=0)
    w_cider: FiniteFloat | None = Field(default=None, ge=0)
    cider_cap: FiniteFloat | None = Field(default=None, gt=0)
    tokenizer: Tokenizer = Field(
        default="default",
        description="CIDEr tokens. 'default': NFC, lower case, every Unicode punctuation mark a "
        "space (any language, e.g. Vietnamese). 'ptb': what pycocoevalcap's Stanford PTBTokenizer "
        "and punctuation removal give (English; `man 's`, `do n't`, `snow-covered` kept whole), "
        "so CIDEr-D is comparable with COCO numbers.",
    )

    @field_validator("explain_tag")
    @classmethod
    def _tag(cls, v: str | None) -> str | None:
        return None if v is None else check_tag_name(v)


@dataclass(frozen=True)
class _Plan:
    """The request's resolved options."""

    w_clip: float
    w_cider: float
    cap: float
    cider: CiderD | None
    cider_off: str | None  # why there is no CIDEr part, when there is none
    tokenize: Callable[[str], list[str]]


@dataclass
class _Prepared:
    explanation: str
    references: list[list[str]] | None  # tokenized
    image: torch.Tensor | str | None = None  # embedding, rejection reason, or no image
    text: torch.Tensor | None = None


class ClipCiderScorer:
    """CLIPScore (Hessel et al., 2021) + CIDEr-D (Vedantam et al., 2015), the ViVQA-X explanation reward.

    reward = (w_clip * clip / 2.5 + w_cider * min(cider, cap) / cap) / (sum of the weights of the
    parts the item has), in [0, 1]; `details.parts` carries the raw `clip` (0..2.5) and `cider`.
    """

    name = "clip_cider"
    # 1.2: the fast image path (pixels within a level of open_clip's preprocess); QuickGELU for
    # OpenAI weights, as they were trained (CLIP parts move for the `openai` tag).
    version = "1.2.0"
    score_range = (0.0, 1.0)
    params_model = ClipCiderParams

    def __init__(self, settings: ClipCiderSettings) -> None:
        self.settings = settings
        self.embedder = ClipEmbedder(
            ClipSpec(
                model=settings.clip_model, pretrained=settings.clip_pretrained,
                device=settings.clip_device, seed=settings.clip_seed,
                model_config=settings.clip_model_config, cache_dir=settings.clip_cache_dir,
            ),
            batch_rows=settings.clip_batch_rows,
            batch_wait_s=settings.clip_batch_wait_ms / 1000,
            cache_size=settings.image_cache_size,
            decode_threads=settings.clip_decode_threads,
        )
        self.stages = StageClock()
        self._corpus: Corpus | None = None
        # The fixed corpus's document frequencies under each tokenizer, built on first use.
        self._cider_by_tokenizer: dict[str, CiderD] = {}
        self._cider_lock = threading.Lock()
        self._corpus_facts: dict[str, Any] = {}
        self._load_error: str | None = None
        self._download: Download | None = None

    def load(self) -> None:
        try:
            if self.settings.corpus_path is not None:
                corpus = load_corpus(self.settings.corpus_path)
                self._corpus = corpus
                self._fixed_cider("default")  # built now, so no request pays for it
                self._corpus_facts = {"path": str(corpus.path), "sha256": corpus.sha256,
                                      "documents": len(corpus.reference_sets)}
                log.info("CIDEr-D corpus %s: %d reference sets, sha256 %s",
                         corpus.path, len(corpus.reference_sets), corpus.sha256[:16])
            s = self.settings
            weights = locate(s.clip_model, s.clip_pretrained, s.clip_cache_dir)
            if weights is None:
                # Not on disk: downloaded in the background, with a deadline, while /readyz says so.
                self._download = Download(s.clip_model, s.clip_pretrained, s.clip_cache_dir,
                                          s.load_timeout_s, then=self.embedder.load)
                self._download.start()
            else:
                self.embedder.load(weights)
        except Exception as exc:
            self._load_error = f"load failed: {type(exc).__name__}: {exc}"
            raise

    def close(self) -> None:
        if self._download is not None:
            self._download.stop()
        self.embedder.close()

    def not_ready_reason(self) -> str | None:
        if self._load_error:
            return self._load_error
        if self._download is not None and (why := self._download.reason()):
            return why
        return None if self.embedder.ready else f"loading CLIP {self.settings.clip_model}"

    def warnings(self) -> list[str]:
        out = []
        if self.embedder.spec.random_init:
            out.append(f"random-initialised CLIP weights (CLIP_CIDER_CLIP_PRETRAINED is empty, seed "
                       f"{self.settings.clip_seed}): clip scores are meaningless; for tests only")
        if self.settings.corpus_path is None:
            out.append(self._no_corpus_reason())
        return out

    def config(self) -> dict[str, Any]:
        s, spec = self.settings, self.embedder.spec
        clip = {"model": spec.model, "pretrained": spec.pretrained or None,
                "random_init": spec.random_init, "device": self.embedder.device,
                "context_length": self.embedder.context_length, "prompt_prefix": PROMPT_PREFIX,
                "weight": CLIP_WEIGHT}
        if spec.random_init:
            clip["seed"] = spec.seed
        cider: dict[str, Any] = {"n": 4, "sigma": 6.0, "tokenizer": TOKENIZER_VERSION,
                                 "tokenizers": TOKENIZER_VERSIONS}
        if s.corpus_path is None:
            cider["off"] = self._no_corpus_reason()
        else:
            cider["corpus"] = self._corpus_facts or {"path": str(s.corpus_path), "state": "loading"}
        return {"clip": clip, "cider": cider,
                "reward": {"w_clip": s.w_clip, "w_cider": s.w_cider, "cider_cap": s.cider_cap}}

    def register_metrics(self, registry) -> None:
        registry.register(ClipCiderCollector(self.embedder))
        self.stages.register(registry)

    def score(self, batch: Batch) -> list[Scored]:
        if not self.embedder.ready:
            raise NotReadyError(self.not_ready_reason() or "CLIP is not loaded")
        items: list[ScoreItem] = list(batch.items)
        params: ClipCiderParams = batch.params
        # A GRPO group's K completions share one reference list: each distinct text is tokenized once.
        tokenize = functools.lru_cache(maxsize=None)(tokenizer_for(params.tokenizer))
        with self.stages.request() as stages:
            with stages.time("cider"):
                prepared = [
                    _Prepared(extract_explanation(it.completion, params.explain_tag),
                              _references(it, tokenize))
                    for it in items
                ]
                plan = self._plan(params, [p.references for p in prepared if p.references])
            self._embed(items, prepared, batch, stages)
            with stages.time("cider"):
                return score_each(prepared, lambda p: _combine(p, plan))

    def _plan(self, params: ClipCiderParams, request_refs: list[list[list[str]]]) -> _Plan:
        s = self.settings
        w_clip = s.w_clip if params.w_clip is None else params.w_clip
        w_cider = s.w_cider if params.w_cider is None else params.w_cider
        if w_clip + w_cider <= 0:
            raise ParamsError("w_clip and w_cider are both 0; give one of them a weight")
        if params.corpus == "request":
            # pycocoevalcap's definition on this batch: every item with references is a document.
            cider = CiderD.from_reference_sets(request_refs) if request_refs else None
            off = None if request_refs else "no item of this request has references"
        else:
            cider = self._fixed_cider(params.tokenizer)
            off = None if cider is not None else self._no_corpus_reason()
        cap = s.cider_cap if params.cider_cap is None else params.cider_cap
        return _Plan(w_clip, w_cider, cap, cider, off, tokenizer_for(params.tokenizer))

    def _fixed_cider(self, tokenizer: Tokenizer) -> CiderD | None:
        """CIDEr-D with the fixed corpus's document frequencies under `tokenizer`, or None."""
        if self._corpus is None:
            return None
        with self._cider_lock:
            if tokenizer not in self._cider_by_tokenizer:
                tokenize = tokenizer_for(tokenizer)
                self._cider_by_tokenizer[tokenizer] = CiderD.from_reference_sets(
                    [[tokenize(r) for r in refs] for refs in self._corpus.reference_sets]
                )
            return self._cider_by_tokenizer[tokenizer]

    def _embed(self, items: list[ScoreItem], prepared: list[_Prepared], batch: Batch,
               stages: RequestStages) -> None:
        images: ImageEmbeddings = embed_request_images(
            self.embedder, items, batch.images, self.settings.image_root, self.settings.max_image_pixels,
            self.settings.max_request_pixels, stages,
        )
        for it, p in zip(items, prepared, strict=True):
            p.image = images.get(it.image_id) if it.image_id is not None else None
        # Each distinct explanation is embedded once, and only where its image is usable.
        prompts = list(dict.fromkeys(
            PROMPT_PREFIX + p.explanation for p in prepared if isinstance(p.image, torch.Tensor)
        ))
        if prompts:
            with stages.time("forward"):
                embedded = self.embedder.embed_texts(prompts)
            by_prompt = dict(zip(prompts, embedded, strict=True))
            for p in prepared:
                if isinstance(p.image, torch.Tensor):
                    p.text = by_prompt[PROMPT_PREFIX + p.explanation]

    def _no_corpus_reason(self) -> str:
        return ("CIDEr-D is off: no reference corpus configured (set CLIP_CIDER_CORPUS_PATH, or send "
                "params.corpus='request')")


def _references(item: ScoreItem, tokenize: Callable[[str], list[str]]) -> list[list[str]] | None:
    refs = [item.reference] if isinstance(item.reference, str) else (item.reference or [])
    if not any(r.strip() for r in refs):
        return None
    return [tokenize(r) for r in refs]


def _combine(p: _Prepared, plan: _Plan) -> Scored:
    if isinstance(p.image, str):
        return Scored.unscorable(f"image rejected: {p.image}")
    parts: dict[str, float] = {}
    if p.text is not None and isinstance(p.image, torch.Tensor):
        parts["clip"] = clip_score(p.image, p.text)
    if p.references and plan.cider is not None:
        parts["cider"] = plan.cider.score(plan.tokenize(p.explanation), p.references)
    if not parts:
        why = f"no image, and {plan.cider_off}" if p.references else "no image and no references"
        return Scored.unscorable(f"nothing to score: {why}")
    weights = {"clip": plan.w_clip, "cider": plan.w_cider}
    total = sum(weights[k] for k in parts)
    if total <= 0:
        return Scored.unscorable(f"nothing to score: the parts this item has ({', '.join(parts)}) "
                                 "all have weight 0", **parts)
    value = 0.0
    if "clip" in parts:
        value += plan.w_clip * parts["clip"] / CLIP_WEIGHT
    if "cider" in parts:
        value += plan.w_cider * min(parts["cider"], plan.cap) / plan.cap
    return Scored.ok(value / total, **parts)
