"""TRL's reward-function columns -> the contract's ScoreItems and the request's image table.

TRL calls a reward function with `prompts`, `completions` and every other dataset column as a
keyword argument, one value per completion (a group's K completions repeat the same row). For a
VLM the prompt is conversational, so both prompts and completions may be lists of messages whose
content is a string or a list of typed blocks; the services want plain text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from proto.images import ImageLike, collect_images
from proto.models import ImageData, ScoreItem

# Columns tried, in order, for ScoreItem.reference when a reward entry names none.
DEFAULT_REFERENCE_COLUMNS = ("answers", "solution")


def message_text(content: Any) -> str:
    """The text of one message's content: a string, or the text blocks of a list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text") or "" for part in content if isinstance(part, dict) and part.get("type") == "text"
    )


def flatten_completion(completion: Any) -> str:
    """A completion as text: as is, or the assistant turns of a conversational one, joined."""
    if isinstance(completion, str):
        return completion
    turns = [m for m in completion if m.get("role", "assistant") == "assistant"]
    return "\n".join(message_text(m.get("content")) for m in turns)


def prompt_question(prompt: Any) -> str | None:
    """The last user turn's text: the question without the system prompt."""
    if prompt is None:
        return None
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if m.get("role") == "user"]
    return message_text(users[-1].get("content")) if users else None


def build_items(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    columns: dict[str, Any],
    *,
    reference: str | None = None,
    send_images: bool = True,
    image_root: Path | str | None = None,
) -> tuple[list[ScoreItem], dict[str, ImageData]]:
    """One ScoreItem per completion, and each distinct image once.

    `columns` holds TRL's reward kwargs (dataset columns). `reference` names the column that
    becomes ScoreItem.reference; None tries `answers`, then `solution`. Images whose files lie
    under `image_root` go as paths relative to it (proto.images says what else is sent).
    """
    n = len(completions)
    image_ids: list[str | None] = [None] * n
    table: dict[str, ImageData] = {}
    if send_images:
        root = Path(image_root) if image_root is not None else None
        image_ids, table = collect_images([_first_image(columns, i) for i in range(n)], root)
    questions = columns.get("question")
    items = [
        ScoreItem(
            completion=flatten_completion(completions[i]),
            reference=_reference(columns, i, reference),
            prompt=questions[i] if questions is not None else prompt_question(prompts[i]),
            image_id=image_ids[i],
            choices=_choices(columns, i),
            meta=_meta(columns, i),
        )
        for i in range(n)
    ]
    return items, table


def _reference(columns: dict[str, Any], i: int, name: str | None) -> str | list[str] | None:
    for column in (name,) if name else DEFAULT_REFERENCE_COLUMNS:
        values = columns.get(column)
        if values is None:
            continue
        value = values[i]
        if isinstance(value, list | tuple):
            texts = [str(v) for v in value if v is not None and str(v).strip()]
            if texts:
                return texts
        elif value is not None and str(value).strip():
            return str(value)
    return None


def _choices(columns: dict[str, Any], i: int) -> list[str] | None:
    values = columns.get("choices")
    value = values[i] if values is not None else None
    return [str(c) for c in value] if value else None


def _meta(columns: dict[str, Any], i: int) -> dict[str, Any]:
    values = columns.get("meta")
    value = values[i] if values is not None else None
    # Arrow gives every row every key of the struct column; keys a row lacked come back None.
    return {k: v for k, v in (value or {}).items() if v is not None}


def _first_image(columns: dict[str, Any], i: int) -> ImageLike | None:
    if columns.get("images") is not None:
        images = columns["images"][i] or []
        return _image(images[0]) if images else None
    if columns.get("image") is not None:
        return _image(columns["image"][i])
    return None


def _image(value: Any) -> ImageLike | None:
    """A PIL image, or datasets' undecoded {"bytes", "path"} cell, sent without decoding it."""
    if value is None or isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        return value
    raise TypeError(f"image column holds {type(value).__name__}; expected a PIL image")
