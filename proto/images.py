"""Images to ImageData, each sent in its cheapest faithful form and keyed so a group's K completions share it.

In order of preference, for an image whose pixels are still those of the file it was opened from:
    a path relative to a shared image root (a volume the service reads too): a few bytes;
    the file's own encoded bytes (JPEG, PNG or WebP), as read from disk or from datasets' `bytes`;
    for a JPEG whose bytes are gone (datasets decodes and drops them), the same pixels re-encoded
    with the image's own quantization tables: the original's size, within a level or two.
Anything else (a resized, converted or drawn image) is encoded as PNG: lossless, the exact pixels.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from proto.models import ImageData

# What the services decode (services.common.images.ALLOWED_FORMATS; proto cannot import services).
SENT_AS_IS = frozenset({"JPEG", "PNG", "WEBP"})
# A file larger than the services accept (64 MiB) is re-encoded rather than read whole.
MAX_FILE_BYTES = 64 * 1024 * 1024
_ORIENTATION = 0x0112

# A PIL image, or datasets' undecoded image cell {"bytes": ..., "path": ...}.
ImageLike = Image.Image | Mapping[str, Any]


def image_to_data(image: ImageLike, image_root: Path | None = None) -> tuple[str, ImageData]:
    """The image's id (a content hash, or a hash of its path under the root) and its ImageData."""
    rel = _shared_path(image, image_root) if image_root is not None else None
    if rel is not None:
        return _key(f"path:{rel}".encode()), ImageData(path=rel)
    raw = original_bytes(image)
    if raw is None:
        raw = _reencoded(image if isinstance(image, Image.Image) else _open(image))
    return _key(raw), ImageData(b64=base64.b64encode(raw).decode("ascii"))


def original_bytes(image: ImageLike) -> bytes | None:
    """The encoded bytes `image` came from, when a service decodes them to `image`'s pixels; else None."""
    if isinstance(image, Mapping):
        raw = image.get("bytes")
    elif image.format not in SENT_AS_IS:
        return None
    else:
        fp = getattr(image, "fp", None)  # an image not yet loaded from a BytesIO
        raw = fp.getvalue() if fp is not None and hasattr(fp, "getvalue") else None
    if raw is None and (path := _path_of(image)) is not None:
        raw = _read(path)
    return raw if _holds(raw, image) else None


def _holds(raw: bytes | None, image: ImageLike) -> bool:
    """Does encoded `raw` (or its head) decode to `image` as it is now, in a format services take?

    A datasets cell is as it was read. A PIL image must agree with the header in format, size and
    mode (one resized, converted or drafted in place does not), and no EXIF rotation may be
    pending: it may have been applied in place (ImageOps.exif_transpose), so the pixels are sent.
    """
    if raw is None:
        return False
    try:
        with Image.open(io.BytesIO(raw)) as head:
            if head.format not in SENT_AS_IS or head.getexif().get(_ORIENTATION, 1) != 1:
                return False
            return not isinstance(image, Image.Image) or (
                (head.format, head.size, head.mode) == (image.format, image.size, image.mode))
    except Exception:  # not an image, or a header longer than the head read: send the pixels
        return False


def _reencoded(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    if image.format == "JPEG" and getattr(image, "quantization", None) and image.mode in ("RGB", "L"):
        image.save(buf, format="JPEG", quality="keep")
    else:
        image.save(buf, format="PNG")
    return buf.getvalue()


def _open(cell: Mapping[str, Any]) -> Image.Image:
    raw = cell.get("bytes")
    return Image.open(io.BytesIO(raw)) if raw is not None else Image.open(cell["path"])


def _path_of(image: ImageLike) -> Path | None:
    name = image.get("path") if isinstance(image, Mapping) else getattr(image, "filename", None)
    return Path(name) if isinstance(name, str) and name and Path(name).is_file() else None


def _shared_path(image: ImageLike, root: Path) -> str | None:
    """The image's file relative to `root` (links followed), when it is under it and holds the image."""
    path = _path_of(image)
    if path is None:
        return None
    resolved, base = path.resolve(), root.resolve()
    if not resolved.is_relative_to(base) or not _holds(_read(path, head_only=True), image):
        return None
    return resolved.relative_to(base).as_posix()


def _read(path: Path, *, head_only: bool = False) -> bytes | None:
    try:
        with path.open("rb") as f:
            if head_only:
                return f.read(1 << 16)
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return raw if len(raw) <= MAX_FILE_BYTES else None


def _key(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:32]


def collect_images(
    images: Sequence[ImageLike | None], image_root: Path | None = None,
) -> tuple[list[str | None], dict[str, ImageData]]:
    """One id per position and each distinct image once.

    TRL repeats the same PIL object for every completion of a group, so identity is checked first
    and each object is encoded once; equal bytes in different objects still share one entry.
    """
    by_object: dict[int, str] = {}
    table: dict[str, ImageData] = {}
    ids: list[str | None] = []
    for img in images:
        if img is None:
            ids.append(None)
            continue
        key = by_object.get(id(img))
        if key is None:
            key, data = image_to_data(img, image_root)
            by_object[id(img)] = key
            table.setdefault(key, data)
        ids.append(key)
    return ids, table
