"""Settings every service shares; each service subclasses them with its own env prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Limits, auth and logging of one service.

    A subclass sets `model_config = SettingsConfigDict(env_prefix="MY_SERVICE_")`, so that
    `MY_SERVICE_MAX_BATCH=64` reaches `max_batch`.

    Parameters that bound the work of one item:
        max_completion_chars (int, default 32768): an item whose completion is longer is not
            scored: its reward is null, status `unscorable`, reason `completion_too_long`. Real
            completions are a few thousand characters; a collapsing policy's floods are not.
            Shown in /v1/info under `limits`.
    """

    # env_ignore_empty: compose cannot leave a variable unset, only empty (`${X:-}`); empty = unset.
    model_config = SettingsConfigDict(env_prefix="REWARD_SERVICE_", extra="ignore", env_ignore_empty=True)

    max_batch: int = Field(default=512, ge=1, description="Most items in one request; more is a 413.")
    # Sized to the pods: a request costs about 4x its body while parsed (the bytes, their join, the
    # models), and `max_concurrency` requests parse at once, so 4 x 4 x 16 MiB stays well inside the
    # 512 Mi the smallest manifests give a service. 16 MiB is 512 completions of 32 K characters.
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024,
        description="Largest request body; more is a 413 before any of it is parsed.",
    )
    max_json_values_per_item: int = Field(
        default=64, ge=8,
        description="JSON values (objects, arrays, list elements) allowed per item of max_batch; a body "
        "holding more is a 413 found by a pre-scan, before any object is built.",
    )
    max_concurrency: int = Field(
        default=4, ge=1, description="Requests scored at once; the rest wait in the queue."
    )
    max_queue: int = Field(
        default=64, ge=0, description="Requests allowed to wait; beyond it a 503 with Retry-After."
    )
    max_completion_chars: int = Field(
        default=32 * 1024, ge=1,
        description="Longest completion scored, in characters; longer items are unscorable "
        "(reason completion_too_long).",
    )
    retry_after_s: int = Field(default=1, ge=1, description="Retry-After sent with a 503.")
    auth_token: SecretStr | None = Field(
        default=None, description="When set, every route but /healthz and /readyz needs this bearer token."
    )
    image_root: Path | None = Field(
        default=None, description="Directory `{path: ...}` images are resolved under; unset refuses paths.",
    )
    max_image_pixels: int = Field(
        default=40_000_000, ge=1, description="Larger images are refused per item (decompression bombs)."
    )
    max_request_pixels: int = Field(
        default=16 * 40_000_000, ge=1,
        description="Pixels one request may decode in all; images past the budget are unscorable.",
    )
    drain_grace_s: float = Field(
        default=5.0, ge=0, le=60,
        description="After SIGTERM, how long /readyz answers 503 with the listener still open, so load "
        "balancers stop routing before it closes; keep it under the orchestrator's grace period.",
    )
    drain_timeout_s: float = Field(
        default=20.0, ge=0, le=600,
        description="After SIGTERM, requests still queued (not yet scoring) are answered 503 + Retry-After "
        "after this long, bounding the shutdown; the orchestrator's grace period must exceed it plus one "
        "request's scoring time.",
    )
    log_level: str = Field(default="INFO")

    @field_validator("auth_token")
    @classmethod
    def _no_placeholder_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value().strip() in {"", "changeme", "changethis"}:
            raise ValueError("auth_token is empty or a placeholder; set a real secret or unset it")
        return v
