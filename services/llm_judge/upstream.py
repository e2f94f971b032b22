"""The judge's client for an OpenAI-compatible chat-completions API: pooled, limited, retrying, hedged.

Pooled clients bound to the running loop (pool.py) with a cap on calls in flight, a
requests-per-minute window, retries with backoff on 408/429/5xx that honour Retry-After, a
spend budget, and optional hedging (a second call for one still unanswered after
`hedge_after_ms`). Every message built from an upstream reply passes through `scrub`, so the key
cannot travel back out.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
from dataclasses import dataclass

import httpx

from services.llm_judge.limits import Budget, RateLimiter, Usage
from services.llm_judge.metrics import JudgeMetrics
from services.llm_judge.pool import ClientPool, hedge
from services.llm_judge.reprobe import KeyProber
from services.llm_judge.settings import LlmJudgeSettings

log = logging.getLogger("rewardstack.llm_judge")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
AUTH_MESSAGE = "the judge API refused the key: check LLM_JUDGE_API_KEY (or OPENROUTER_API_KEY)"


class AuthRefusedError(RuntimeError):
    """401/403: the key is wrong or lacks access; nothing will work until it is fixed."""


class CreditError(RuntimeError):
    """402: the judge account cannot pay for the call."""


class BudgetExhaustedError(RuntimeError):
    """LLM_JUDGE_BUDGET_USD is spent; no further calls are made."""


class CallFailedError(RuntimeError):
    """This call failed for good (retries spent, or an error retrying cannot fix)."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


@dataclass(frozen=True)
class JudgeReply:
    content: str
    usage: Usage


@dataclass(eq=False)
class _Leg:
    """One copy of a call (two when hedged): where it goes, and whether its request is out."""

    pool: ClientPool
    out: bool = False  # sent and not answered: if cancelled now, the upstream still bills it


