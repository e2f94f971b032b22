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


def photo(seed: int, size: tuple[int, int] = (640, 480), fmt: str = "JPEG") -> bytes:
    """A photo-like image, encoded: smooth gradients, a few soft-edged shapes, low-amplitude noise."""
    from PIL import ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)[..., None]
    base = rng.uniform(40, 200, 3) + rng.uniform(-60, 60, 3) * ramp
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
        box = (x0, y0, x0 + int(rng.integers(8, w // 2)), y0 + int(rng.integers(8, h // 2)))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    noisy = np.asarray(img, dtype=np.int16) + rng.integers(-6, 7, (h, w, 3))
    return encode(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), fmt)
