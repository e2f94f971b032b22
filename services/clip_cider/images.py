"""A request's images to CLIP embeddings: each distinct image once, cached across requests by content hash."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from PIL import Image

from proto.models import ImageData, ScoreItem
from services.clip_cider.clip import ClipEmbedder
from services.clip_cider.metrics import RequestStages
from services.common.images import (
    ImageRejected,
    PixelBudget,
    content_hash,
    decode_image,
    image_bytes,
    release_memory,
)

# image_id -> its embedding, or the reason it was refused
ImageEmbeddings = dict[str, torch.Tensor | str]


def embed_request_images(
    embedder: ClipEmbedder,
    items: Sequence[ScoreItem],
    images: Mapping[str, ImageData],
    root: Path | None,
    max_pixels: int,
    request_pixels: int | None = None,
    stages: RequestStages | None = None,
) -> ImageEmbeddings:
    """Embeddings of the images `items` use; a bad image costs only the items that use it.

    Images are keyed by the hash of their encoded bytes, so the K completions of a GRPO group, two
    ids naming the same file, and the same image in a later request all share one embedding.
    """
    stages = stages or RequestStages()
    result: ImageEmbeddings = {}
    hash_of: dict[str, str] = {}
    raw_of: dict[str, bytes] = {}
    ids = list(dict.fromkeys(it.image_id for it in items if it.image_id is not None))
    with stages.time("decode"):
        # Base64 or the file, and the hash (hashlib releases the GIL), on the decoding threads.
        loaded = embedder.parallel(lambda i: _encoded(images.get(i), i, root), ids)
    for image_id, got in zip(ids, loaded, strict=True):
        if isinstance(got, str):
            result[image_id] = got
            continue
        hash_of[image_id], raw = got
        raw_of.setdefault(hash_of[image_id], raw)

    found: dict[str, torch.Tensor | str] = dict(embedder.cache.get_many(list(raw_of)))
    missing = {h: r for h, r in raw_of.items() if h not in found}
    budget = PixelBudget(request_pixels) if request_pixels is not None else None
    found.update(_embed_missing(embedder, missing, max_pixels, budget, stages))
    for image_id, digest in hash_of.items():
        result[image_id] = found[digest]
    return result


def _encoded(data: ImageData | None, image_id: str, root: Path | None) -> tuple[str, bytes] | str:
    """(content hash, encoded bytes) of one image, or why it cannot be had."""
    if data is None:
        return f"image_id {image_id!r} is not in the request's images"
    try:
        raw = image_bytes(data, root)
    except ImageRejected as exc:
        return str(exc)
    return content_hash(raw), raw


def _embed_missing(
    embedder: ClipEmbedder, raw_of: dict[str, bytes], max_pixels: int, budget: PixelBudget | None,
    stages: RequestStages,
) -> dict[str, torch.Tensor | str]:
    """Decode the images on the embedder's threads, each reduced while it decodes, then embed them.

    A JPEG decodes by DCT scaling straight to about the model's input side; other formats are box
    reduced to no less than twice that. Large decodes take turns (services.common.images), so a
    request of sixteen 6000x6000 PNGs peaks near one full-size buffer, not sixteen.
    """
    side = embedder.input_side
    in_order = _InOrder(budget) if budget is not None else None

    def decode(job: tuple[int, bytes]) -> Image.Image | str:
        turn = _Turn(in_order, job[0]) if in_order is not None else None
        try:
            return decode_image(job[1], max_pixels, budget=turn, min_side=2 * side, draft_side=side)
        except ImageRejected as exc:
            return str(exc)
        finally:
            if turn is not None:
                turn.close()

    with stages.time("decode"):
        decoded = dict(zip(raw_of, embedder.parallel(decode, enumerate(raw_of.values())), strict=True))
    out: dict[str, torch.Tensor | str] = {d: img for d, img in decoded.items() if isinstance(img, str)}
    usable = {d: img for d, img in decoded.items() if not isinstance(img, str)}
    decoded.clear()
    if usable:
        with stages.time("preprocess"):
            pixels = embedder.pixel_batch(embedder.parallel(embedder.prepare, usable.values()))
        usable = dict.fromkeys(usable)  # the decoded images are no longer needed
        with stages.time("forward"):
            embeddings = embedder.embed_pixels(pixels)
        del pixels
        # clone(): a cached row must not keep the whole batch's tensor alive.
        fresh = {d: e.clone() for d, e in zip(usable, embeddings, strict=True)}
        embedder.cache.put_many(fresh)
        out.update(fresh)
        # glibc keeps the freed decode buffers otherwise: RSS would stay at the request's peak.
        release_memory()
    return out


class _InOrder:
    """A request's pixel budget, spent in the order of its images whichever thread gets there first,
    so which image a spent budget refuses never depends on thread timing.

    The decoding pool starts jobs in submission order, so the image whose turn it is has always
    started: no thread waits on one that cannot run.
    """

    def __init__(self, budget: PixelBudget) -> None:
        self.budget, self.next = budget, 0
        self.turns = threading.Condition()

    def spend(self, index: int, pixels: int | None) -> None:
        """Wait for image `index`'s turn, take its pixels (None: nothing) and pass the turn on."""
        with self.turns:
            self.turns.wait_for(lambda: self.next == index)
            try:
                if pixels is not None:
                    self.budget.take(pixels)
            finally:
                self.next += 1
                self.turns.notify_all()


class _Turn:
    """One image's place in an _InOrder, in PixelBudget's shape for decode_image."""

    def __init__(self, order: _InOrder, index: int) -> None:
        self.order, self.index, self.spent = order, index, False

    def take(self, pixels: int) -> None:
        self.spent = True
        self.order.spend(self.index, pixels)

    def close(self) -> None:
        """Pass the turn on for an image refused before it reached the budget."""
        if not self.spent:
            self.spent = True
            self.order.spend(self.index, None)
