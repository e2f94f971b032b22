"""RewardEntry: one reward service as a recipe, the gateway and the adapters configure it.

It lives in proto/ so that the trainer (`rewards:` of a recipe), the gateway service and the
integrations read the same entries without importing each other.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from proto.client import RewardClient, RewardRequestError, RewardServiceError

URL_SCHEMES = ("http://", "https://", "inproc://")


class RewardEntry(BaseModel):
    """One reward: which service, with which params, how much it weighs, and what a failure does."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Unique; TRL logs rewards/<name>/mean.")
    url: str | None = None
    urls: list[str] | None = Field(default=None, description="Several replicas, balanced client-side.")
    weight: float = 1.0
    params: dict[str, Any] = Field(default_factory=dict, description="Sent with every request.")
    timeout_s: float = Field(
        default=60.0, gt=0,
        description="Deadline for one batch, retries included; the service is told it (deadline_ms, "
                    "less a margin of at most 0.5 s) and answers by then, unfinished items null.",
    )
    unreachable_s: float = Field(
        default=5.0, gt=0,
        description="A service that refuses connections this long is down: the call fails then, "
                    "not at timeout_s, and later calls fail at once until it answers again.",
    )
    on_error: Literal["skip", "abort"] = "skip"
    max_failed_fraction: float = Field(
        default=0.25, ge=0.0, le=1.0,
        description="skip: stop once more than this fraction of the last `window` calls failed.",
    )
    window: int = Field(default=20, gt=0, description="How many recent calls the failed fraction covers.")
    token_env: str | None = Field(default=None, description="Environment variable holding the bearer token.")
    reference: str | None = Field(
        default=None, description="Dataset column for each item's reference; default answers, else solution."
    )
    send_images: bool = Field(default=True, description="Send the row's image (each distinct one once).")
    image_root: str | None = Field(
        default=None,
        description="A folder the service also reads (its <PREFIX>_IMAGE_ROOT, a shared volume): "
                    "images whose files lie under it are sent as paths relative to it, not as bytes.",
    )

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError(f"reward name {v!r} must be a Python identifier (letters, digits, _)")
        return v

    @model_validator(mode="after")
    def _one_endpoint(self) -> RewardEntry:
        if (self.url is None) == (self.urls is None):
            raise ValueError(f"reward {self.name!r}: give exactly one of 'url' or 'urls'")
        for u in self.endpoints:
            if not u.startswith(URL_SCHEMES):
                raise ValueError(f"reward {self.name!r}: url {u!r} must start with one of {URL_SCHEMES}")
        return self

    @property
    def endpoints(self) -> list[str]:
        return [self.url] if self.url is not None else list(self.urls or [])

    def token(self) -> str | None:
        """The bearer token from `token_env`; an unset variable is an error, never a silent no-auth."""
        if self.token_env is None:
            return None
        value = os.environ.get(self.token_env)
        if not value:
            raise ValueError(
                f"reward {self.name!r}: token_env {self.token_env} is not set in the environment"
            )
        return value

    def client(self, token: str | None = None) -> RewardClient:
        """A client for this entry: its endpoints, deadline, token and unreachable_s.

        `token` is one given directly (the score command's --token) rather than through token_env.
        """
        urls = self.endpoints
        return RewardClient(urls[0] if len(urls) == 1 else urls, deadline_s=self.timeout_s,
                            token=token or self.token(), unreachable_s=self.unreachable_s)

    def failure(self, exc: BaseException) -> str:
        """One line for a call of this reward that failed: its name, the URL once, and the cause."""
        url = getattr(exc, "url", None) or ", ".join(self.endpoints)
        return f"reward {self.name!r} at {url}: {failure_cause(exc)}"


def failure_cause(exc: BaseException) -> str:
    """What went wrong in a failed call, without the service or URL (the caller names the reward).

    The client's own messages name the service by its URL until /v1/info has answered, so a
    service that is down would be named by its URL twice and its reward not at all.
    """
    if isinstance(exc, RewardServiceError):
        return f"no answer: {exc.cause}"
    if isinstance(exc, RewardRequestError):
        return f"the service refused the request ({exc.status} {exc.error_type}): {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def unique_names(entries: list[RewardEntry]) -> list[RewardEntry]:
    """`entries`, after checking that no two share a name (each name keys a log column)."""
    names = [e.name for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"reward names must be unique; repeated: {dupes}")
    return entries
