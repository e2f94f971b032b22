"""PIL images to ImageData keyed by content hash, so the K completions of a group share one image."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Sequence

from PIL import Image

from proto.models import ImageData


def image_to_data(image: Image.Image) -> tuple[str, ImageData]:
    """Encode as PNG (lossless, so the service sees exactly these pixels) and key by its hash."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    raw = buf.getvalue()
    return hashlib.sha256(raw).hexdigest()[:32], ImageData(b64=base64.b64encode(raw).decode("ascii"))


def collect_images(
    images: Sequence[Image.Image | None],
) -> tuple[list[str | None], dict[str, ImageData]]:
    """One id per position and each distinct image once.

    TRL repeats the same PIL object for every completion of a group, so identity is checked first
    and each object is encoded once; equal pixels in different objects still share one entry.
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
            key, data = image_to_data(img)
            by_object[id(img)] = key
            table.setdefault(key, data)
        ids.append(key)
    return ids, table
