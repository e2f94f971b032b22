"""Settings of the clip_cider service (env prefix CLIP_CIDER_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class ClipCiderSettings(ServiceSettings):
    """Model, corpus, weighting and cache of the explanation reward.

    CLIP:
        clip_model: an open_clip architecture name (`CLIP_CIDER_CLIP_MODEL`).
        clip_pretrained: an open_clip pretrained tag or a local checkpoint path; empty builds
            seeded random weights, for tests only (/v1/info and the log then warn).
        clip_model_config: an extra architecture JSON (or a directory of them) to register with
            open_clip first, named by file stem; how tests get a tiny model.
        clip_device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        clip_batch_rows / clip_batch_wait_ms: micro-batching of concurrent requests on the device.
        clip_decode_threads: threads decoding and preprocessing images, shared by all requests;
            0 takes torch's intra-op thread count (OMP_NUM_THREADS), at most 8.
        image_cache_size: image embeddings kept across requests, keyed by content hash.
        load_timeout_s: how long a download of weights not on disk may take
            (`CLIP_CIDER_LOAD_TIMEOUT_S`); the service answers /readyz 503 meanwhile, and with the
            reason and the fixes when it gives up. It never retries on its own.

    CIDEr-D:
        corpus_path: JSONL, one `references` list per line; document frequencies come from it.
            Unset: CIDEr is off unless a request sends `params.corpus = "request"`.

    Reward:
        w_clip, w_cider, cider_cap: reward = w_clip*clip/2.5 + w_cider*min(cider, cap)/cap,
            weights renormalised over the parts an item has; requests may override them.
    """

    # An empty CLIP_CIDER_CLIP_PRETRAINED is meaningful here (random weights), so empty values are
    # read as given rather than as unset.
    model_config = SettingsConfigDict(env_prefix="CLIP_CIDER_", extra="ignore", env_ignore_empty=False)

    clip_model: str = Field(default="ViT-B-32", min_length=1)
    clip_pretrained: str = Field(default="openai")
    clip_model_config: Path | None = None
    clip_cache_dir: Path | None = Field(default=None, description="Where open_clip caches downloads.")
    clip_device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    clip_seed: int = Field(default=0, description="Seed of random weights (clip_pretrained empty).")
    clip_batch_rows: int = Field(default=64, ge=1, le=4096)
    clip_batch_wait_ms: float = Field(default=2.0, ge=0, le=1000)
    clip_decode_threads: int = Field(default=0, ge=0, le=64)
    image_cache_size: int = Field(default=4096, ge=0)
    load_timeout_s: float = Field(default=60.0, gt=0, le=86400)
    corpus_path: Path | None = None
    w_clip: float = Field(default=0.5, ge=0)
    w_cider: float = Field(default=0.5, ge=0)
    cider_cap: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _weights_not_both_zero(self) -> ClipCiderSettings:
        if self.w_clip + self.w_cider <= 0:
            raise ValueError("CLIP_CIDER_W_CLIP and CLIP_CIDER_W_CIDER are both 0; give one a weight")
        return self
