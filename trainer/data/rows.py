"""The row schema every loader produces, the prompt builder, and the skipped-row accounting."""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from trainer.data.config import DataConfig

logger = logging.getLogger(__name__)

# Columns every row has; `answers`, `choices`, `explanation` and `meta` appear when a source has them.
REQUIRED_COLUMNS = ("prompt", "image", "question", "solution")
OPTIONAL_COLUMNS = ("answers", "choices", "explanation", "meta")


class BadRow(Exception):
    """A source record that cannot become a row; `reason` is the counter key in the summary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class LoadSummary:
    """What loading kept, what it skipped as malformed (by reason), and what it filtered on purpose."""

    source: str
    split: str | None
    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def __str__(self) -> str:
        parts = [f"{self.source}[{self.split}]: kept {self.kept}"]
        if self.skipped:
            reasons = ", ".join(f"{k}={v}" for k, v in self.skipped.most_common())
            parts.append(f"skipped {self.total_skipped} malformed ({reasons})")
        if self.filtered:
            reasons = ", ".join(f"{k}={v}" for k, v in self.filtered.most_common())
            parts.append(f"filtered {sum(self.filtered.values())} ({reasons})")
        return "; ".join(parts)

    def log(self) -> None:
        level = logging.WARNING if self.skipped else logging.INFO
        logger.log(level, "dataset %s", self)


def build_prompt(question: str, cfg: DataConfig) -> list[dict[str, Any]]:
    """A conversational prompt with one image placeholder ahead of the question in the user turn.

    Content is always a list of typed blocks: TRL's `prepare_multimodal_messages` fills the
    unfilled `{"type": "image"}` block with the row's `image`, and Arrow needs every turn's
    `content` to have one type (a string in one turn and a list in another cannot share a column).
    """
    text = question if not cfg.format_instruction else f"{question}\n{cfg.format_instruction}"
    messages: list[dict[str, Any]] = []
    if cfg.system_prompt:
        messages.append({"role": "system", "content": [{"type": "text", "text": cfg.system_prompt}]})
    messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]})
    return messages


def prompt_text(prompt: list[dict[str, Any]]) -> str:
    """The user-visible text of a prompt (all text blocks of all turns), for logs and eval files."""
    chunks: list[str] = []
    for message in prompt:
        content = message["content"]
        if isinstance(content, str):
            chunks.append(content)
            continue
        chunks.extend(part["text"] for part in content if part.get("type") == "text" and part["text"])
    return "\n".join(chunks)


def open_image(raw: bytes | str | Path, size: tuple[int, int] | None) -> Image.Image:
    """Decode bytes or a file into RGB (resized to `size` = W×H when given); BadRow if unreadable."""
    try:
        image = Image.open(io.BytesIO(raw) if isinstance(raw, bytes) else raw)
        image.load()
    except FileNotFoundError as exc:
        raise BadRow("image_missing") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadRow("image_unreadable") from exc
    image = image.convert("RGB")
    return image.resize(size) if size is not None and image.size != size else image


def check_image_file(path: Path) -> None:
    """Read only the header, so a dataset of many files is checked without decoding any of them."""
    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 (reading the header is the check)
    except FileNotFoundError as exc:
        raise BadRow("image_missing") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise BadRow("image_unreadable") from exc


def text_field(record: dict[str, Any], key: str) -> str:
    """A non-empty string field; numbers are accepted as their text (answers like 3 or 2.5)."""
    value = record.get(key)
    if isinstance(value, bool) or value is None:
        raise BadRow(f"missing_{key}")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise BadRow(f"missing_{key}")
    return value.strip()


def collect(
    records: Iterable[Any],
    convert: Callable[[Any], dict[str, Any]],
    cfg: DataConfig,
    summary: LoadSummary,
) -> list[dict[str, Any]]:
    """Convert records until `cfg.limit` rows are kept, counting every skipped or filtered record."""
    rows: list[dict[str, Any]] = []
    for record in records:
        if cfg.limit is not None and len(rows) >= cfg.limit:
            break
        try:
            row = convert(record)
        except BadRow as exc:
            summary.skipped[exc.reason] += 1
            continue
        answer_type = (row.get("meta") or {}).get("answer_type")
        if cfg.answer_types is not None and answer_type not in cfg.answer_types:
            summary.filtered[f"answer_type={answer_type}"] += 1
            continue
        # A loader may show more than the bare question (e.g. MathVista's choices) in the prompt.
        row["prompt"] = build_prompt(row.pop("user_text", row["question"]), cfg)
        rows.append(row)
    summary.kept = len(rows)
    return rows
