"""Settings of the LLM judge: the upstream endpoint and key, the rubric, and the spending discipline."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"


class MissingApiKeyError(RuntimeError):
    """No key for a remote judge. A RuntimeError so pydantic does not wrap it and echo the inputs."""


class LlmJudgeSettings(ServiceSettings):
    """Configuration of the llm_judge service (env prefix `LLM_JUDGE_`).

    Upstream:
        base_url: OpenAI-compatible API root; `/chat/completions` is appended.
        model: the judge model id as the upstream names it.
        api_key: `LLM_JUDGE_API_KEY`, or `OPENROUTER_API_KEY`. Required unless `base_url` is on
            a loopback address (a local vLLM or a test server).
        http_referer, x_title: OpenRouter's optional attribution headers.

    Judging:
        rubric: a built-in rubric name (`default`, `correctness`) or a path to a rubric YAML file.
        structured: ask for JSON with a schema (`response_format`, for upstreams that support
            it) and read its `score`; off, the judge ends its reply with a `Score: <number>`
            line and only that line is read. Either way a reply without one clear score is null.
        send_image: send the item's image to the judge as a data URI (a vision model is needed).
        temperature, max_tokens: sampling of the judge.

    Spending discipline:
        max_upstream_concurrency: judge calls in flight at once, over all requests.
        requests_per_minute: calls started in any 60 s window; 0 turns the limiter off.
        timeout_s: one HTTP call; item_deadline_s: one item, retries and waits included.
        max_retries, backoff_s, max_backoff_s, max_retry_after_s: retries on 408/429/500/502/503,
            exponential backoff, Retry-After honoured up to `max_retry_after_s` (beyond it the item fails).
        cache_size: judged items remembered, so duplicates in a GRPO group cost one call.
        keep_late_calls: calls whose request's `deadline_ms` passed keep running (up to
            `item_deadline_s`), so their answer, paid for anyway, is cached and a retry of that
            completion is instant; at most this many at once, the oldest cancelled beyond it.
            Default: a quarter of `max_upstream_concurrency`; 0 cancels them at the deadline.
        budget_usd: stop calling once this much was spent (`usage.cost`, else the prices below).
        price_prompt_per_mtok, price_completion_per_mtok: USD per million tokens, for upstreams
            that do not report `usage.cost`.
        usage_accounting: ask for `usage.cost` in replies (OpenRouter's `usage: {include: true}`);
            unset means on exactly when the base URL is openrouter.ai.

    Hedging (off by default):
        hedge_after_ms: a call without an answer after this long is sent once more; the first
            answer wins and the other call is cancelled. Both count against the rate limit and
            the budget: a cancelled call whose request was out is charged the winner's cost, as
            the upstream bills it all the same. Only a call still slow at this point is hedged,
            so set it above most calls' latency (near its 95th percentile).
        hedge_base_url: send the second call there (same model name, same key) instead of to
            `base_url`, e.g. another provider's endpoint or a second local server.
    """

    model_config = SettingsConfigDict(env_prefix="LLM_JUDGE_", extra="ignore", populate_by_name=True)

    base_url: str = Field(default=DEFAULT_BASE_URL)
    model: str = Field(default="openai/gpt-4o-mini", min_length=1)
    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LLM_JUDGE_API_KEY", "OPENROUTER_API_KEY")
    )
    http_referer: str | None = None
    x_title: str | None = None

    rubric: str = "default"
    structured: bool = False
    send_image: bool = False
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=1)

    max_upstream_concurrency: int = Field(default=32, ge=1)
    requests_per_minute: int = Field(default=600, ge=0)
    timeout_s: float = Field(default=30.0, gt=0)
    item_deadline_s: float = Field(default=50.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=8.0, ge=0)
    max_retry_after_s: float = Field(default=30.0, ge=0)
    # After a 401/403: first re-probe of the key after reprobe_min_s, doubling up to reprobe_max_s.
    reprobe_min_s: float = Field(default=5.0, gt=0)
    reprobe_max_s: float = Field(default=120.0, gt=0)
    cache_size: int = Field(default=8192, ge=0)
    keep_late_calls: int | None = Field(default=None, ge=0)
    budget_usd: float | None = Field(default=None, gt=0)
    price_prompt_per_mtok: float | None = Field(default=None, ge=0)
    price_completion_per_mtok: float | None = Field(default=None, ge=0)
    usage_accounting: bool | None = None
    hedge_after_ms: float | None = Field(default=None, gt=0)
    hedge_base_url: str | None = None

    @field_validator("base_url", "hedge_base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("the judge's URLs must be http(s) URLs such as https://openrouter.ai/api/v1")
        return v.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _no_blank_key(cls, v: SecretStr | None) -> SecretStr | None:
        # A blank key is what an unset `${OPENROUTER_API_KEY}` in compose gives: treat it as absent.
        if v is not None and not v.get_secret_value().strip():
            return None
        return v

    @model_validator(mode="after")
    def _key_unless_loopback(self) -> LlmJudgeSettings:
        for url in self.upstream_urls:
            if self.api_key is None and not is_loopback(url):
                raise MissingApiKeyError(
                    f"no API key for the judge at {safe_url(url)}: set LLM_JUDGE_API_KEY "
                    "(or OPENROUTER_API_KEY), or point the judge's URLs at a loopback server"
                )
        return self

    def headers(self) -> dict[str, str]:
        """The HTTP headers of every judge call: the key, and OpenRouter's attribution."""
        headers = {"content-type": "application/json"}
        if self.api_key is not None:
            headers["authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        if self.http_referer:
            headers["http-referer"] = self.http_referer
        if self.x_title:
            headers["x-title"] = self.x_title
        return headers

    @property
    def upstream_urls(self) -> list[str]:
        """Where judge calls go: `base_url`, and `hedge_base_url` when set."""
        return [self.base_url] + ([self.hedge_base_url] if self.hedge_base_url else [])

    @property
    def late_calls_kept(self) -> int:
        if self.keep_late_calls is not None:
            return self.keep_late_calls
        return self.max_upstream_concurrency // 4

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.base_url)

    @property
    def safe_base_url(self) -> str:
        """The base URL without any user:password part, fit for logs and /v1/info."""
        return safe_url(self.base_url)

    @property
    def wants_usage_accounting(self) -> bool:
        if self.usage_accounting is not None:
            return self.usage_accounting
        return (urlsplit(self.base_url).hostname or "").endswith("openrouter.ai")


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_url(url: str) -> str:
    """`url` without any user:password part, fit for logs and /v1/info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()