class JudgeClient:
    def __init__(self, settings: LlmJudgeSettings, metrics: JudgeMetrics, budget: Budget) -> None:
        self.settings = settings
        self.metrics = metrics
        self.budget = budget
        # Set on 401/403 (the service is then not ready), cleared by a re-probe that gets through.
        self.prober = KeyProber(self._probe, settings.reprobe_min_s, settings.reprobe_max_s)
        self._key = settings.api_key.get_secret_value() if settings.api_key else None
        self._limiter = RateLimiter(settings.requests_per_minute)
        self._pool = ClientPool(settings.base_url, settings.headers(),
                                settings.timeout_s, settings.max_upstream_concurrency)
        self._hedge_pool = self._pool if settings.hedge_base_url is None else ClientPool(
            settings.hedge_base_url, settings.headers(), settings.timeout_s,
            settings.max_upstream_concurrency)

    @property
    def refused(self) -> str | None:
        return self.prober.refused

    def not_ready_reason(self) -> str | None:
        self.prober.ensure_probing()
        return self.prober.not_ready_reason()

    async def _probe(self) -> tuple[bool, str]:
        """One minimal call (one output token): does the upstream still refuse the key?"""
        body = {"model": self.settings.model, "max_tokens": 1,
                "messages": [{"role": "user", "content": "Reply with 1."}]}
        async with self._pool.slot() as http:
            resp = await http.post("/chat/completions", json=body)
        self.metrics.calls.labels(str(resp.status_code)).inc()
        status = resp.status_code
        if status == 200:
            try:
                data = resp.json()
            except ValueError:
                data = None
            if isinstance(data, dict):
                self._charge(data.get("usage"))
                error = data.get("error")
                code = error.get("code") if isinstance(error, dict) else None
                if code in (401, 403):
                    return False, f"error {code} in a 200 body"
        return status not in (401, 403), f"HTTP {status}"

    def scrub(self, text: str) -> str:
        """`text` with the key blanked out (an upstream may echo request headers in its errors)."""
        return text.replace(self._key, "[redacted]") if self._key else text

    async def complete(self, body: dict) -> JudgeReply:
        """One chat completion, retried as configured, hedged when set; raises the errors above."""
        legs = [_Leg(self._pool)]
        reply: JudgeReply | None = None
        try:
            if self.settings.hedge_after_ms is None:
                reply = await self._complete(body, legs[0])
            else:
                legs.append(_Leg(self._hedge_pool))
                reply, winner, sent = await hedge(
                    lambda: self._complete(body, legs[0]), lambda: self._complete(body, legs[1]),
                    self.settings.hedge_after_ms / 1000,
                )
                if sent:
                    self.metrics.hedges.labels("sent").inc()
                if winner == 1:
                    self.metrics.hedges.labels("won").inc()
            return reply
        finally:
            for leg in legs:
                if leg.out:  # cancelled with its request out: a loser, or a call given up on
                    self.metrics.calls.labels("cancelled").inc()
                    if reply is not None:
                        self._account(reply.usage)  # the same prompt; billed as the winner was

    async def _complete(self, body: dict, leg: _Leg) -> JudgeReply:
        s = self.settings
        last = "no attempt made"
        for attempt in range(s.max_retries + 1):
            try:
                return await self._attempt(body, leg)
            except _Retryable as exc:
                last = exc.reason
                if attempt == s.max_retries:
                    break
                delay = self._delay(attempt, exc.retry_after)
                log.debug("judge call failed (%s); retry %d in %.2f s", last, attempt + 1, delay)
                await asyncio.sleep(delay)
        raise CallFailedError(f"upstream: {last}; gave up after {s.max_retries + 1} attempts")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None:
            if retry_after > s.max_retry_after_s:
                raise CallFailedError(
                    f"rate limited: the judge API asks to wait {retry_after:g} s, more than "
                    f"LLM_JUDGE_MAX_RETRY_AFTER_S={s.max_retry_after_s:g}"
                )
            return retry_after
        cap = min(s.max_backoff_s, s.backoff_s * 2**attempt)
        return random.uniform(cap / 2, cap)

    async def _attempt(self, body: dict, leg: _Leg) -> JudgeReply:
        if self.refused:
            raise AuthRefusedError(self.refused)
        async with leg.pool.slot() as http:
            # The window is taken inside the slot so that a start is counted when it happens.
            await self._limiter.acquire()
            if self.budget.exhausted:
                raise BudgetExhaustedError(
                    f"budget_exhausted: ${self.budget.spent_usd:.4f} spent of "
                    f"LLM_JUDGE_BUDGET_USD={self.budget.limit_usd:g}"
                )
            leg.out = True  # stays set only if this task is cancelled while waiting for the answer
            try:
                resp = await http.post("/chat/completions", json=body)
            except httpx.TimeoutException as exc:
                leg.out = False
                self.metrics.calls.labels("timeout").inc()
                raise _Retryable(
                    f"timeout: no reply within LLM_JUDGE_TIMEOUT_S={self.settings.timeout_s:g}"
                ) from exc
            except httpx.TransportError as exc:
                leg.out = False
                self.metrics.calls.labels("transport").inc()
                raise _Retryable(f"connection error: {type(exc).__name__}") from exc
            leg.out = False
        self.metrics.calls.labels(str(resp.status_code)).inc()
        return self._read(resp)

    def _read(self, resp: httpx.Response) -> JudgeReply:
        status = resp.status_code
        if status != 200:
            self._raise_for_status(status, f"HTTP {status}", self._message(resp), _retry_after(resp))
        try:
            data = resp.json()
        except ValueError:
            raise _Retryable("HTTP 200 whose body is not JSON") from None
        if not isinstance(data, dict):
            raise _Retryable("HTTP 200 whose body is not a JSON object")
        usage = self._charge(data.get("usage"))
        error = data.get("error")
        if error:
            code = error.get("code") if isinstance(error, dict) else None
            message = self._message_of(error)
            if isinstance(code, int) and code != 200:
                self._raise_for_status(code, f"error {code} in a 200 body", message, None)
            raise _Retryable(f"error in a 200 body: {message}")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _Retryable("HTTP 200 without choices")
        choice = choices[0]
        if choice.get("finish_reason") == "error":
            raise _Retryable("finish_reason 'error' in a 200 reply")
        message = choice.get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        return JudgeReply(content=content if isinstance(content, str) else "", usage=usage)

    def _raise_for_status(self, status: int, label: str, message: str,
                          retry_after: float | None) -> None:
        if status in (401, 403):
            reason = f"{AUTH_MESSAGE} ({label}: {message})"
            log.error("%s", reason)
            self.prober.refuse(reason)
            raise AuthRefusedError(reason)
        if status == 402:
            raise CreditError(
                f"the judge account is out of credits ({label}: {message}); add credits or lower "
                "LLM_JUDGE_MAX_TOKENS"
            )
        if status in RETRY_STATUSES:
            raise _Retryable(f"{label}: {message}", retry_after)
        raise CallFailedError(f"upstream: {label}: {message}")

    def _charge(self, raw: object) -> Usage:
        usage = Usage.from_reply(raw)
        self._account(usage)
        return usage

    def _account(self, usage: Usage) -> None:
        cost = self.budget.charge(usage)
        self.metrics.tokens.labels("prompt").inc(usage.prompt_tokens)
        self.metrics.tokens.labels("completion").inc(usage.completion_tokens)
        if cost is None:
            self.metrics.unpriced.inc()
        else:
            self.metrics.cost.inc(max(cost, 0.0))
        self.metrics.budget_spent.set(self.budget.spent_usd)

    def _message(self, resp: httpx.Response) -> str:
        try:
            data = resp.json()
        except ValueError:
            return self.scrub(resp.text)[:200] or resp.reason_phrase
        return self._message_of(data.get("error", data) if isinstance(data, dict) else data)

    def _message_of(self, error: object) -> str:
        text = error.get("message", error) if isinstance(error, dict) else error
        return self.scrub(str(text))[:200]

    async def aclose(self) -> None:
        await self.prober.aclose()
        await self._pool.aclose()
        if self._hedge_pool is not self._pool:
            await self._hedge_pool.aclose()

    def close(self) -> None:
        self.prober.cancel_threadsafe()
        self._pool.close()
        if self._hedge_pool is not self._pool:
            self._hedge_pool.close()


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None
