"""Builders shared by the judge's tests: settings against the fake server, items, one-shot scoring."""

from __future__ import annotations

import asyncio

from proto.models import ImageData, ScoreItem
from services.common.scoring import Batch, Scored
from services.llm_judge.scorer import JudgeParams, LlmJudgeScorer
from services.llm_judge.settings import LlmJudgeSettings

KEY = "sk-or-v1-c0ffee5ecret9a7b3d1e8f2c4a6b0d9e7f1a3c5b"
GOOD = "<think>The slide shows granulomas.</think><answer>yes</answer>"


def settings_for(fake, **overrides) -> LlmJudgeSettings:
    """Fast retries, so tests that exercise them take milliseconds."""
    values = dict(base_url=fake.base_url, api_key=KEY, model="fake/judge", backoff_s=0.0,
                  max_backoff_s=0.0, max_retries=2, timeout_s=5.0)
    values.update(overrides)
    return LlmJudgeSettings(**values)


def scorer_for(fake, **overrides) -> LlmJudgeScorer:
    scorer = LlmJudgeScorer(settings_for(fake, **overrides))
    scorer.load()
    return scorer


def item(completion: str = GOOD, reference: str | list[str] | None = "yes",
         prompt: str | None = "Are there granulomas?", image_id: str | None = None) -> ScoreItem:
    return ScoreItem(completion=completion, reference=reference, prompt=prompt, image_id=image_id)


def score(scorer: LlmJudgeScorer, items: list[ScoreItem], images: dict[str, ImageData] | None = None,
          params: JudgeParams | None = None) -> list[Scored]:
    """One batch on a fresh event loop, closing the scorer's pool after it as the server would."""
    async def go() -> list[Scored]:
        try:
            return await scorer.score(Batch(items, images or {}, params or JudgeParams()))
        finally:
            await scorer.aclose()

    return asyncio.run(go())
