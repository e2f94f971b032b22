"""Pydantic models of the reward contract: the only place the wire types are written down."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

PROTOCOL_VERSION = "1.0"
# A deadline longer than a day is a mistake in units, not a budget.
MAX_DEADLINE_MS = 86_400_000

# One HTTP status per error type, used by the services to answer and by the client to decide
# whether a failure is worth retrying.
ERROR_STATUS: dict[str, int] = {}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageData(_Strict):
    """An image sent with a request: inline base64 bytes, or a path under the service's image root."""

    b64: str | None = Field(default=None, description="Base64 of the encoded image (PNG, JPEG, WebP).")
    path: str | None = Field(default=None, description="Path relative to the service's image root.")

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ImageData:
        if (self.b64 is None) == (self.path is None):
            raise ValueError("an image needs exactly one of 'b64' or 'path'")
        return self


class ScoreItem(_Strict):
    """One completion to score, with what the scorer may compare it against."""

    completion: str = Field(description="The text to score; conversational completions are flattened.")
    reference: str | list[str] | None = Field(
        default=None,
        description="Ground truth: a solution, accepted answers or reference texts. A blank one "
                    "(empty, white space, [] or only blanks) is no reference.",
    )
    prompt: str | None = Field(default=None, description="The question text.")
    image_id: str | None = Field(default=None, description="Key into the request's `images`.")
    choices: list[str] | None = Field(default=None, description="Options of a multiple-choice question.")
    meta: dict[str, Any] = Field(
        default_factory=dict, description="Per-item facts, e.g. answer_type, precision, language."
    )

    @field_validator("reference")
    @classmethod
    def _blank_is_none(cls, value: str | list[str] | None) -> str | list[str] | None:
        # OpenRLHF sends "" for every label without --label_key: a service that compares against
        # a reference must see none (null, unscorable), never score against "" (a silent 0.0).
        if isinstance(value, str):
            return value if value.strip() else None
        return value if value and any(r.strip() for r in value) else None


class ScoreRequest(_Strict):
    """One batch to score. Each distinct image travels once, however many items share it."""

    items: list[ScoreItem] = Field(min_length=1)
    deadline_ms: StrictInt | None = Field(
        default=None, ge=1, le=MAX_DEADLINE_MS,
        description="Time budget of this request in milliseconds, counted from the moment the "
        "service receives it, on the service's own monotonic clock (a relative budget, so the "
        "caller's and the service's clocks need not agree). Time queued for a scoring slot counts. "
        "When it passes, the service stops working on the request and answers at once: finished "
        "items keep their rewards, the others are null with status `timeout` (reason `deadline`). "
        "The answer comes at most `limits.deadline_grace_ms` (GET /v1/info) after the deadline, "
        "plus the network. Absent: no deadline.",
    )
    images: dict[str, ImageData] = Field(default_factory=dict)
    params: dict[str, Any] = Field(
        default_factory=dict, description="Per-request options, validated by the service."
    )

    @model_validator(mode="after")
    def _image_ids_resolve(self) -> ScoreRequest:
        missing = sorted(
            {it.image_id for it in self.items if it.image_id is not None} - self.images.keys()
        )
        if missing:
            raise ValueError(f"items name image_id(s) absent from 'images': {missing[:5]}")
        return self


class ItemStatus(StrEnum):
    ok = "ok"
    unscorable = "unscorable"
    error = "error"
    timeout = "timeout"


class ItemDetail(_Strict):
    status: ItemStatus = ItemStatus.ok
    reason: str | None = None
    parts: dict[str, float] = Field(default_factory=dict)


class ScoreResponse(_Strict):
    """One reward per item, in order; `null` means the item could not be scored (see details)."""

    rewards: list[float | None]
    details: list[ItemDetail]
    service: str
    version: str
    elapsed_ms: float

    @model_validator(mode="after")
    def _aligned(self) -> ScoreResponse:
        if len(self.rewards) != len(self.details):
            raise ValueError("rewards and details must have the same length")
        return self


class ErrorType(StrEnum):
    """The closed set of whole-request failures; each maps to exactly one HTTP status."""

    validation = "validation_error"
    too_large = "payload_too_large"
    overloaded = "overloaded"
    upstream = "upstream_error"
    not_ready = "not_ready"
    unauthorized = "unauthorized"
    not_found = "not_found"
    method_not_allowed = "method_not_allowed"
    internal = "internal_error"

    @property
    def status_code(self) -> int:
        return ERROR_STATUS[self.value]


ERROR_STATUS.update(
    {
        ErrorType.validation.value: 422,
        ErrorType.too_large.value: 413,
        ErrorType.overloaded.value: 503,
        ErrorType.upstream.value: 502,
        ErrorType.not_ready.value: 503,
        ErrorType.unauthorized.value: 401,
        ErrorType.not_found.value: 404,
        ErrorType.method_not_allowed.value: 405,
        ErrorType.internal.value: 500,
    }
)


class ErrorBody(_Strict):
    type: ErrorType
    message: str
    request_id: str | None = None


class ErrorResponse(_Strict):
    error: ErrorBody


class ServiceLimits(_Strict):
    max_batch: int
    max_body_bytes: int
    max_concurrency: int
    max_queue: int
    # Longer completions are unscorable (completion_too_long); None from servers that predate it.
    max_completion_chars: int | None = None
    deadline_grace_ms: float | None = Field(
        default=None,
        description="A request with `deadline_ms` is answered at most this long after its deadline "
        "(network not included); None from servers that predate deadline_ms, which refuse the field.",
    )


class ServiceInfo(_Strict):
    name: str
    version: str
    protocol_version: str = PROTOCOL_VERSION
    score_range: tuple[float, float]
    params_schema: dict[str, Any]
    limits: ServiceLimits
    config: dict[str, Any] = Field(
        default_factory=dict, description="Model and configuration facts that decide the scores."
    )
    fingerprint: str = Field(description="Hash of `config`: equal fingerprints give equal scores.")
    warnings: list[str] = Field(default_factory=list)
