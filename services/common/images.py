"""Turn the request's ImageData into PIL images: paths confined to the root, pixels within budgets."""

from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import hashlib
import io
import math
import os
import stat
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from proto.models import ImageData
from services.common.scoring import check_deadline

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
# A file under the root is read whole; more than any sane encoded image is refused unread.
MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024
# Decodes larger than this (pixels, after any DCT scaling) all run on one thread, one at a time:
# however many threads decode a request's images, one full-size buffer exists at a time, and its
# freed memory stays in that one thread's malloc arena instead of one arena per decoding thread.
LARGE_DECODE_PIXELS = 4_000_000
_large_decoder = ThreadPoolExecutor(1, thread_name_prefix="large-image-decode")


class ImageRejected(ValueError):
    """This image cannot be used; the message is safe to return as the item's reason."""


class PixelBudget:
    """Pixels one request may still decode; shared by its images, safe across threads."""

    def __init__(self, pixels: int) -> None:
        self.left = pixels
        self._lock = threading.Lock()

    def take(self, pixels: int) -> None:
        with self._lock:
            if pixels > self.left:
                raise ImageRejected(f"the request's pixel budget is spent ({pixels} pixels needed, "
                                    f"{self.left} left); send fewer or smaller images per request")
            self.left -= pixels


def image_bytes(data: ImageData, root: Path | None) -> bytes:
    """The encoded bytes of an image, from base64 or from a path confined to `root`."""
    if data.b64 is not None:
        try:
            return base64.b64decode(data.b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImageRejected("image b64 is not valid base64") from exc
    return _read_under_root(data.path or "", root)


def _read_under_root(rel: str, root: Path | None) -> bytes:
    """Read `rel` under `root`; any string that cannot name a regular file there is refused."""
    if root is None:
        raise ImageRejected("image paths are disabled: the service has no image root configured")
    # A NUL byte makes the OS calls raise ValueError; refuse it (and any odd string) as this item's
    # problem, never the batch's.
    if not rel or "\x00" in rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ImageRejected(f"image path {rel!r} must be a non-empty relative path, without '..'")
    try:
        base = root.resolve()
        # resolve() follows symlinks, so a link that points outside the root is caught here too.
        target = (base / rel).resolve()
        if not target.is_relative_to(base):
            raise ImageRejected(f"image path {rel!r} leaves the image root")
        # O_NONBLOCK: opening a FIFO planted under the root must not wait for a writer.
        with os.fdopen(os.open(target, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ImageRejected(f"image path {rel!r} is not a regular file")
            raw = f.read(MAX_IMAGE_FILE_BYTES + 1)
    except ImageRejected:
        raise
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        why = getattr(exc, "strerror", None) or type(exc).__name__
        raise ImageRejected(f"image path {rel!r} cannot be read: {why}") from None
    if len(raw) > MAX_IMAGE_FILE_BYTES:
        raise ImageRejected(f"image file {rel!r} is over {MAX_IMAGE_FILE_BYTES} bytes")
    return raw


def decode_image(raw: bytes, max_pixels: int, *, budget: PixelBudget | None = None,
                 min_side: int | None = None, draft_side: int | None = None) -> Image.Image:
    """Decode to RGB, checking format and pixel count before any pixel data is decompressed.

    With `min_side`, the image is reduced while it decodes to the smallest size whose shorter side
    is still at least `min_side` (JPEG by DCT scaling, others by an integer box reduction), so a
    6000x6000 photo costs one full-size buffer for a moment, not for the whole request. Images
    already that small decode exactly as before. `draft_side` lets JPEG's DCT scaling go further
    than the box reduction may (its filter is close to an ideal low-pass; a box is not). Past the
    request's deadline it decodes nothing and raises DeadlinePassed: the images left after its
    deadline are work nobody waits for.
    """
    check_deadline()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            if img.format not in ALLOWED_FORMATS:
                raise ImageRejected(f"image format {img.format} is not one of PNG, JPEG, WebP")
            w, h = img.size
            if w * h > max_pixels:
                raise ImageRejected(f"image has {w}x{h} pixels, over the cap of {max_pixels}")
            factor = _reduction(w, h, draft_side or min_side)
            if factor > 1 and img.format == "JPEG":
                img.draft("RGB", (math.ceil(w / factor), math.ceil(h / factor)))
            if budget is not None:
                budget.take(img.size[0] * img.size[1])
            if img.size[0] * img.size[1] <= LARGE_DECODE_PIXELS:
                return _reduced_rgb(img, min_side)
            return _large_decoder.submit(_reduced_rgb, img, min_side).result()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("image refused as a decompression bomb") from exc
    except Exception as exc:
        raise ImageRejected(f"image cannot be decoded: {type(exc).__name__}") from exc


def _reduction(w: int, h: int, min_side: int | None) -> int:
    return max(1, min(w, h) // min_side) if min_side else 1


def _reduced_rgb(img: Image.Image, min_side: int | None) -> Image.Image:
    img.load()
    factor = _reduction(*img.size, min_side)
    if factor > 1:
        if img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        img = img.reduce(factor)
    return img if img.mode == "RGB" else img.convert("RGB")


_libc = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


def release_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise after big decodes)."""
    trim = getattr(_libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
