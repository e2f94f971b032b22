"""Shared helpers of the clip_cider tests: a tiny random CLIP, the golden corpus, test images."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from services.clip_cider.scorer import ClipCiderScorer
from services.clip_cider.settings import ClipCiderSettings

GOLDEN_PATH = Path(__file__).resolve().parents[2] / "data" / "golden" / "cider_corpus.jsonl"
GOLDEN = [json.loads(line) for line in GOLDEN_PATH.read_text().splitlines() if line.strip()]

TINY_NAME = "rewardstack-tiny-clip"
# A CLIP small enough to build and run in well under a second on a CPU; a short context so that
# truncation is easy to reach.
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def write_tiny_config(directory: Path) -> Path:
    path = directory / f"{TINY_NAME}.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return path


def settings_for(config: Path, **overrides) -> ClipCiderSettings:
    base = dict(clip_model=TINY_NAME, clip_pretrained="", clip_model_config=config, clip_device="cpu",
                corpus_path=GOLDEN_PATH)
    return ClipCiderSettings(**{**base, **overrides})


@contextlib.contextmanager
def loaded(settings: ClipCiderSettings) -> Iterator[ClipCiderScorer]:
    scorer = ClipCiderScorer(settings)
    scorer.load()
    try:
        yield scorer
    finally:
        scorer.close()


def image(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def b64(raw: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(raw).decode("ascii")}
