"""LlmJudgeScorer: grade a batch of completions with an LLM judge, concurrently, cheaply and safely.

Per item: pre-checks that spend nothing (empty, no answer, judge-fooling strings) -> the cache,
which also merges identical calls in flight -> one judge call -> the score read from the reply.

Failure policy:
    - one item's call fails after its retries, or its reply holds no score: that item is null,
      status `error`, with the reason; a call past `item_deadline_s` is null with status `timeout`.
    - the request's `deadline_ms` passes: the items still waiting for the judge are null, status
      `timeout`, and the answer leaves at once. Their calls run on in the background (at most
      LLM_JUDGE_KEEP_LATE_CALLS of them) and their answers are cached: a retry is instant.
    - LLM_JUDGE_BUDGET_USD spent: the remaining items are null, reason `budget_exhausted`.
    - 401/403: the key is refused; /readyz turns 503 and the request fails with NotReadyError,
      until a background re-probe (bounded back-off) finds the key accepted again.
    - 402 (no credits): the whole request fails with UpstreamError (a 502). An empty account is
      an outage, not a property of one completion: training on nulls would hide it. Items judged
      before it are cached, so the caller's retry pays only for the rest.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import Counter
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from proto.models import ScoreItem
from services.common.images import ImageRejected, content_hash, decode_image, image_bytes
from services.common.metrics import reason_code
from services.common.scoring import Batch, NotReadyError, Scored, UpstreamError, gather_until
from services.llm_judge.cache import JudgeCache, cache_key
from services.llm_judge.extract import extract_score, reply_rule, score_schema
from services.llm_judge.limits import Budget
from services.llm_judge.metrics import JudgeMetrics
from services.llm_judge.precheck import precheck
from services.llm_judge.rubrics import Rubric, builtin_names, load_rubric
from services.llm_judge.settings import LlmJudgeSettings, is_loopback, safe_url
from services.llm_judge.upstream import (
    AuthRefusedError,
    BudgetExhaustedError,
    CallFailedError,
    CreditError,
    JudgeClient,
)

log = logging.getLogger("rewardstack.llm_judge")

_MIME = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}


class JudgeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rubric: str | None = Field(
        default=None,
        description="A built-in rubric for this request (default: the service's LLM_JUDGE_RUBRIC).",
    )
    structured: bool | None = Field(
        default=None,
        description="true: ask for JSON {reason, score} with a JSON schema (`response_format`; the "
        "upstream must support it) and read only its `score`. false: the judge ends its reply with "
        "a line `Score: <number>` and only that line is read. A reply without exactly one score "
        "there is null, reason 'unparseable judge reply'. Default: LLM_JUDGE_STRUCTURED.",
    )

    @field_validator("rubric")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is not None and v not in builtin_names():
            raise ValueError(f"unknown rubric {v!r}; built-in rubrics are {builtin_names()}")
        return v


class LlmJudgeScorer:
    name = "llm_judge"
    version = "0.2.0"
    score_range = (0.0, 1.0)
    params_model = JudgeParams

    def __init__(self, settings: LlmJudgeSettings) -> None:
        self.settings = settings
        self.metrics = JudgeMetrics()
        self.budget = Budget(settings.budget_usd, settings.price_prompt_per_mtok,
                             settings.price_completion_per_mtok)
        self.client = JudgeClient(settings, self.metrics, self.budget)
        self.cache = JudgeCache(settings.cache_size, settings.late_calls_kept,
                                lambda outcome: self.metrics.late_calls.labels(outcome).inc())
        self._rubrics: dict[str, Rubric] = {}

    # -- lifecycle and facts -------------------------------------------------------------------

    def load(self) -> None:
        """Parse every rubric now, so a broken rubric file stops the start, not the first request."""
        self._rubrics = {name: load_rubric(name) for name in builtin_names()}
        self._rubrics[""] = load_rubric(self.settings.rubric)

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        await self.cache.aclose()
        await self.client.aclose()

    def register_metrics(self, registry) -> None:
        self.metrics.bind(registry)

    def not_ready_reason(self) -> str | None:
        return self.client.not_ready_reason()

    def config(self) -> dict:
        s, rubric = self.settings, self._rubric(None)
        config = {
            "base_url": s.safe_base_url, "model": s.model, "rubric": rubric.name,
            "rubric_fingerprint": rubric.fingerprint, "structured": s.structured,
            "send_image": s.send_image, "temperature": s.temperature, "max_tokens": s.max_tokens,
        }
        if s.hedge_after_ms is not None:  # a second upstream may grade differently
            config["hedge"] = {"after_ms": s.hedge_after_ms,
                               "base_url": safe_url(s.hedge_base_url or s.base_url)}
        return config

    def warnings(self) -> list[str]:
        s, out = self.settings, []
        for url in s.upstream_urls:
            if s.api_key is not None and url.startswith("http://") and not is_loopback(url):
                out.append(f"the API key is sent unencrypted to {safe_url(url)}; use https")
        if s.budget_usd is not None and self.budget.unpriced_calls:
            out.append(
                f"{self.budget.unpriced_calls} judge calls reported no usage.cost and "
                "LLM_JUDGE_PRICE_PROMPT_PER_MTOK / _COMPLETION_PER_MTOK are unset: the budget "
                "does not count them"
            )
        if self.budget.exhausted:
            out.append(f"budget exhausted: ${self.budget.spent_usd:.4f} of ${s.budget_usd:g} spent")
        return out

    def _rubric(self, name: str | None) -> Rubric:
        if not self._rubrics:
            self.load()
        return self._rubrics[name or ""]

    # -- scoring -------------------------------------------------------------------------------

    async def score(self, batch: Batch) -> list[Scored]:
        if self.client.refused:
            raise NotReadyError(self.client.not_ready_reason() or self.client.refused)
        rubric = self._rubric(getattr(batch.params, "rubric", None))
        asked = getattr(batch.params, "structured", None)
        structured = self.settings.structured if asked is None else asked
        # Everything that reads the texts (pre-checks, answer extraction, hashing, the prompt)
        # runs in a thread: a 32 KB completion must not stall /healthz on the event loop.
        images = await asyncio.to_thread(self._prepare_images, batch) if self.settings.send_image else {}
        plans = await asyncio.to_thread(self._plan_all, batch.items, rubric, images, structured)
        outcomes = await gather_until(
            batch.deadline, (self._item(plan, rubric, structured) for plan in plans),
            return_exceptions=True,
        )
        return self._collect(outcomes)

    def _collect(self, outcomes: list[Scored | BaseException]) -> list[Scored]:
        results: list[Scored] = []
        for out in outcomes:
            if isinstance(out, AuthRefusedError):
                raise NotReadyError(str(out))
            if isinstance(out, CreditError):
                raise UpstreamError(str(out))
            if isinstance(out, BaseException):
                if not isinstance(out, Exception):
                    raise out
                log.error("item failed to score", exc_info=out)
                out = Scored.error(f"internal error: {type(out).__name__}")
            results.append(out)
        failed = Counter(reason_code(r.reason) for r in results if r.reward is None)
        if failed:
            log.warning("%d of %d items have no judge score: %s", sum(failed.values()),
                        len(results), dict(failed))
        return results

    def _plan_all(self, items, rubric: Rubric, images: dict,
                  structured: bool) -> list[Scored | _Call | Exception]:
        out: list[Scored | _Call | Exception] = []
        for item in items:
            try:
                out.append(self._plan(item, rubric, images, structured))
            except Exception as exc:  # one item's bug costs that item alone (see _collect)
                out.append(exc)
        return out

    def _plan(self, item: ScoreItem, rubric: Rubric, images: dict, structured: bool) -> Scored | _Call:
        """The item's score without the judge, or the call to make: runs in a worker thread."""
        pre = precheck(item.completion, rubric)
        if pre is not None:
            self.metrics.prechecked.inc()
            return pre
        if rubric.requires_reference and not _has_reference(item.reference):
            return Scored.unscorable(f"no reference: rubric {rubric.name!r} grades against one")
        image_uri = image_hash = None
        if self.settings.send_image and item.image_id is not None:
            got = images[item.image_id]
            if isinstance(got, str):
                return Scored.unscorable(got)
            image_uri, image_hash = got
        s = self.settings
        key = cache_key(s.model, rubric.fingerprint, structured, s.temperature, s.max_tokens,
                        item.prompt, item.reference, item.completion, image_hash)
        body: dict = {
            "model": s.model,
            "messages": rubric.messages(item.completion, item.reference, item.prompt,
                                        reply_rule(rubric.scale, structured), image_uri),
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
        }
        if structured:
            body["response_format"] = score_schema(rubric.scale)
        if s.wants_usage_accounting:
            body["usage"] = {"include": True}
        return _Call(key, body)

    async def _item(self, plan: Scored | _Call | Exception, rubric: Rubric, structured: bool) -> Scored:
        if isinstance(plan, Exception):
            raise plan
        if isinstance(plan, Scored):
            return plan
        result, hit = await self.cache.get_or_call(
            plan.key, lambda: self._judge(plan.body, rubric, structured)
        )
        if hit != "miss":
            self.metrics.cache_hits.labels(hit).inc()
        return result

    async def _judge(self, body: dict, rubric: Rubric, structured: bool) -> Scored:
        s = self.settings
        try:
            async with asyncio.timeout(s.item_deadline_s):
                reply = await self.client.complete(body)
        except TimeoutError:
            return Scored.timeout(
                f"timeout: no judge score within LLM_JUDGE_ITEM_DEADLINE_S={s.item_deadline_s:g}"
            )
        except (BudgetExhaustedError, CallFailedError) as exc:
            return Scored.error(self.client.scrub(str(exc)))
        got = await asyncio.to_thread(extract_score, reply.content, rubric.scale, structured)
        if got is None:
            head = self.client.scrub(reply.content)[:80]
            return Scored.error(f"unparseable judge reply: {head!r}")
        lo, hi = rubric.scale
        clamped = None if got.raw == got.clamped else f"judge score {got.raw:g} clamped to [{lo:g}, {hi:g}]"
        return Scored.ok(got.normalised, reason=clamped, judge=got.raw)

    def _prepare_images(self, batch: Batch) -> dict[str, tuple[str, str] | str]:
        """image_id -> (data URI, content hash), or the reason it cannot be sent."""
        wanted = {it.image_id for it in batch.items if it.image_id is not None}
        out: dict[str, tuple[str, str] | str] = {}
        for image_id in wanted:
            try:
                raw = image_bytes(batch.images[image_id], self.settings.image_root)
                decode_image(raw, self.settings.max_image_pixels)  # format and pixel-cap checks
            except ImageRejected as exc:
                out[image_id] = f"image: {exc}"
                continue
            mime = next((m for magic, m in _MIME.items() if raw.startswith(magic)), "image/png")
            uri = f"data:{mime};base64,{base64.b64encode(raw).decode()}"
            out[image_id] = (uri, content_hash(raw))
        return out


@dataclass(frozen=True, slots=True)
class _Call:
    """A judge call to make: its cache key and its request body."""

    key: str
    body: dict


def _has_reference(reference: str | list[str] | None) -> bool:
    if isinstance(reference, list):
        return any(r.strip() for r in reference)
    return bool(reference and reference.strip())

