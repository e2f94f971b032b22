"""Settings of the vqa_accuracy service (env prefix VQA_ACCURACY_)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

Mode = Literal["vqa", "anls", "exact", "partial", "fuzzy"]


class VqaAccuracySettings(ServiceSettings):
    """Defaults that a request's `params` may override.

    Parameters that set the defaults of a request:
        default_mode: metric used when a request names none ("vqa", "anls", "exact",
            "partial" or "fuzzy"). Env VQA_ACCURACY_DEFAULT_MODE.
        default_answer_tag: tag whose last occurrence holds the answer. Env
            VQA_ACCURACY_DEFAULT_ANSWER_TAG.
        default_threshold: similarity cut of the "anls" and "fuzzy" modes; 0.5 is ANLS's
            published tau. Env VQA_ACCURACY_DEFAULT_THRESHOLD.
    """

    model_config = SettingsConfigDict(env_prefix="VQA_ACCURACY_", extra="ignore")

    default_mode: Mode = Field(default="vqa", description="Metric when a request names none.")
    default_answer_tag: str = Field(
        default="answer", pattern=r"^[A-Za-z][A-Za-z0-9_:-]{0,31}$",
        description="Tag whose last occurrence holds the answer; absent tag = whole completion.",
    )
    default_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Similarity below which 'anls' and 'fuzzy' score 0 (0.5 = ANLS's tau).",
    )
