"""Other trainers' samples -> ScoreItems: the completion cut out of `query`, and the label read.

A label is the raw dataset column: a reference string, a list of accepted answers, or a JSON
object (or its text) `{reference, image, choices, meta}` where `image` is a path (resolved under
each service's image root), base64, or a `data:` URI.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

import re2
from pydantic import BaseModel, ConfigDict, ValidationError

from proto.models import ImageData, ScoreItem
from services.gateway.config import ExtractConfig


class BadSample(ValueError):
    """A sample the gateway cannot turn into an item (a malformed label): a 422 naming the field."""


class LabelObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str | list[str] | None = None
    image: str | dict[str, str] | None = None
    choices: list[str] | None = None
    meta: dict[str, Any] = {}


class Extractor:
    def __init__(self, config: ExtractConfig):
        self.config = config
        self._regex = re2.compile(config.response_regex) if config.response_regex else None

    def completion(self, query: str, prompt: str | None) -> str | None:
        """The response inside `query`, or None when neither the prompt nor a marker locates it."""
        if prompt and query.startswith(prompt):
            return self.strip_end(query[len(prompt):])
        start = max((query.rfind(m) + len(m) for m in self.config.response_start if m in query), default=-1)
        if self._regex is not None:
            for match in self._regex.finditer(query):
                start = max(start, match.end())
        if start < 0:
            return self.strip_end(query) if self.config.on_no_marker == "whole_query" else None
        return self.strip_end(query[start:])

    def strip_end(self, text: str) -> str:
        """Remove end-of-turn tokens (repeated, with whitespace between) from the end of `text`."""
        tokens = [t for t in self.config.end_tokens if t]
        while True:
            stripped = text.rstrip()
            for token in tokens:
                if stripped.endswith(token):
                    text = stripped[: -len(token)]
                    break
            else:
                return stripped


def item_from(completion: str, prompt: Any, label: Any) -> tuple[ScoreItem, dict[str, ImageData]]:
    """One ScoreItem (and its image, if the label has one) from a sample's parts."""
    obj = _label_object(label)
    images: dict[str, ImageData] = {}
    image_id = None
    if obj.image is not None:
        image_id, data = _image(obj.image)
        images[image_id] = data
    item = ScoreItem(completion=completion, reference=obj.reference, prompt=prompt_text(prompt),
                     image_id=image_id, choices=obj.choices, meta=obj.meta)
    return item, images


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


def _image(value: str | dict[str, str]) -> tuple[str, ImageData]:
    if isinstance(value, dict):
        try:
            data = ImageData.model_validate(value)
        except ValidationError as exc:
            raise BadSample(f"label.image: {exc.errors()[0]['msg']}") from None
    elif value.startswith("data:"):
        data = ImageData(b64=value.split(",", 1)[-1])
    elif _looks_base64(value):
        data = ImageData(b64=value)
    else:
        data = ImageData(path=value)
    key = data.b64 if data.b64 is not None else f"path:{data.path}"
    return hashlib.sha256(key.encode()).hexdigest()[:32], data


def _looks_base64(value: str) -> bool:
    # A path is short and has separators or an extension a base64 body of an image never has.
    if len(value) < 128:
        return False
    try:
        base64.b64decode(value[:128], validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
