"""Labels as other trainers carry them -> ScoreItems: a reference, answers, or a label object.

A label is the raw dataset column: a reference string, a list of accepted answers, or a JSON
object (or its text) `{reference, image, choices, meta}` where `image` is a path (resolved under
each service's image root), base64, a `data:` URI, or `{path: ...}` / `{b64: ...}`. The gateway
(OpenRLHF, slime) and the verl adapter read labels the same way through this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from proto.models import ImageData, ScoreItem


class BadSample(ValueError):
    """A sample that cannot become an item (a malformed label); the message names the field."""


class LabelObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str | list[str] | None = None
    image: str | dict[str, str] | None = None
    choices: list[str] | None = None
    # A factory, not `= {}`: pydantic deep-copies a mutable default on every instance, which was
    # a visible share of the gateway's CPU per OpenRLHF sample.
    meta: dict[str, Any] = Field(default_factory=dict)


def item_from(completion: str, prompt: Any, label: Any,
              image: Any = None) -> tuple[ScoreItem, dict[str, ImageData]]:
    """One ScoreItem (and its image: the label's, else `image`) from a sample's parts."""
    obj = _label_object(label)
    images: dict[str, ImageData] = {}
    image_id = None
    source = obj.image if obj.image is not None else image
    if source is not None:
        image_id, data = image_entry(source)
        images[image_id] = data
    item = ScoreItem(completion=completion, reference=obj.reference, prompt=prompt_text(prompt),
                     image_id=image_id, choices=obj.choices, meta=obj.meta)
    return item, images


def plain(value: Any) -> Any:
    """OmegaConf containers and numpy arrays (how verl hands config and labels over) as plain Python."""
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    return value


def prompt_text(prompt: Any) -> str | None:
    """A prompt as text: as is, or the last user turn of a list of chat messages."""
    if prompt is None or isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        content = users[-1].get("content") if users else None
        if isinstance(content, list):
            return "".join(b.get("text") or "" for b in content if isinstance(b, dict))
        return content if isinstance(content, str) else None
    raise BadSample(f"prompt must be a string or a list of chat messages, not {type(prompt).__name__}")


def _label_object(label: Any) -> LabelObject:
    if isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            label = json.loads(label)
        except json.JSONDecodeError:
            return LabelObject(reference=label)
    try:
        if label is None:
            return LabelObject()
        if isinstance(label, dict):
            return LabelObject.model_validate(label)
        if isinstance(label, list):
            return LabelObject(reference=[str(x) for x in label])
        if isinstance(label, str | int | float):
            return LabelObject(reference=str(label))
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise BadSample(f"label object: {errors} (keys: reference, image, choices, meta)") from None
    raise BadSample(f"label must be a string, a list or an object, not {type(label).__name__}")


def image_entry(value: str | dict[str, str]) -> tuple[str, ImageData]:
    """An image id (hash of what was given) and its ImageData, from a path, base64 or a data: URI."""
    if isinstance(value, dict):
        try:
            data = ImageData.model_validate(value)
        except ValidationError as exc:
            raise BadSample(f"image: {exc.errors()[0]['msg']}") from None
    elif not isinstance(value, str):
        raise BadSample(f"image must be a path, base64 or an object, not {type(value).__name__}")
    elif value.startswith("data:"):
        _, comma, payload = value.partition(",")  # RFC 2397: the data follows the first comma
        if not comma:
            raise BadSample("image: a data: URI needs a comma before its base64 data")
        data = ImageData(b64=payload)
    elif _looks_base64(value):
        data = ImageData(b64=value)
    else:
        data = ImageData(path=value)
    key = data.b64 if data.b64 is not None else f"path:{data.path}"
    return hashlib.sha256(key.encode()).hexdigest()[:32], data


_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"RIFF", b"GIF8", b"BM")


def _looks_base64(value: str) -> bool:
    # Base64 of an encoded image starts with the format's magic bytes; a path never decodes to them.
    try:
        head = base64.b64decode(value[:12], validate=True)
    except (binascii.Error, ValueError):
        return False
    return head.startswith(_IMAGE_MAGIC)
