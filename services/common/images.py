"""Turn the request's ImageData into PIL images, refusing paths outside the root and oversize images."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from pathlib import Path

from PIL import Image

from proto.models import ImageData

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})


class ImageRejected(ValueError):
    """This image cannot be used; the message is safe to return as the item's reason."""


def image_bytes(data: ImageData, root: Path | None) -> bytes:
    """The encoded bytes of an image, from base64 or from a path confined to `root`."""
    if data.b64 is not None:
        try:
            return base64.b64decode(data.b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImageRejected("image b64 is not valid base64") from exc
    return _read_under_root(data.path or "", root)


def _read_under_root(rel: str, root: Path | None) -> bytes:
    if root is None:
        raise ImageRejected("image paths are disabled: the service has no image root configured")
    if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ImageRejected(f"image path {rel!r} must be relative, without '..'")
    base = root.resolve()
    # resolve() follows symlinks, so a link that points outside the root is caught here too.
    target = (base / rel).resolve()
    if not target.is_relative_to(base):
        raise ImageRejected(f"image path {rel!r} leaves the image root")
    try:
        return target.read_bytes()
    except OSError as exc:
        raise ImageRejected(f"image path {rel!r} cannot be read: {exc.strerror}") from exc


def decode_image(raw: bytes, max_pixels: int) -> Image.Image:
    """Decode to RGB, checking format and pixel count before any pixel data is decompressed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            if img.format not in ALLOWED_FORMATS:
                raise ImageRejected(f"image format {img.format} is not one of PNG, JPEG, WebP")
            w, h = img.size
            if w * h > max_pixels:
                raise ImageRejected(f"image has {w}x{h} pixels, over the cap of {max_pixels}")
            return img.convert("RGB")
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("image refused as a decompression bomb") from exc
    except Exception as exc:
        raise ImageRejected(f"image cannot be decoded: {type(exc).__name__}") from exc


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
