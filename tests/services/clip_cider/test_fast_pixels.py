"""The fast image path (DCT-scaled decode, resize of the crop only, batched or on-device normalise)
against open_clip's own preprocess + forward, on photo-like images at the real ViT-B-32 geometry."""

import hashlib
import io

import numpy as np
import pytest
import torch
from open_clip.transform import image_transform
from PIL import Image

from proto.models import ImageData, ScoreItem
from services.clip_cider.clip import PROMPT_PREFIX, ClipEmbedder, ClipSpec
from services.clip_cider.images import embed_request_images
from services.clip_cider.pixels import ResizeCrop
from services.common.images import decode_image
from tests.services.clip_cider.support import GOLDEN, b64, photo

# JPEG decodes by DCT scaling; PNG by box reduction above twice the input side (1000x750 is).
SIZES = {"JPEG": [(640, 480), (480, 640), (500, 375), (1280, 720), (300, 300), (2000, 1500), (200, 150)],
         "PNG": [(640, 480), (333, 500), (1000, 750), (200, 150)]}


@pytest.fixture(scope="module")
def embedder():
    emb = ClipEmbedder(ClipSpec(model="ViT-B-32", device="cpu"), cache_size=64)
    emb.load()
    yield emb
    emb.close()


@pytest.fixture(scope="module")
def texts(embedder):
    return embedder.embed_texts([PROMPT_PREFIX + row["candidate"] for row in GOLDEN[:16]])


def reference(embedder, raw: bytes) -> torch.Tensor:
    """open_clip's way: the full decode, its preprocess, one image at a time."""
    img = Image.open(io.BytesIO(raw)).convert("RGB")
    with torch.inference_mode():
        return embedder.model.encode_image(embedder.preprocess(img)[None], normalize=True)[0]


def fast(embedder, raws: list[bytes]) -> torch.Tensor:
    embedder.cache = type(embedder.cache)(64)  # each call embeds afresh
    items = [ScoreItem(completion="x", image_id=str(i)) for i in range(len(raws))]
    images = {str(i): ImageData(**b64(r)) for i, r in enumerate(raws)}
    out = embed_request_images(embedder, items, images, None, 10**8)
    return torch.stack([out[str(i)] for i in range(len(raws))])


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_clipscore_within_0_01_of_open_clips_preprocess(embedder, texts, fmt, monkeypatch):
    raws = [photo(seed, size, fmt) for seed, size in enumerate(SIZES[fmt])]
    ref = torch.stack([reference(embedder, r) for r in raws])
    # On the device: the CUDA path's code (resize, crop and normalise as tensor ops), on the CPU.
    for on_device in (False, True):
        monkeypatch.setattr(embedder, "preprocess_on_device", on_device)
        got = fast(embedder, raws)
        # CLIPScore before its max(., 0): both sides of the clamp count.
        diff = (2.5 * (got - ref) @ texts.T).abs()
        assert diff.max() <= 0.01, (on_device, diff.max())
        # Random weights leave most texts nearly orthogonal to the difference; the embeddings
        # themselves must agree too, so a wrong crop or filter cannot hide there.
        assert (got * ref).sum(-1).min() >= 0.9999, on_device


@pytest.mark.slow
def test_the_cache_key_is_the_hash_of_the_bytes_sent(embedder):
    raw = photo(99)
    embedder.cache = type(embedder.cache)(64)
    items = [ScoreItem(completion="x", image_id="a")]
    out = embed_request_images(embedder, items, {"a": ImageData(**b64(raw))}, None, 10**8)
    [row] = embedder.cache.get_many([hashlib.sha256(raw).hexdigest()]).values()
    assert torch.equal(row, out["a"])


NOISE_SIZES = [(640, 480), (480, 640), (48, 40), (1000, 701), (300, 300)]


@pytest.mark.parametrize("size", NOISE_SIZES, ids=str)
def test_the_pixels_are_open_clips_pixels(size):
    """Per pixel, on noise (the hardest case for a resampling filter), without decode reductions."""
    preprocess = image_transform(224, is_train=False)
    resize_crop = ResizeCrop.of(preprocess)
    rng = np.random.default_rng(sum(size))
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    levels = torch.tensor(resize_crop.std).view(3, 1, 1) * 255  # normalised units -> 0..255 levels
    ref = preprocess(img)
    cpu = ((resize_crop.batch([resize_crop.crop_on_cpu(img)], "cpu")[0] - ref).abs() * levels)
    float_ops = ((resize_crop.on_device([np.asarray(img)], "cpu")[0] - ref).abs() * levels)
    # torch's uint8 kernels: open_clip's filter and geometry, a rounding step or two from PIL's.
    assert cpu.max() <= 2.0 + 1e-3 and cpu.mean() < 0.05
    # Its float kernels are close to PIL's, not equal (bilinear would be ~5 levels off).
    assert float_ops.mean() < 0.5


@pytest.mark.parametrize("mode", ["squash", "longest"])
def test_other_geometries_fall_back_to_open_clips_preprocess(mode):
    assert ResizeCrop.of(image_transform(224, is_train=False, resize_mode=mode)) is None
    assert ResizeCrop.of(image_transform(224, is_train=False)) is not None


def test_jpeg_decodes_by_dct_scaling_to_the_input_side_other_formats_stay_above_twice_it():
    jpeg, png = photo(1, (640, 480), "JPEG"), photo(1, (640, 480), "PNG")
    assert decode_image(jpeg, 10**8, min_side=448, draft_side=224).size == (320, 240)
    assert decode_image(png, 10**8, min_side=448, draft_side=224).size == (640, 480)
    assert decode_image(jpeg, 10**8, min_side=448).size == (640, 480)


def test_a_torch_without_uint8_resizing_gets_the_same_pixels_in_float(monkeypatch):
    import services.clip_cider.pixels as pixels

    resize_crop = ResizeCrop.of(image_transform(224, is_train=False))
    img = Image.open(io.BytesIO(photo(5, (320, 240), "PNG")))
    fast_path = resize_crop.crop_on_cpu(img)
    monkeypatch.setattr(pixels, "_uint8_resize", lambda mode: False)
    float_path = resize_crop.crop_on_cpu(img)
    assert fast_path.dtype == torch.uint8 and float_path.dtype == torch.float32
    assert (fast_path.float() - float_path).abs().mean() < 0.5
